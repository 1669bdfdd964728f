package integration

// End-to-end tests of the asynchronous invocation settings through aws-sdk-go-v2, against a
// real agent: the event invoke configuration operations and a function's DeadLetterConfig, and
// Event invocations whose outcomes reach the destinations they name.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// queueBodies are the bodies of a queue's messages (gateway queue receive); none while the
// queue does not exist yet.
func (a *agentProc) queueBodies(queue string) []string {
	a.t.Helper()
	out, _, code := a.cli("queue", "receive", "-json", "-n", "100", queue)
	var msgs []queueMsg
	if code != 0 || json.Unmarshal([]byte(out), &msgs) != nil {
		return nil
	}
	var bodies []string
	for _, m := range msgs {
		bodies = append(bodies, m.Body)
	}
	return bodies
}

// destinationRecord is the part of Lambda's destination record the test reads.
type destinationRecord struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionArn            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

// TestAPIEventInvokeConfig: PutFunctionEventInvokeConfig, UpdateFunctionEventInvokeConfig,
// Get, List and DeleteFunctionEventInvokeConfig, and CreateFunction's and
// UpdateFunctionConfiguration's DeadLetterConfig through the AWS SDK for Go v2; Event
// invocations then send their records to the configured queues (on success, on failure) and a
// failed event's payload to the dead-letter queue when there is no on-failure destination.
func TestAPIEventInvokeConfig(t *testing.T) {
	needRoot(t)
	natsHCL, _ := natsBlock(t)
	a := startAgent(t, agentOptions{node: "apiasync", top: pluginBlock(t, "queue", pluginBins["queue"], "") + natsHCL +
		"async {\n  retry_delay = \"100ms\"\n}\n"})
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })

	in := createFunctionInput("fn", codeZip(t, nil), nil)
	in.DeadLetterConfig = &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:sqs:us-east-1:123456789012:dlq")}
	created, err := client.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if created.DeadLetterConfig == nil || aws.ToString(created.DeadLetterConfig.TargetArn) != "arn:aws:sqs:us-east-1:123456789012:dlq" {
		t.Errorf("CreateFunction answered DeadLetterConfig %+v", created.DeadLetterConfig)
	}
	if _, err := client.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")}); !isError[*types.ResourceNotFoundException](err) {
		t.Errorf("GetFunctionEventInvokeConfig before any: %T %v", err, err)
	}

	t.Run("PutUpdateGetList", func(t *testing.T) {
		put, err := client.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"),
			MaximumRetryAttempts: aws.Int32(0), MaximumEventAgeInSeconds: aws.Int32(3600),
			DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{Destination: aws.String("arn:aws:sqs:us-east-1:123456789012:done")}}})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(put.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST" || aws.ToInt32(put.MaximumEventAgeInSeconds) != 3600 ||
			put.LastModified == nil || time.Since(*put.LastModified) > time.Minute {
			t.Errorf("Put answered %+v", put)
		}
		upd, err := client.UpdateFunctionEventInvokeConfig(ctx, &awslambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"),
			MaximumEventAgeInSeconds: aws.Int32(600)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(upd.MaximumEventAgeInSeconds) != 600 || upd.MaximumRetryAttempts == nil || *upd.MaximumRetryAttempts != 0 ||
			upd.DestinationConfig == nil || upd.DestinationConfig.OnSuccess == nil ||
			aws.ToString(upd.DestinationConfig.OnSuccess.Destination) != "arn:aws:sqs:us-east-1:123456789012:done" || upd.LastModified.Before(*put.LastModified) {
			t.Errorf("Update answered %+v (destinations %+v)", upd, upd.DestinationConfig)
		}
		got, err := client.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"), Qualifier: aws.String("$LATEST")})
		if err != nil || aws.ToInt32(got.MaximumEventAgeInSeconds) != 600 || !got.LastModified.Equal(*upd.LastModified) {
			t.Errorf("Get: %v %+v", err, got)
		}
		list, err := client.ListFunctionEventInvokeConfigs(ctx, &awslambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("fn")})
		if err != nil || len(list.FunctionEventInvokeConfigs) != 1 || aws.ToString(list.FunctionEventInvokeConfigs[0].FunctionArn) != aws.ToString(put.FunctionArn) {
			t.Errorf("List: %v %+v", err, list)
		}
		_, err = client.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"), MaximumRetryAttempts: aws.Int32(3)})
		if !isError[*types.InvalidParameterValueException](err) || !strings.Contains(err.Error(), "MaximumRetryAttempts") {
			t.Errorf("3 retries: %T %v", err, err)
		}
		_, err = client.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"), Qualifier: aws.String("9")})
		if !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("a version that does not exist: %T %v", err, err)
		}
	})

	invokeEvent := func(payload string) {
		t.Helper()
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn"), InvocationType: types.InvocationTypeEvent, Payload: []byte(payload)})
		if err != nil || out.StatusCode != 202 {
			t.Fatalf("Event invocation: %v %+v", err, out)
		}
	}
	t.Run("OnSuccess", func(t *testing.T) {
		invokeEvent(`{"mode":"hello","name":"async"}`)
		waitFor(t, "the success record on queue done", 60*time.Second, func() bool { return len(a.queueBodies("done")) == 1 })
		var rec destinationRecord
		if err := json.Unmarshal([]byte(a.queueBodies("done")[0]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.RequestContext.Condition != "Success" || !strings.HasSuffix(rec.RequestContext.FunctionArn, ":function:fn:$LATEST") ||
			!strings.Contains(string(rec.ResponsePayload), "Hello, async!") || !strings.Contains(string(rec.RequestPayload), `"name":"async"`) {
			t.Errorf("the success record: %+v", rec)
		}
	})
	t.Run("DeadLetter", func(t *testing.T) {
		// No retries, no on-failure destination: the payload goes to the dead-letter queue.
		invokeEvent(`{"mode":"error","n":1}`)
		waitFor(t, "the failed event on queue dlq", 60*time.Second, func() bool { return len(a.queueBodies("dlq")) == 1 })
		if body := a.queueBodies("dlq")[0]; body != `{"mode":"error","n":1}` {
			t.Errorf("the dead-lettered payload: %s", body)
		}
	})
	t.Run("OnFailure", func(t *testing.T) {
		// One retry, then the record goes to the on-failure destination (not the dead-letter queue).
		if _, err := client.UpdateFunctionEventInvokeConfig(ctx, &awslambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("fn"),
			MaximumRetryAttempts: aws.Int32(1), DestinationConfig: &types.DestinationConfig{
				OnFailure: &types.OnFailure{Destination: aws.String("arn:lambdagw:queue:us-east-1::failed")}}}); err != nil {
			t.Fatal(err)
		}
		invokeEvent(`{"mode":"error","n":2}`)
		waitFor(t, "the failure record on queue failed", 60*time.Second, func() bool { return len(a.queueBodies("failed")) == 1 })
		var rec destinationRecord
		if err := json.Unmarshal([]byte(a.queueBodies("failed")[0]), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.RequestContext.Condition != "RetriesExhausted" || rec.RequestContext.ApproximateInvokeCount != 2 ||
			!strings.Contains(string(rec.RequestPayload), `"n":2`) {
			t.Errorf("the failure record: %+v", rec)
		}
		if n := len(a.queueBodies("dlq")); n != 1 {
			t.Errorf("the dead-letter queue holds %d events, want the first one only", n)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if _, err := client.DeleteFunctionEventInvokeConfig(ctx, &awslambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")}); !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("Get after Delete: %T %v", err, err)
		}
		list, err := client.ListFunctionEventInvokeConfigs(ctx, &awslambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("fn")})
		if err != nil || len(list.FunctionEventInvokeConfigs) != 0 {
			t.Errorf("List after Delete: %v %+v", err, list)
		}
		if _, err := client.DeleteFunctionEventInvokeConfig(ctx, &awslambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String("fn")}); !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("deleting it twice: %T %v", err, err)
		}
	})

	t.Run("DeadLetterConfig", func(t *testing.T) {
		upd, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
			DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/dead")}})
		if err != nil || upd.DeadLetterConfig == nil || aws.ToString(upd.DeadLetterConfig.TargetArn) != "arn:aws:kinesis:us-east-1:123456789012:stream/dead" {
			t.Fatalf("UpdateFunctionConfiguration to a stream: %v %+v", err, upd)
		}
		_, err = client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
			DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("arn:aws:sns:us-east-1:123456789012:topic")}})
		if !isError[*types.InvalidParameterValueException](err) || !strings.Contains(err.Error(), "DeadLetterConfig.TargetArn") {
			t.Errorf("an SNS topic: %T %v", err, err)
		}
		if _, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
			DeadLetterConfig: &types.DeadLetterConfig{TargetArn: aws.String("")}}); err != nil {
			t.Fatal(err)
		}
		conf, err := client.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
		if err != nil || conf.DeadLetterConfig != nil {
			t.Errorf("after removing it: %v %+v", err, conf.DeadLetterConfig)
		}
	})
}
