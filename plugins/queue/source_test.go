package main

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/natsengine"
	"github.com/lambdagw/gateway/internal/natsengine/natstest"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natsq"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

const testRegion = "eu-west-1"

// env is a queue trigger served over gRPC (sdktest.Trigger), configured against a real embedded
// JetStream, delivering to an sdktest.Host.
type env struct {
	t      *testing.T
	ctx    context.Context
	js     jetstream.JetStream
	src    *source
	client *sdk.TriggerClient
	host   *sdktest.Host
}

func testLogger() hclog.Logger {
	level := hclog.Warn
	if testing.Verbose() {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: "test", Output: os.Stderr, Level: level})
}

// newEnv starts it all; result decides each batch's outcome (Success when nil). wrap, when not
// nil, wraps the host the plugin sees.
func newEnv(t *testing.T, result func(sdk.Batch) sdk.BatchResult, wrap func(*sdktest.Host) sdk.Host) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	t.Cleanup(cancel)
	// As in the agent: the server admits the test's client and the plugin, each with its NKey.
	testUser, _, testCreds := natstest.User(t)
	pluginUser, pluginSeed, _ := natstest.User(t)
	eng, err := natsengine.Start(ctx, natsengine.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: testLogger(),
		Users: []string{testUser, pluginUser}})
	if err != nil {
		t.Fatalf("starting NATS: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Shutdown(ctx); err != nil {
			t.Errorf("NATS shutdown: %v", err)
		}
	})
	nc, err := nats.Connect(eng.ClientURL(), testCreds)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	src := newSourceWithLogger(testLogger())
	t.Cleanup(src.Close)
	client := sdktest.Trigger(t, src)
	host := &sdktest.Host{Result: result}
	var h sdk.Host = host
	if wrap != nil {
		h = wrap(host)
	}
	diags, err := client.Configure(ctx, sdk.ConfigureRequest{Config: json.RawMessage(`{}`),
		HostInfo: map[string]string{"nats_url": eng.ClientURL(), "nats_nkey_seed": pluginSeed, "region": testRegion}}, h)
	if err != nil || len(diags) != 0 {
		t.Fatalf("configure: %+v %v", diags, err)
	}
	return &env{t: t, ctx: ctx, js: js, src: src, client: client, host: host}
}

func mapping(id, queue string) sdk.Mapping {
	return sdk.Mapping{UUID: id, Name: "t", Function: "fn", FunctionARN: "arn:aws:lambda:" + testRegion + ":000000000000:function:fn",
		Source: queue, Enabled: true, MaximumRetryAttempts: -1, Options: map[string]string{optionRetryDelay: "20ms"}}
}

func (e *env) setMappings(ms ...sdk.Mapping) []sdk.MappingStatus {
	e.t.Helper()
	st, err := e.client.SetMappings(e.ctx, ms)
	if err != nil {
		e.t.Fatalf("set mappings: %v", err)
	}
	return st
}

func (e *env) publish(queue, body string, headers map[string]string) {
	e.t.Helper()
	if err := natsq.Publish(e.ctx, e.js, queue, []byte(body), headers); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

// records returns every record delivered so far, in order.
func records(t *testing.T, batches []sdk.Batch) []events.SQSMessage {
	t.Helper()
	var out []events.SQSMessage
	for _, b := range batches {
		var ev events.SQSEvent
		if err := json.Unmarshal(b.Event, &ev); err != nil {
			t.Fatalf("the event is no SQS event: %v\n%s", err, b.Event)
		}
		out = append(out, ev.Records...)
	}
	return out
}

func (e *env) waitRecords(n int) []events.SQSMessage {
	e.t.Helper()
	err := e.host.Wait(e.ctx, func(h *sdktest.Host) bool { return len(records(e.t, h.Batches())) >= n })
	if err != nil {
		e.t.Fatalf("waiting for %d records (have %d): %v", n, len(records(e.t, e.host.Batches())), err)
	}
	return records(e.t, e.host.Batches())
}

// waitEmpty waits until queue holds no message (every one acked or terminated).
func (e *env) waitEmpty(queue string) {
	e.t.Helper()
	var n uint64
	for {
		s, err := e.js.Stream(e.ctx, natsq.StreamName(queue))
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(e.ctx); err == nil {
				if n = info.State.Msgs; n == 0 {
					return
				}
			}
		}
		if !trigger.Sleep(e.ctx, 20*time.Millisecond) {
			e.t.Fatalf("queue %s still holds %d messages (%v)", queue, n, err)
		}
	}
}

func (e *env) queueLen(queue string) uint64 {
	e.t.Helper()
	s, err := e.js.Stream(e.ctx, natsq.StreamName(queue))
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

func ids(recs []events.SQSMessage) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.MessageId
	}
	return out
}

func TestSchemaAndConfigure(t *testing.T) {
	src := newSourceWithLogger(testLogger())
	t.Cleanup(src.Close)
	c := sdktest.Trigger(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, schema, err := c.Schema(ctx)
	if err != nil || v != sdk.TriggerAPIVersion || len(schema.Attributes) != 2 || schema.Attributes[0].Name != "url" ||
		schema.Attributes[1].Name != "credentials_file" || schema.Attributes[0].Required {
		t.Fatalf("schema %d %+v %v", v, schema, err)
	}
	host := &sdktest.Host{}
	diags, err := c.Configure(ctx, sdk.ConfigureRequest{Config: json.RawMessage(`{}`)}, host)
	if err != nil || len(diags) != 1 || diags[0].Attribute != "url" {
		t.Errorf("no URL: %+v %v", diags, err)
	}
	diags, err = c.Configure(ctx, sdk.ConfigureRequest{Config: json.RawMessage(`{"url":"nats://127.0.0.1:1","credentials_file":"/no/such/file"}`)}, host)
	if err != nil || len(diags) != 1 || diags[0].Attribute != "credentials_file" {
		t.Errorf("missing credentials file: %+v %v", diags, err)
	}
	if _, err := c.SetMappings(ctx, []sdk.Mapping{mapping("m", "q")}); err == nil {
		t.Errorf("mappings before a configuration were taken")
	}
}

// TestEventShape: a record is Lambda's SQS record, field by field, and the batch's ItemIDs are
// its messageIds; acked messages leave the queue.
func TestEventShape(t *testing.T) {
	e := newEnv(t, nil, nil)
	before := time.Now().UnixMilli()
	e.publish("orders", "first body", map[string]string{"color": "blue", "Nats-Msg-Id": "order-1"})
	e.publish("orders", `{"n":2}`, nil)
	after := time.Now().UnixMilli()
	if st := e.setMappings(mapping("m1", "orders")); len(st) != 1 || st[0].UUID != "m1" || st[0].State != sdk.StateOK {
		t.Fatalf("statuses %+v", st)
	}
	recs := e.waitRecords(2)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	var itemIDs []string
	for _, b := range e.host.Batches() {
		if b.MappingUUID != "m1" {
			t.Errorf("batch of mapping %q", b.MappingUUID)
		}
		itemIDs = append(itemIDs, b.ItemIDs...)
	}
	if got := ids(recs); fmt.Sprint(got) != fmt.Sprint(itemIDs) || fmt.Sprint(got) != "[order-1 2]" {
		t.Errorf("messageIds %v, ItemIDs %v; want [order-1 2]", got, itemIDs)
	}
	for i, want := range []string{"first body", `{"n":2}`} {
		r := recs[i]
		sum := md5.Sum([]byte(want))
		if r.Body != want || r.Md5OfBody != hex.EncodeToString(sum[:]) {
			t.Errorf("record %d: body %q md5 %s", i, r.Body, r.Md5OfBody)
		}
		if h, err := base64.StdEncoding.DecodeString(r.ReceiptHandle); err != nil || len(h) == 0 {
			t.Errorf("record %d: receipt handle %q: %v", i, r.ReceiptHandle, err)
		}
		if r.EventSource != "aws:sqs" || r.AWSRegion != testRegion || r.EventSourceARN != "arn:aws:sqs:eu-west-1:000000000000:orders" {
			t.Errorf("record %d: source %q region %q ARN %q", i, r.EventSource, r.AWSRegion, r.EventSourceARN)
		}
		a := r.Attributes
		sent, _ := strconv.ParseInt(a["SentTimestamp"], 10, 64)
		first, _ := strconv.ParseInt(a["ApproximateFirstReceiveTimestamp"], 10, 64)
		if a["ApproximateReceiveCount"] != "1" || a["SenderId"] != "gateway" || sent < before || sent > after ||
			first < sent || first > time.Now().UnixMilli() || len(a) != 4 {
			t.Errorf("record %d: attributes %v (published between %d and %d)", i, a, before, after)
		}
	}
	attrs := recs[0].MessageAttributes
	if len(attrs) != 1 || attrs["color"].StringValue == nil || *attrs["color"].StringValue != "blue" || attrs["color"].DataType != "String" {
		t.Errorf("message attributes %+v", attrs)
	}
	if recs[0].Md5OfMessageAttributes != md5OfMessageAttributes(attrs) || recs[0].Md5OfMessageAttributes == "" {
		t.Errorf("md5OfMessageAttributes %q", recs[0].Md5OfMessageAttributes)
	}
	if len(recs[1].MessageAttributes) != 0 || recs[1].Md5OfMessageAttributes != "" {
		t.Errorf("second record's attributes %+v %q", recs[1].MessageAttributes, recs[1].Md5OfMessageAttributes)
	}
	e.waitEmpty("orders")
}

// TestMD5OfMessageAttributes checks the attributes' digest against the values SQS computes.
func TestMD5OfMessageAttributes(t *testing.T) {
	s := func(v, typ string) events.SQSMessageAttribute {
		return events.SQSMessageAttribute{StringValue: &v, DataType: typ}
	}
	for _, tc := range []struct {
		attrs map[string]events.SQSMessageAttribute
		want  string
	}{
		{map[string]events.SQSMessageAttribute{"SellerName": s("Example Store", "String")}, "cd28f3b68aeee4b2eac9c66f2f694b58"},
		{map[string]events.SQSMessageAttribute{"ordinal": s("1", "Number"), "category": s("test", "String")}, "d21ae90c49061e927f57df5f5d72be1f"},
		{nil, ""},
	} {
		if got := md5OfMessageAttributes(tc.attrs); got != tc.want {
			t.Errorf("md5 of %v = %q, want %q", tc.attrs, got, tc.want)
		}
	}
}

// TestBatchSizeAndWindow: batches hold at most BatchSize records; with a window the records
// arriving within it after the first one make one batch; a full batch does not wait out the
// window.
func TestBatchSizeAndWindow(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		for i := 0; i < 10; i++ {
			e.publish("q", strconv.Itoa(i), nil)
		}
		m := mapping("m", "q")
		m.BatchSize = 3
		e.setMappings(m)
		e.waitRecords(10)
		bs := e.host.Batches()
		for _, b := range bs {
			if len(b.ItemIDs) > 3 {
				t.Errorf("a batch of %d records", len(b.ItemIDs))
			}
		}
		if len(bs) < 4 || len(bs[0].ItemIDs) != 3 {
			t.Errorf("%d batches, the first of %d", len(bs), len(bs[0].ItemIDs))
		}
	})
	t.Run("window", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		m := mapping("m", "q")
		m.BatchSize = 100
		m.BatchWindow = 2 * time.Second
		e.setMappings(m)
		for i := 0; i < 5; i++ {
			e.publish("q", strconv.Itoa(i), nil)
			time.Sleep(50 * time.Millisecond)
		}
		e.waitRecords(5)
		if bs := e.host.Batches(); len(bs) != 1 || len(bs[0].ItemIDs) != 5 {
			t.Errorf("%d batches, want one of 5", len(bs))
		}
	})
	t.Run("full before the window", func(t *testing.T) {
		e := newEnv(t, nil, nil)
		m := mapping("m", "q")
		m.BatchSize = 5
		m.BatchWindow = time.Minute
		e.setMappings(m)
		for i := 0; i < 5; i++ {
			e.publish("q", strconv.Itoa(i), nil)
		}
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		if err := e.host.Wait(ctx, func(h *sdktest.Host) bool { return len(h.Batches()) > 0 }); err != nil {
			t.Fatalf("a full batch waited for its window: %v", err)
		}
		if bs := e.host.Batches(); len(bs[0].ItemIDs) != 5 {
			t.Errorf("batch of %d, want 5", len(bs[0].ItemIDs))
		}
	})
}

// TestPartialBatchFailure: the records named in batchItemFailures come back, and only they;
// the others are acked.
func TestPartialBatchFailure(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(b sdk.Batch) sdk.BatchResult {
		if calls.Add(1) == 1 {
			return sdk.BatchResult{Outcome: sdk.Partial, FailedItemIDs: []string{"2", "5"}}
		}
		return sdk.BatchResult{}
	}, nil)
	for i := 1; i <= 6; i++ {
		e.publish("q", strconv.Itoa(i), nil)
	}
	e.setMappings(mapping("m", "q"))
	recs := e.waitRecords(8)
	bs := e.host.Batches()
	if len(bs[0].ItemIDs) != 6 {
		t.Fatalf("first batch %v, want all 6", bs[0].ItemIDs)
	}
	again := recs[6:]
	if len(recs) != 8 || fmt.Sprint(ids(again)) != "[2 5]" {
		t.Fatalf("redelivered %v, want [2 5]", ids(again))
	}
	firstReceive := map[string]string{}
	for _, r := range recs[:6] {
		firstReceive[r.MessageId] = r.Attributes["ApproximateFirstReceiveTimestamp"]
	}
	for _, r := range again {
		if r.Attributes["ApproximateReceiveCount"] != "2" || r.Attributes["ApproximateFirstReceiveTimestamp"] != firstReceive[r.MessageId] {
			t.Errorf("redelivered record %s: attributes %v", r.MessageId, r.Attributes)
		}
	}
	e.waitEmpty("q")
	if n := len(records(t, e.host.Batches())); n != 8 {
		t.Errorf("%d records delivered, want 8", n)
	}
}

// failureRecordOf decodes an on-failure record.
func failureRecordOf(t *testing.T, b []byte) failureRecord {
	t.Helper()
	var r failureRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("on-failure record: %v\n%s", err, b)
	}
	return r
}

// TestRetriesThenOnFailure: a record the function keeps failing is delivered
// MaximumRetryAttempts+1 times, then sent to the on-failure destination (after a failed send,
// again) and removed from the queue.
func TestRetriesThenOnFailure(t *testing.T) {
	var sendFails atomic.Int32
	sendFails.Store(1)
	e := newEnv(t, func(sdk.Batch) sdk.BatchResult {
		return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: "Runtime.ExitError", ErrorMessage: "boom"}
	}, func(h *sdktest.Host) sdk.Host { return &flakyHost{Host: h, sendFails: &sendFails} })
	e.publish("q", "poison", map[string]string{"k": "v"})
	m := mapping("m", "q")
	m.MaximumRetryAttempts = 2
	m.OnFailureDestination = "queue:dlq"
	m.Qualifier = "live"
	e.setMappings(m)
	if err := e.host.Wait(e.ctx, func(h *sdktest.Host) bool { return len(h.Failures()) > 0 }); err != nil {
		t.Fatalf("no on-failure record: %v", err)
	}
	e.waitEmpty("q")
	recs := records(t, e.host.Batches())
	if len(recs) != 3 {
		t.Fatalf("delivered %d times, want 3", len(recs))
	}
	for i, r := range recs {
		if r.Attributes["ApproximateReceiveCount"] != strconv.Itoa(i+1) {
			t.Errorf("delivery %d: receive count %s", i+1, r.Attributes["ApproximateReceiveCount"])
		}
	}
	f := e.host.Failures()
	if len(f) != 1 || f[0].MappingUUID != "m" {
		t.Fatalf("failures %+v", f)
	}
	r := failureRecordOf(t, f[0].Record)
	rc := r.RequestContext
	if rc.Condition != "RetryAttemptsExhausted" || rc.FunctionARN != m.FunctionARN || rc.RequestID == "" ||
		rc.ApproximateInvokeCount < 3 {
		t.Errorf("requestContext %+v", rc)
	}
	if r.ResponseContext != (trigger.ResponseContext{StatusCode: 200, ExecutedVersion: "live", FunctionError: "Unhandled"}) {
		t.Errorf("responseContext %+v", r.ResponseContext)
	}
	if _, err := time.Parse(time.RFC3339, r.Timestamp); err != nil || r.Version != "1.0" {
		t.Errorf("version %q timestamp %q: %v", r.Version, r.Timestamp, err)
	}
	if len(r.Payload.Records) != 1 || r.Payload.Records[0].Body != "poison" || r.Payload.Records[0].MessageId != "1" ||
		*r.Payload.Records[0].MessageAttributes["k"].StringValue != "v" || r.SQSBatchInfo.QueueARN != recs[0].EventSourceARN ||
		r.SQSBatchInfo.MessageID != "1" {
		t.Errorf("record %+v", r)
	}
	if n := sendFails.Load(); n >= 0 {
		t.Errorf("the failing send was not tried (%d)", n)
	}
}

// TestRecordAge: a record older than MaximumRecordAge is not delivered; with no on-failure
// destination it is dropped, with one it is sent there.
func TestRecordAge(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.publish("old", "stale", nil)
	e.publish("old2", "stale", nil)
	time.Sleep(100 * time.Millisecond)
	m := mapping("m", "old")
	m.MaximumRecordAge = 50 * time.Millisecond
	m2 := mapping("m2", "old2")
	m2.MaximumRecordAge = 50 * time.Millisecond
	m2.OnFailureDestination = "function:dlq"
	e.setMappings(m, m2)
	if err := e.host.Wait(e.ctx, func(h *sdktest.Host) bool { return len(h.Failures()) > 0 }); err != nil {
		t.Fatalf("no on-failure record: %v", err)
	}
	e.waitEmpty("old")
	e.waitEmpty("old2")
	f := e.host.Failures()
	if len(f) != 1 || f[0].MappingUUID != "m2" {
		t.Fatalf("failures %+v", f)
	}
	r := failureRecordOf(t, f[0].Record)
	if r.RequestContext.Condition != "RecordAgeExceeded" || r.RequestContext.ApproximateInvokeCount != 0 ||
		r.Payload.Records[0].Body != "stale" {
		t.Errorf("record %+v", r)
	}
	if n := len(e.host.Batches()); n != 0 {
		t.Errorf("%d batches delivered", n)
	}
}

// flakyHost fails its first deliveries and on-failure sends (the host going away).
type flakyHost struct {
	*sdktest.Host
	deliverFails, sendFails *atomic.Int32
}

func (h *flakyHost) Deliver(ctx context.Context, b sdk.Batch) (sdk.BatchResult, error) {
	if h.deliverFails != nil && h.deliverFails.Add(-1) >= 0 {
		return sdk.BatchResult{}, errors.New("the gateway went away")
	}
	return h.Host.Deliver(ctx, b)
}

func (h *flakyHost) SendOnFailure(ctx context.Context, id string, rec []byte) error {
	if h.sendFails != nil && h.sendFails.Add(-1) >= 0 {
		return errors.New("the destination is down")
	}
	return h.Host.SendOnFailure(ctx, id, rec)
}

// TestDeliverErrorRedelivers: a batch whose delivery failed comes again.
func TestDeliverErrorRedelivers(t *testing.T) {
	var fails atomic.Int32
	fails.Store(2)
	e := newEnv(t, nil, func(h *sdktest.Host) sdk.Host { return &flakyHost{Host: h, deliverFails: &fails} })
	e.publish("q", "x", nil)
	e.setMappings(mapping("m", "q"))
	recs := e.waitRecords(1)
	if recs[0].Attributes["ApproximateReceiveCount"] != "3" {
		t.Errorf("receive count %s, want 3", recs[0].Attributes["ApproximateReceiveCount"])
	}
	e.waitEmpty("q")
}

// TestLongRunStaysInvisible: a batch whose function runs past the visibility timeout is not
// handed out again meanwhile (the plugin keeps it in progress).
func TestLongRunStaysInvisible(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, func(sdk.Batch) sdk.BatchResult {
		if calls.Add(1) == 1 {
			time.Sleep(2500 * time.Millisecond)
		}
		return sdk.BatchResult{}
	}, nil)
	m := mapping("m", "q")
	m.Options[optionVisibilityTimeout] = "1s"
	m.Options[optionMaximumConcurrency] = "2" // a second poller waits for anything redelivered
	e.setMappings(m)
	e.publish("q", "slow", nil)
	e.waitRecords(1)
	e.waitEmpty("q")
	if n := calls.Load(); n != 1 {
		t.Errorf("delivered %d times, want once", n)
	}
}

// TestStopMapping: a mapping left out stops (its goroutines end) and leaves its messages in the
// queue; given again, its consumer delivers them. Disabled and bad mappings report so.
func TestStopMapping(t *testing.T) {
	e := newEnv(t, nil, nil)
	m := mapping("m", "q")
	e.publish("q", "one", nil)
	e.setMappings(m)
	e.waitRecords(1)
	e.waitEmpty("q")

	if st := e.setMappings(); len(st) != 0 {
		t.Errorf("statuses after stopping: %+v", st)
	}
	if left := e.src.Len(); left != 0 {
		t.Errorf("%d consumers left", left)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "main.(*consumer)") {
		t.Errorf("goroutines of the stopped mapping are left:\n%s", stacks)
	}
	for i := 0; i < 3; i++ {
		e.publish("q", "later", nil)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(e.host.Batches()); n != 1 {
		t.Errorf("a stopped mapping delivered: %d batches", n)
	}
	if n := e.queueLen("q"); n != 3 {
		t.Errorf("the queue holds %d messages, want 3", n)
	}

	off := mapping("off", "other")
	off.Enabled = false
	bad := mapping("bad", "no.dots")
	big := mapping("big", "q2")
	big.BatchSize = 20000
	twin := mapping("twin", "q") // two mappings of one queue share its messages
	st := e.setMappings(m, off, bad, big, twin)
	if len(st) != 5 || st[0].State != sdk.StateOK || st[1].State != sdk.StateOK || st[1].Message != "disabled" ||
		st[2].State != sdk.StateError || st[3].State != sdk.StateError || st[4].State != sdk.StateOK {
		t.Errorf("statuses %+v", st)
	}
	e.waitRecords(4)
	e.waitEmpty("q")
	if st, err := e.client.Status(e.ctx); err != nil || len(st) != 5 || st[0].UUID != "m" || st[0].State != sdk.StateOK {
		t.Errorf("status %+v %v", st, err)
	}
}

// TestCount: 1000 messages, batches of 10, about one record in ten failing each time: every
// message is delivered successfully at least once and none is lost.
func TestCount(t *testing.T) {
	const total = 1000
	var mu sync.Mutex
	succeeded := map[string]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	e := newEnv(t, func(b sdk.Batch) sdk.BatchResult {
		mu.Lock()
		defer mu.Unlock()
		var failed []string
		for _, id := range b.ItemIDs {
			if rng.IntN(10) == 0 {
				failed = append(failed, id)
			} else {
				succeeded[id]++
			}
		}
		if len(failed) == 0 {
			return sdk.BatchResult{}
		}
		return sdk.BatchResult{Outcome: sdk.Partial, FailedItemIDs: failed}
	}, nil)
	for i := 0; i < total; i++ {
		e.publish("bulk", strconv.Itoa(i), nil)
	}
	m := mapping("m", "bulk")
	m.BatchSize = 10
	m.Options[optionMaximumConcurrency] = "4"
	e.setMappings(m)
	if err := e.host.Wait(e.ctx, func(*sdktest.Host) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(succeeded) >= total
	}); err != nil {
		mu.Lock()
		t.Fatalf("%d of %d messages succeeded: %v", len(succeeded), total, err)
	}
	e.waitEmpty("bulk")
	mu.Lock()
	defer mu.Unlock()
	if len(succeeded) != total {
		t.Errorf("%d distinct messages succeeded, want %d", len(succeeded), total)
	}
	for i := 1; i <= total; i++ {
		if succeeded[strconv.Itoa(i)] == 0 {
			t.Errorf("message %d never succeeded", i)
		}
	}
	var batches, biggest int
	for _, b := range e.host.Batches() {
		batches++
		biggest = max(biggest, len(b.ItemIDs))
	}
	if biggest > 10 {
		t.Errorf("a batch of %d", biggest)
	}
	t.Logf("%d batches", batches)
}
