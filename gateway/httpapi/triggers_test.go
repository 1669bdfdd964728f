package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// triggerStack is stack with functions worker (version 1, alias live) and other, and the
// gateway's Go client on the same server for the /v1 trigger operations.
func triggerStack(t *testing.T) (*awslambda.Client, *api.Client, string) {
	t.Helper()
	c := stack(t)
	ctx := context.Background()
	for _, name := range []string{"worker", "other"} {
		if _, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023,
			Role: aws.String("arn:aws:iam::000000000000:role/x"), Code: &types.FunctionCode{ZipFile: zipped}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("worker")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("worker"), Name: aws.String("live"),
		FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	addr := aws.ToString(c.Options().BaseEndpoint)
	gc, err := api.New(api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	return c, gc, addr
}

// lambdaErr is err's Lambda exception name and status, or fails the test.
func lambdaErr(t *testing.T, err error) (string, int) {
	t.Helper()
	var le *lambda.Error
	if !errors.As(err, &le) {
		t.Fatalf("want a Lambda error, got %T %v", err, err)
	}
	return le.Type, le.Status
}

func TestTriggersThroughTheV1API(t *testing.T) {
	_, gc, addr := triggerStack(t)
	ctx := context.Background()
	orders := &structs.Trigger{Function: "worker", Name: "orders", Plugin: "queue", Source: "orders", Qualifier: "live",
		BatchSize: 10, MaximumRetryAttempts: -1, Enabled: true, Options: map[string]string{"visibility": "30s"}}
	created, err := gc.PutTrigger(ctx, orders)
	if err != nil {
		t.Fatal(err)
	}
	if created.UUID == "" || created.LastModified.IsZero() || !created.SameSettings(orders) {
		t.Fatalf("created %+v", created)
	}
	changed := *orders
	changed.BatchSize = 20
	updated, err := gc.PutTrigger(ctx, &changed)
	if err != nil {
		t.Fatal(err)
	}
	if updated.UUID != created.UUID || updated.BatchSize != 20 {
		t.Fatalf("a replaced trigger keeps its UUID: %+v, was %+v", updated, created)
	}
	// The path names the function and the trigger, whatever the body says.
	req, _ := http.NewRequest("PUT", addr+"/v1/functions/other/triggers/a",
		strings.NewReader(`{"function":"worker","name":"zzz","plugin":"queue","source":"a","maximum_retry_attempts":-1,"enabled":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var stored structs.Trigger
	err = json.NewDecoder(resp.Body).Decode(&stored)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || stored.Function != "other" || stored.Name != "a" || stored.UUID == "" {
		t.Fatalf("PUT: %d %+v %v", resp.StatusCode, stored, err)
	}

	list, err := gc.ListTriggers(ctx, "worker")
	if err != nil || len(list) != 1 || list[0].Name != "orders" || list[0].BatchSize != 20 {
		t.Fatalf("worker's triggers: %+v, %v", list, err)
	}
	all, err := gc.ListTriggers(ctx, "")
	if err != nil || len(all) != 2 || all[0].Function != "other" || all[1].Function != "worker" {
		t.Fatalf("every trigger: %+v, %v", all, err)
	}

	for _, c := range []struct {
		name   string
		in     structs.Trigger
		typ    string
		status int
	}{
		{"batch too large", structs.Trigger{Function: "worker", Name: "big", Plugin: "queue", Source: "q", BatchSize: 20000}, "InvalidParameterValueException", 400},
		{"no source", structs.Trigger{Function: "worker", Name: "nosource", Plugin: "queue"}, "InvalidParameterValueException", 400},
		{"unknown alias", structs.Trigger{Function: "worker", Name: "x", Plugin: "queue", Source: "q", Qualifier: "canary"}, "ResourceNotFoundException", 404},
		{"unknown function", structs.Trigger{Function: "nope", Name: "x", Plugin: "queue", Source: "q"}, "ResourceNotFoundException", 404},
		{"unknown failure function", structs.Trigger{Function: "worker", Name: "x", Plugin: "queue", Source: "q", OnFailure: "function:nope"}, "InvalidParameterValueException", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := gc.PutTrigger(ctx, &c.in)
			if typ, status := lambdaErr(t, err); typ != c.typ || status != c.status {
				t.Errorf("got %s %d, want %s %d: %v", typ, status, c.typ, c.status, err)
			}
		})
	}
	if _, err := gc.ListTriggers(ctx, "nope"); err == nil {
		t.Fatal("listing the triggers of a missing function")
	} else if typ, _ := lambdaErr(t, err); typ != "ResourceNotFoundException" {
		t.Fatalf("listing the triggers of a missing function: %v", err)
	}

	if err := gc.DeleteTrigger(ctx, "worker", "orders"); err != nil {
		t.Fatal(err)
	}
	if list, err := gc.ListTriggers(ctx, "worker"); err != nil || len(list) != 0 {
		t.Fatalf("after delete: %+v, %v", list, err)
	}
	if err := gc.DeleteTrigger(ctx, "worker", "orders"); err == nil {
		t.Fatal("deleting twice")
	} else if typ, status := lambdaErr(t, err); typ != "ResourceNotFoundException" || status != 404 {
		t.Fatalf("deleting twice: %v", err)
	}
}

// TestEventSourceMappingsWithTheAWSSDK reads triggers with the AWS SDK's ListEventSourceMappings
// and GetEventSourceMapping, as `aws lambda list-event-source-mappings` does.
func TestEventSourceMappingsWithTheAWSSDK(t *testing.T) {
	c, gc, addr := triggerStack(t)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	put := func(tr *structs.Trigger) *structs.Trigger {
		t.Helper()
		out, err := gc.PutTrigger(ctx, tr)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	orders := put(&structs.Trigger{Function: "worker", Name: "orders", Plugin: "queue", Source: "orders", Qualifier: "live",
		BatchSize: 10, BatchWindow: 5 * time.Second, MaximumRetryAttempts: 3, MaximumRecordAge: 2 * time.Minute,
		BisectBatchOnFunctionError: true, ReportBatchItemFailures: true, OnFailure: "queue:dlq", Enabled: true})
	events := put(&structs.Trigger{Function: "worker", Name: "stream", Plugin: "stream", Source: "events",
		StartingPosition: structs.AtTimestamp, StartingPositionTimestamp: at, MaximumRetryAttempts: -1, OnFailure: "function:other"})
	put(&structs.Trigger{Function: "other", Name: "a", Plugin: "queue", Source: "a", MaximumRetryAttempts: -1, Enabled: true})

	got, err := c.GetEventSourceMapping(ctx, &awslambda.GetEventSourceMappingInput{UUID: aws.String(orders.UUID)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"UUID":                  orders.UUID,
		"EventSourceMappingArn": "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:" + orders.UUID,
		"FunctionArn":           "arn:aws:lambda:us-east-1:000000000000:function:worker:live",
		"EventSourceArn":        "arn:lambdagw:queue:us-east-1::orders",
		"BatchSize":             int32(10), "Window": int32(5), "Retries": int32(3), "RecordAge": int32(120), "Bisect": true,
		"ResponseTypes": `["ReportBatchItemFailures"]`, "Destination": "arn:lambdagw:queue:us-east-1::dlq",
		"State": "Enabled", "Reason": "USER_INITIATED", "LastModified": orders.LastModified.Unix(),
	}
	have := map[string]any{
		"UUID": aws.ToString(got.UUID), "EventSourceMappingArn": aws.ToString(got.EventSourceMappingArn),
		"FunctionArn": aws.ToString(got.FunctionArn), "EventSourceArn": aws.ToString(got.EventSourceArn),
		"BatchSize": aws.ToInt32(got.BatchSize), "Window": aws.ToInt32(got.MaximumBatchingWindowInSeconds),
		"Retries": aws.ToInt32(got.MaximumRetryAttempts), "RecordAge": aws.ToInt32(got.MaximumRecordAgeInSeconds),
		"Bisect": aws.ToBool(got.BisectBatchOnFunctionError), "ResponseTypes": jsonText(got.FunctionResponseTypes),
		"State": aws.ToString(got.State), "Reason": aws.ToString(got.StateTransitionReason),
		"LastModified": aws.ToTime(got.LastModified).Unix(),
	}
	if got.DestinationConfig != nil && got.DestinationConfig.OnFailure != nil {
		have["Destination"] = aws.ToString(got.DestinationConfig.OnFailure.Destination)
	}
	if jsonText(want) != jsonText(have) {
		t.Fatalf("GetEventSourceMapping:\n got %s\nwant %s", jsonText(have), jsonText(want))
	}

	stream, err := c.GetEventSourceMapping(ctx, &awslambda.GetEventSourceMappingInput{UUID: aws.String(events.UUID)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(stream.State) != "Disabled" || stream.StartingPosition != types.EventSourcePositionAtTimestamp ||
		!aws.ToTime(stream.StartingPositionTimestamp).Equal(at) || stream.BatchSize != nil ||
		aws.ToInt32(stream.MaximumRetryAttempts) != -1 || aws.ToInt32(stream.MaximumRecordAgeInSeconds) != -1 ||
		len(stream.FunctionResponseTypes) != 0 || aws.ToString(stream.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:worker" ||
		aws.ToString(stream.DestinationConfig.OnFailure.Destination) != "arn:aws:lambda:us-east-1:000000000000:function:other" {
		t.Fatalf("the stream mapping: %s", jsonText(stream))
	}

	var nf *types.ResourceNotFoundException
	if _, err := c.GetEventSourceMapping(ctx, &awslambda.GetEventSourceMappingInput{UUID: aws.String("00000000-0000-0000-0000-000000000000")}); !errors.As(err, &nf) {
		t.Fatalf("an unknown UUID: %T %v", err, err)
	}

	list := func(in *awslambda.ListEventSourceMappingsInput) []string {
		t.Helper()
		var mappings []string
		p := awslambda.NewListEventSourceMappingsPaginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page.EventSourceMappings {
				mappings = append(mappings, aws.ToString(m.FunctionArn)+" "+aws.ToString(m.EventSourceArn))
			}
		}
		return mappings
	}
	for _, tc := range []struct {
		name string
		in   *awslambda.ListEventSourceMappingsInput
		want string
	}{
		{"all, one per page", &awslambda.ListEventSourceMappingsInput{MaxItems: aws.Int32(1)},
			`["arn:aws:lambda:us-east-1:000000000000:function:other arn:lambdagw:queue:us-east-1::a",` +
				`"arn:aws:lambda:us-east-1:000000000000:function:worker:live arn:lambdagw:queue:us-east-1::orders",` +
				`"arn:aws:lambda:us-east-1:000000000000:function:worker arn:lambdagw:stream:us-east-1::events"]`},
		{"a function by name, two per page", &awslambda.ListEventSourceMappingsInput{FunctionName: aws.String("worker"), MaxItems: aws.Int32(2)},
			`["arn:aws:lambda:us-east-1:000000000000:function:worker:live arn:lambdagw:queue:us-east-1::orders",` +
				`"arn:aws:lambda:us-east-1:000000000000:function:worker arn:lambdagw:stream:us-east-1::events"]`},
		{"an alias by ARN", &awslambda.ListEventSourceMappingsInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:worker:live")},
			`["arn:aws:lambda:us-east-1:000000000000:function:worker:live arn:lambdagw:queue:us-east-1::orders"]`},
		{"an event source", &awslambda.ListEventSourceMappingsInput{EventSourceArn: aws.String("arn:lambdagw:queue:us-east-1::a")},
			`["arn:aws:lambda:us-east-1:000000000000:function:other arn:lambdagw:queue:us-east-1::a"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := jsonText(list(tc.in)); got != tc.want {
				t.Errorf("listed\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if _, err := c.ListEventSourceMappings(ctx, &awslambda.ListEventSourceMappingsInput{FunctionName: aws.String("nope")}); !errors.As(err, &nf) {
		t.Fatalf("the mappings of a missing function: %T %v", err, err)
	}
	var invalid *types.InvalidParameterValueException
	if _, err := c.ListEventSourceMappings(ctx, &awslambda.ListEventSourceMappingsInput{Marker: aws.String("bogus")}); !errors.As(err, &invalid) {
		t.Fatalf("a made-up marker: %T %v", err, err)
	}

	// The AWS CLI lists at the path with a trailing slash.
	resp, err := http.Get(addr + "/2015-03-31/event-source-mappings/?FunctionName=other")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		EventSourceMappings []struct{ UUID, State string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 || len(page.EventSourceMappings) != 1 || page.EventSourceMappings[0].State != "Enabled" {
		t.Fatalf("GET with a trailing slash: %d %+v %v", resp.StatusCode, page, err)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestEventSourceMappingWritesWithTheAWSSDK: Create, Update and DeleteEventSourceMapping as
// the AWS SDK (and Terraform's aws_lambda_event_source_mapping) call them; an SQS queue's ARN
// names the queue plugin's queue of that name.
func TestEventSourceMappingWritesWithTheAWSSDK(t *testing.T) {
	c, gc, _ := triggerStack(t)
	ctx := context.Background()
	created, err := c.CreateEventSourceMapping(ctx, &awslambda.CreateEventSourceMappingInput{
		FunctionName:          aws.String("arn:aws:lambda:us-east-1:000000000000:function:worker:live"),
		EventSourceArn:        aws.String("arn:aws:sqs:us-east-1:123456789012:orders"),
		BatchSize:             aws.Int32(25),
		FunctionResponseTypes: []types.FunctionResponseType{types.FunctionResponseTypeReportBatchItemFailures},
		DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{
			Destination: aws.String("arn:aws:sqs:us-east-1:123456789012:orders-dlq")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.UUID)
	if aws.ToString(created.State) != "Enabled" || aws.ToInt32(created.BatchSize) != 25 ||
		aws.ToString(created.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:worker:live" {
		t.Errorf("created %+v", created)
	}
	trs, err := gc.ListTriggers(ctx, "worker")
	if err != nil || len(trs) != 1 {
		t.Fatalf("triggers %+v %v", trs, err)
	}
	tr := trs[0]
	if tr.UUID != id || tr.Name != "esm-"+id[:8] || tr.Plugin != "queue" || tr.Source != "orders" || tr.Qualifier != "live" ||
		!tr.ReportBatchItemFailures || tr.OnFailure != "queue:orders-dlq" || tr.MaximumRetryAttempts != -1 {
		t.Errorf("stored as %+v", tr)
	}
	updated, err := c.UpdateEventSourceMapping(ctx, &awslambda.UpdateEventSourceMappingInput{UUID: aws.String(id),
		BatchSize: aws.Int32(5), Enabled: aws.Bool(false), DestinationConfig: &types.DestinationConfig{OnFailure: &types.OnFailure{
			Destination: aws.String("arn:aws:lambda:us-east-1:000000000000:function:other")}}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(updated.BatchSize) != 5 || aws.ToString(updated.State) != "Disabled" || aws.ToString(updated.UUID) != id {
		t.Errorf("updated %+v", updated)
	}
	trs, _ = gc.ListTriggers(ctx, "worker")
	if len(trs) != 1 || trs[0].OnFailure != "function:other" || trs[0].BatchSize != 5 || trs[0].Enabled || !trs[0].ReportBatchItemFailures {
		t.Errorf("after the update %+v", trs)
	}
	var invalid *types.InvalidParameterValueException
	if _, err := c.CreateEventSourceMapping(ctx, &awslambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"),
		EventSourceArn: aws.String("arn:aws:dynamodb:us-east-1:1:table/t/stream/x")}); !errors.As(err, &invalid) {
		t.Errorf("an event source the gateway has no plugin kind for: %v", err)
	}
	deleted, err := c.DeleteEventSourceMapping(ctx, &awslambda.DeleteEventSourceMappingInput{UUID: aws.String(id)})
	if err != nil || aws.ToString(deleted.State) != "Deleting" {
		t.Fatalf("delete: %+v %v", deleted, err)
	}
	if trs, _ := gc.ListTriggers(ctx, "worker"); len(trs) != 0 {
		t.Errorf("left after delete: %+v", trs)
	}
	if _, err := c.DeleteEventSourceMapping(ctx, &awslambda.DeleteEventSourceMappingInput{UUID: aws.String(id)}); err == nil {
		t.Error("deleting twice succeeded")
	}
}

// TestEventSourceMappingUnsupportedSettings: a mapping that asks for a setting the triggers do
// not implement is refused naming it, through the AWS SDK, and nothing is created; the default
// forms pass.
func TestEventSourceMappingUnsupportedSettings(t *testing.T) {
	c, gc, _ := triggerStack(t)
	ctx := context.Background()
	base := func() *awslambda.CreateEventSourceMappingInput {
		return &awslambda.CreateEventSourceMappingInput{FunctionName: aws.String("worker"),
			EventSourceArn: aws.String("arn:aws:sqs:us-east-1:123456789012:orders")}
	}
	for field, set := range map[string]func(*awslambda.CreateEventSourceMappingInput){
		"FilterCriteria": func(in *awslambda.CreateEventSourceMappingInput) {
			in.FilterCriteria = &types.FilterCriteria{Filters: []types.Filter{{Pattern: aws.String(`{"body":{"a":["b"]}}`)}}}
		},
		"ParallelizationFactor":   func(in *awslambda.CreateEventSourceMappingInput) { in.ParallelizationFactor = aws.Int32(4) },
		"TumblingWindowInSeconds": func(in *awslambda.CreateEventSourceMappingInput) { in.TumblingWindowInSeconds = aws.Int32(60) },
		"Topics":                  func(in *awslambda.CreateEventSourceMappingInput) { in.Topics = []string{"t"} },
		"ScalingConfig": func(in *awslambda.CreateEventSourceMappingInput) {
			in.ScalingConfig = &types.ScalingConfig{MaximumConcurrency: aws.Int32(5)}
		},
		"Tags": func(in *awslambda.CreateEventSourceMappingInput) { in.Tags = map[string]string{"team": "a"} },
	} {
		in := base()
		set(in)
		_, err := c.CreateEventSourceMapping(ctx, in)
		var ip *types.InvalidParameterValueException
		if !errors.As(err, &ip) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want InvalidParameterValueException naming it", field, err)
		}
	}
	if list, _ := gc.ListTriggers(ctx, "worker"); len(list) != 0 {
		t.Fatalf("refused mappings created %d triggers", len(list))
	}
	in := base()
	in.ParallelizationFactor = aws.Int32(1)
	in.TumblingWindowInSeconds = aws.Int32(0)
	in.FilterCriteria = &types.FilterCriteria{}
	if _, err := c.CreateEventSourceMapping(ctx, in); err != nil {
		t.Errorf("default forms refused: %v", err)
	}
}
