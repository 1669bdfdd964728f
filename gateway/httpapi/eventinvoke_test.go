package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// destinations reads an answer's destinations ("" when unset).
func destinations(dc *types.DestinationConfig) (success, failure string) {
	if dc == nil {
		return "?", "?"
	}
	if dc.OnSuccess != nil {
		success = aws.ToString(dc.OnSuccess.Destination)
	}
	if dc.OnFailure != nil {
		failure = aws.ToString(dc.OnFailure.Destination)
	}
	return success, failure
}

// TestEventInvokeConfigWithTheAWSSDK: the event invoke configuration operations as the AWS SDK
// for Go v2 calls them: Put replaces a qualifier's whole configuration, Update merges what it
// gives, Get and List read them back with Lambda's ARNs and times, Delete removes them, and
// deleting an alias deletes its configuration.
func TestEventInvokeConfigWithTheAWSSDK(t *testing.T) {
	c, _, _ := triggerStack(t) // worker (version 1, alias live) and other
	ctx := context.Background()
	const sink = "arn:aws:lambda:us-east-1:000000000000:function:other"
	start := time.Now().Add(-time.Second)

	put, err := c.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("worker"),
		MaximumRetryAttempts: aws.Int32(1), MaximumEventAgeInSeconds: aws.Int32(3600),
		DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:sqs:us-east-1:123456789012:done")},
			OnFailure: &types.OnFailure{Destination: aws.String(sink)}}})
	if err != nil {
		t.Fatal(err)
	}
	success, failure := destinations(put.DestinationConfig)
	if aws.ToString(put.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:worker:$LATEST" || aws.ToInt32(put.MaximumRetryAttempts) != 1 ||
		aws.ToInt32(put.MaximumEventAgeInSeconds) != 3600 || success != "arn:aws:sqs:us-east-1:123456789012:done" || failure != sink {
		t.Errorf("Put answered %s %d %d %s %s", aws.ToString(put.FunctionArn), aws.ToInt32(put.MaximumRetryAttempts),
			aws.ToInt32(put.MaximumEventAgeInSeconds), success, failure)
	}
	if put.LastModified == nil || put.LastModified.Before(start) || put.LastModified.After(time.Now().Add(time.Second)) {
		t.Errorf("LastModified %v", put.LastModified)
	}

	// Update merges: the retries change, the rest stays; an empty destination removes it.
	upd, err := c.UpdateFunctionEventInvokeConfig(ctx, &awslambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("worker"),
		MaximumRetryAttempts: aws.Int32(0), DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("")}}})
	if err != nil {
		t.Fatal(err)
	}
	success, failure = destinations(upd.DestinationConfig)
	if aws.ToInt32(upd.MaximumRetryAttempts) != 0 || upd.MaximumRetryAttempts == nil || aws.ToInt32(upd.MaximumEventAgeInSeconds) != 3600 ||
		success != "arn:aws:sqs:us-east-1:123456789012:done" || failure != "" {
		t.Errorf("Update answered retries %v age %d success %q failure %q", upd.MaximumRetryAttempts, aws.ToInt32(upd.MaximumEventAgeInSeconds), success, failure)
	}
	// Put replaces: what it leaves out is gone.
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("worker"), Qualifier: aws.String("live"),
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String("arn:aws:kinesis:us-east-1:1:stream/failures")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("worker:1")}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("worker"), Qualifier: aws.String("live")})
	if err != nil {
		t.Fatal(err)
	}
	if success, failure = destinations(got.DestinationConfig); got.MaximumRetryAttempts != nil || got.MaximumEventAgeInSeconds != nil ||
		success != "" || failure != "arn:aws:kinesis:us-east-1:1:stream/failures" || !strings.HasSuffix(aws.ToString(got.FunctionArn), ":worker:live") {
		t.Errorf("Get of live: %+v %q %q", got, success, failure)
	}
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("worker")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("worker:$LATEST")}); got == nil ||
		got.MaximumRetryAttempts != nil || got.MaximumEventAgeInSeconds != nil {
		t.Errorf("$LATEST after a Put of nothing: %+v", got)
	}

	// List, one per page: $LATEST, 1, live.
	var arns []string
	p := awslambda.NewListFunctionEventInvokeConfigsPaginator(c, &awslambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("worker"), MaxItems: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.FunctionEventInvokeConfigs) > 1 {
			t.Fatalf("a page of %d with MaxItems 1", len(page.FunctionEventInvokeConfigs))
		}
		for _, c := range page.FunctionEventInvokeConfigs {
			arns = append(arns, aws.ToString(c.FunctionArn))
		}
	}
	want := []string{"arn:aws:lambda:us-east-1:000000000000:function:worker:$LATEST", "arn:aws:lambda:us-east-1:000000000000:function:worker:1",
		"arn:aws:lambda:us-east-1:000000000000:function:worker:live"}
	if strings.Join(arns, " ") != strings.Join(want, " ") {
		t.Errorf("listed %q, want %q", arns, want)
	}

	// Deleting the alias deletes its configuration; Delete removes one.
	if _, err := c.DeleteAlias(ctx, &awslambda.DeleteAliasInput{FunctionName: aws.String("worker"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunctionEventInvokeConfig(ctx, &awslambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("worker"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListFunctionEventInvokeConfigs(ctx, &awslambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("worker")})
	if err != nil || len(list.FunctionEventInvokeConfigs) != 1 || !strings.HasSuffix(aws.ToString(list.FunctionEventInvokeConfigs[0].FunctionArn), ":$LATEST") {
		t.Errorf("after deleting the alias and version 1's configuration: %v %+v", err, list)
	}
	_, err = c.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("worker"), Qualifier: aws.String("1")})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) || !strings.Contains(err.Error(), "doesn't have an EventInvokeConfig") {
		t.Errorf("Get of a deleted configuration: %T %v", err, err)
	}
}

// TestEventInvokeConfigRefusals: a function, qualifier or configuration that does not exist is
// ResourceNotFoundException (404); a bad value is InvalidParameterValueException (400) naming
// its field, and changes nothing.
func TestEventInvokeConfigRefusals(t *testing.T) {
	_, gc, url := triggerStack(t)
	ctx := context.Background()
	base := url + "/2019-09-25/functions/"
	cases := []struct {
		name, method, path, body string
		status                   int
		typ, want                string
	}{
		{"missing function", "PUT", "nope/event-invoke-config", `{}`, 404, "ResourceNotFoundException", "Function not found"},
		{"missing version", "PUT", "worker/event-invoke-config?Qualifier=7", `{}`, 404, "ResourceNotFoundException", "worker:7"},
		{"missing alias", "GET", "worker/event-invoke-config?Qualifier=canary", "", 404, "ResourceNotFoundException", "worker:canary"},
		{"no configuration", "GET", "worker/event-invoke-config", "", 404, "ResourceNotFoundException", "worker:$LATEST doesn't have an EventInvokeConfig"},
		{"update of none", "POST", "worker/event-invoke-config", `{"MaximumRetryAttempts": 1}`, 404, "ResourceNotFoundException", "doesn't have an EventInvokeConfig"},
		{"delete of none", "DELETE", "worker/event-invoke-config?Qualifier=live", "", 404, "ResourceNotFoundException", "worker:live doesn't have"},
		{"list of a missing function", "GET", "nope/event-invoke-config/list", "", 404, "ResourceNotFoundException", "Function not found"},
		{"two qualifiers", "PUT", "worker:live/event-invoke-config?Qualifier=1", `{}`, 400, "InvalidParameterValueException", "differs"},
		{"retries", "PUT", "worker/event-invoke-config", `{"MaximumRetryAttempts": 3}`, 400, "InvalidParameterValueException", "MaximumRetryAttempts: 3 is out of range"},
		{"age low", "PUT", "worker/event-invoke-config", `{"MaximumEventAgeInSeconds": 59}`, 400, "InvalidParameterValueException", "MaximumEventAgeInSeconds: 59s is out of range"},
		{"age zero", "PUT", "worker/event-invoke-config", `{"MaximumEventAgeInSeconds": 0}`, 400, "InvalidParameterValueException", "MaximumEventAgeInSeconds: 0s is out of range"},
		{"age high", "PUT", "worker/event-invoke-config", `{"MaximumEventAgeInSeconds": 21601}`, 400, "InvalidParameterValueException", "MaximumEventAgeInSeconds: 6h0m1s"},
		{"age absurd", "PUT", "worker/event-invoke-config", `{"MaximumEventAgeInSeconds": 9223372036}`, 400, "InvalidParameterValueException", "MaximumEventAgeInSeconds"},
		{"sns destination", "PUT", "worker/event-invoke-config", `{"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sns:us-east-1:1:topic"}}}`,
			400, "InvalidParameterValueException", "DestinationConfig.OnSuccess.Destination: \\\"arn:aws:sns"},
		{"qualified function destination", "PUT", "worker/event-invoke-config", `{"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:1:function:other:1"}}}`,
			400, "InvalidParameterValueException", "DestinationConfig.OnFailure.Destination"},
		{"itself", "PUT", "worker/event-invoke-config", `{"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:1:function:worker"}}}`,
			400, "InvalidParameterValueException", "a function cannot be its own destination"},
		{"two errors", "PUT", "worker/event-invoke-config", `{"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 1}`, 400, "InvalidParameterValueException", "2 validation errors"},
		{"not JSON", "PUT", "worker/event-invoke-config", `{"MaximumRetryAttempts": "two"}`, 400, "InvalidRequestContentException", "could not parse"},
		{"list with a qualifier", "GET", "worker:live/event-invoke-config/list", "", 400, "InvalidParameterValueException", "without a qualifier"},
		{"list page size", "GET", "worker/event-invoke-config/list?MaxItems=0", "", 400, "InvalidParameterValueException", "MaxItems"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, typ, body := call(t, c.method, base+c.path, c.body)
			if status != c.status || typ != c.typ || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s %s; want %d %s saying %s", status, typ, body, c.status, c.typ, c.want)
			}
		})
	}
	if all, err := gc.ListFunctionEventInvokeConfigs(ctx, "worker"); err != nil || len(all) != 0 {
		t.Fatalf("refused writes left configurations: %+v %v", all, err)
	}
	// Fields the API does not know are ignored, as in every Lambda request here; the answer
	// has Lambda's shape: a number for LastModified, both destinations ({} when unset).
	status, _, body := call(t, "PUT", base+"worker/event-invoke-config", `{"MaximumRetryAttempts": 2, "Unknown": true}`)
	var raw map[string]json.RawMessage
	if status != 200 || json.Unmarshal([]byte(body), &raw) != nil {
		t.Fatalf("Put: %d %s", status, body)
	}
	var lastModified float64
	if json.Unmarshal(raw["LastModified"], &lastModified) != nil || lastModified < float64(time.Now().Add(-time.Minute).Unix()) ||
		string(raw["DestinationConfig"]) != `{"OnSuccess":{},"OnFailure":{}}` || string(raw["MaximumRetryAttempts"]) != "2" || raw["MaximumEventAgeInSeconds"] != nil {
		t.Errorf("the answer's shape: %s", body)
	}
}

// TestDeadLetterConfig: CreateFunction and UpdateFunctionConfiguration set a function's
// dead-letter target from an SQS queue's or a Kinesis stream's ARN (TargetArn "" removes it),
// GetFunction and GetFunctionConfiguration answer it; a function's ARN, or an ARN of another
// service, is refused naming the field.
func TestDeadLetterConfig(t *testing.T) {
	c, url := newStack(t, stackOptions{})
	ctx := context.Background()
	out, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("fn"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("arn:aws:iam::000000000000:role/x"), Code: &types.FunctionCode{ZipFile: zipped},
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:sqs:us-east-1:123456789012:dlq")}})
	if err != nil {
		t.Fatal(err)
	}
	if out.DeadLetterConfig == nil || aws.ToString(out.DeadLetterConfig.TargetArn) != "arn:aws:sqs:us-east-1:123456789012:dlq" {
		t.Errorf("CreateFunction answered DeadLetterConfig %+v", out.DeadLetterConfig)
	}
	upd, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/dead")}})
	if err != nil || upd.DeadLetterConfig == nil || aws.ToString(upd.DeadLetterConfig.TargetArn) != "arn:aws:kinesis:us-east-1:123456789012:stream/dead" {
		t.Fatalf("UpdateFunctionConfiguration: %v %+v", err, upd)
	}
	// Another update leaves it as it is.
	if _, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"), MemorySize: aws.Int32(256)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("fn")})
	if err != nil || got.Configuration.DeadLetterConfig == nil || aws.ToString(got.Configuration.DeadLetterConfig.TargetArn) != "arn:aws:kinesis:us-east-1:123456789012:stream/dead" {
		t.Fatalf("GetFunction: %v %+v", err, got)
	}
	for name, arn := range map[string]string{
		"function": "arn:aws:lambda:us-east-1:000000000000:function:other", "sns": "arn:aws:sns:us-east-1:1:topic", "word": "dlq"} {
		status, typ, body := call(t, "PUT", url+"/2015-03-31/functions/fn/configuration", `{"DeadLetterConfig": {"TargetArn": "`+arn+`"}}`)
		if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, `"message":"DeadLetterConfig.TargetArn`) {
			t.Errorf("a %s target: %d %s %s", name, status, typ, body)
		}
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
		DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("")}}); err != nil {
		t.Fatal(err)
	}
	conf, err := c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
	if err != nil || conf.DeadLetterConfig != nil || aws.ToInt32(conf.MemorySize) != 256 {
		t.Fatalf("after removing the target: %v %+v", err, conf.DeadLetterConfig)
	}
}
