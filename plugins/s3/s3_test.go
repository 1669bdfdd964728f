package main

// The s3 trigger through the real gRPC boundary (sdktest), against a real versitygw (s3test)
// driven with the AWS SDK's S3 client.

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/internal/testfixtures/s3test"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
)

const testTimeout = 30 * time.Second

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startSource runs a source behind sdktest and configures it; it is closed when the test ends
// (before the gRPC connection).
func startSource(t *testing.T, host sdk.Host, dataDir string, cfg map[string]string) (*source, *sdk.TriggerClient) {
	t.Helper()
	src := newSourceWithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}}))
	c := sdktest.Trigger(t, src)
	t.Cleanup(src.Close)
	b, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	diags, err := c.Configure(ctx, sdk.ConfigureRequest{Config: b,
		HostInfo: map[string]string{"data_dir": dataDir, "region": "us-east-1", "node_name": "n1"}}, host)
	if err != nil || len(diags) > 0 {
		t.Fatalf("configure: %v %+v", err, diags)
	}
	return src, c
}

func setMappings(t *testing.T, c *sdk.TriggerClient, ms ...sdk.Mapping) []sdk.MappingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	st, err := c.SetMappings(ctx, ms)
	if err != nil {
		t.Fatalf("set mappings: %v", err)
	}
	return st
}

func mapping(uuid, name, bucket string, options map[string]string) sdk.Mapping {
	return sdk.Mapping{UUID: uuid, Name: name, Function: "fn-" + name, FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:fn-" + name,
		Source: bucket, MaximumRetryAttempts: -1, Enabled: true, Options: options}
}

// freeAddr is a loopback address nothing listens on (the webhook's, given to versitygw before
// it starts and kept across a restart of the plugin).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// delivered is a delivered record with its batch.
type delivered struct {
	batch  sdk.Batch
	record events.S3EventRecord
	raw    json.RawMessage
}

// recordsOf returns the records delivered for a mapping, in order.
func recordsOf(t *testing.T, h *sdktest.Host, uuid string) []delivered {
	t.Helper()
	var out []delivered
	for _, b := range h.Batches() {
		if b.MappingUUID != uuid {
			continue
		}
		var ev events.S3Event
		var raw struct{ Records []json.RawMessage }
		if err := json.Unmarshal(b.Event, &ev); err != nil {
			t.Fatalf("event %s: %v", b.Event, err)
		}
		_ = json.Unmarshal(b.Event, &raw)
		for i, r := range ev.Records {
			out = append(out, delivered{batch: b, record: r, raw: raw.Records[i]})
		}
	}
	return out
}

func keysOf(ds []delivered) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.record.EventName+" "+d.record.S3.Object.URLDecodedKey)
	}
	return out
}

func waitFor(t *testing.T, h *sdktest.Host, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.Wait(ctx, func(*sdktest.Host) bool { return cond() }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// eventually waits until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noGoroutines fails when a goroutine runs one of the functions named.
func noGoroutines(t *testing.T, funcs ...string) {
	t.Helper()
	var stacks string
	eventually(t, "the goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		for _, f := range funcs {
			if strings.Contains(stacks, f) {
				return false
			}
		}
		return true
	})
}

func put(t *testing.T, srv *s3test.Server, bucket, key, body string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	out, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return strings.Trim(aws.ToString(out.ETag), `"`)
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestWebhookDeliversS3Events: versitygw pushes its notifications to the plugin, which delivers
// Lambda's S3 events, one record a batch, filtered by bucket, prefix, suffix and event name; a
// function error is retried and then succeeds.
func TestWebhookDeliversS3Events(t *testing.T) {
	var mu sync.Mutex
	failedOnce := false
	host := &sdktest.Host{Result: func(b sdk.Batch) sdk.BatchResult {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(string(b.Event), `"key":"flaky.txt"`) && !failedOnce {
			failedOnce = true
			return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: "Runtime.ExitError", ErrorMessage: "flaked"}
		}
		return sdk.BatchResult{Outcome: sdk.Success}
	}}
	addr := freeAddr(t)
	_, c := startSource(t, host, t.TempDir(), map[string]string{"webhook_listen": addr})
	st := setMappings(t, c,
		mapping("m-all", "all-photos", "photos", map[string]string{"retry_delay": "50ms"}),
		mapping("m-jpg", "jpgs", "photos", map[string]string{"prefix": "photos/", "suffix": ".jpg",
			"events": "s3:ObjectCreated:*,s3:ObjectRemoved:*"}),
	)
	for _, s := range st {
		if s.State != sdk.StateOK {
			t.Fatalf("status %+v", s)
		}
	}
	srv := s3test.Start(t, s3test.Options{WebhookURL: "http://" + addr + "/notify", Buckets: []string{"photos", "other"}})

	start := time.Now()
	catTag := put(t, srv, "photos", "photos/my cat+1.jpg", "meow")
	put(t, srv, "photos", "photos/doc.txt", "text")
	put(t, srv, "photos", "notes/readme.jpg", "not in photos/")
	put(t, srv, "photos", "flaky.txt", "flaky")
	put(t, srv, "other", "photos/elsewhere.jpg", "another bucket")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := srv.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("photos"), Key: aws.String("photos/doc.txt")}); err != nil {
		t.Fatal(err)
	}

	wantAll := []string{"ObjectCreated:Put flaky.txt", "ObjectCreated:Put flaky.txt", "ObjectCreated:Put notes/readme.jpg",
		"ObjectCreated:Put photos/doc.txt", "ObjectCreated:Put photos/my cat+1.jpg"}
	wantJpg := []string{"ObjectCreated:Put photos/my cat+1.jpg"}
	waitFor(t, host, "the deliveries", func() bool {
		return len(recordsOf(t, host, "m-all")) >= len(wantAll) && len(recordsOf(t, host, "m-jpg")) >= len(wantJpg)
	})
	time.Sleep(300 * time.Millisecond) // anything more would be a mistake
	all, jpg := recordsOf(t, host, "m-all"), recordsOf(t, host, "m-jpg")
	gotAll, gotJpg := keysOf(all), keysOf(jpg)
	sort.Strings(gotAll)
	sort.Strings(gotJpg)
	if !slices.Equal(gotAll, wantAll) {
		t.Errorf("mapping m-all got %q, want %q", gotAll, wantAll)
	}
	if !slices.Equal(gotJpg, wantJpg) {
		t.Errorf("mapping m-jpg got %q, want %q (the delete of a .txt is filtered out)", gotJpg, wantJpg)
	}
	if len(host.Failures()) != 0 {
		t.Errorf("on-failure records: %v", host.Failures())
	}

	// One record per batch, with its sequencer as the item id.
	for _, d := range append(all, jpg...) {
		var ev struct{ Records []json.RawMessage }
		_ = json.Unmarshal(d.batch.Event, &ev)
		if len(ev.Records) != 1 || len(d.batch.ItemIDs) != 1 || d.batch.ItemIDs[0] != d.record.S3.Object.Sequencer {
			t.Errorf("batch %s with items %q", d.batch.Event, d.batch.ItemIDs)
		}
	}

	// The record of the cat, field by field.
	r := jpg[0].record
	checks := []struct {
		field     string
		got, want any
	}{
		{"eventVersion", r.EventVersion, "2.1"},
		{"eventSource", r.EventSource, "aws:s3"},
		{"awsRegion", r.AWSRegion, "us-east-1"},
		{"eventName", r.EventName, "ObjectCreated:Put"},
		{"userIdentity.principalId", r.PrincipalID.PrincipalID, srv.AccessKey},
		{"requestParameters.sourceIPAddress", r.RequestParameters.SourceIPAddress, "127.0.0.1"},
		{"s3.s3SchemaVersion", r.S3.SchemaVersion, "1.0"},
		{"s3.configurationId", r.S3.ConfigurationID, "jpgs"},
		{"s3.bucket.name", r.S3.Bucket.Name, "photos"},
		{"s3.bucket.ownerIdentity.principalId", r.S3.Bucket.OwnerIdentity.PrincipalID, srv.AccessKey},
		{"s3.bucket.arn", r.S3.Bucket.Arn, "arn:aws:s3:::photos"},
		{"s3.object.key", r.S3.Object.Key, "photos/my+cat%2B1.jpg"},
		{"s3.object.key decoded", r.S3.Object.URLDecodedKey, "photos/my cat+1.jpg"},
		{"s3.object.size", r.S3.Object.Size, int64(4)},
		{"s3.object.eTag", r.S3.Object.ETag, md5hex("meow")},
		{"s3.object.eTag as PutObject gave it", r.S3.Object.ETag, catTag},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if r.S3.Object.Sequencer == "" {
		t.Error("s3.object.sequencer is empty")
	}
	if _, ok := r.ResponseElements["x-amz-request-id"]; !ok {
		t.Errorf("responseElements %v", r.ResponseElements)
	}
	if r.EventTime.Before(start.Add(-2*time.Second)) || r.EventTime.After(time.Now().Add(time.Second)) {
		t.Errorf("eventTime %v is not about now", r.EventTime)
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(jpg[0].raw, &fields)
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	if want := []string{"awsRegion", "eventName", "eventSource", "eventTime", "eventVersion", "requestParameters",
		"responseElements", "s3", "userIdentity"}; !slices.Equal(names, want) {
		t.Errorf("record fields %q, want %q", names, want)
	}
}

// TestWebhookGivesUpToOnFailure: a record the function keeps failing on is retried
// MaximumRetryAttempts times, then sent to the on-failure destination as Lambda's asynchronous
// invocation record; the records after it go on, and RetryLater waits without using attempts.
func TestWebhookGivesUpToOnFailure(t *testing.T) {
	var later atomic.Int32
	host := &sdktest.Host{Result: func(b sdk.Batch) sdk.BatchResult {
		if strings.Contains(string(b.Event), "poison") {
			return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: "Handled", ErrorMessage: "no",
				Response: []byte(`{"errorMessage":"no","errorType":"Handled"}`)}
		}
		if later.Add(1) <= 2 { // more than MaximumRetryAttempts: RetryLater uses no attempt
			return sdk.BatchResult{Outcome: sdk.RetryLater}
		}
		return sdk.BatchResult{Outcome: sdk.Success}
	}}
	addr := freeAddr(t)
	_, c := startSource(t, host, t.TempDir(), map[string]string{"webhook_listen": addr})
	m := mapping("m-dlq", "dlq", "jobs", map[string]string{"retry_delay": "20ms"})
	m.MaximumRetryAttempts, m.OnFailureDestination = 1, "queue:dead"
	setMappings(t, c, m)
	srv := s3test.Start(t, s3test.Options{WebhookURL: "http://" + addr + "/", Buckets: []string{"jobs"}})
	put(t, srv, "jobs", "poison.json", "{}")
	waitFor(t, host, "the poison's failure", func() bool { return len(host.Failures()) == 1 })
	put(t, srv, "jobs", "fine.json", "{}")
	waitFor(t, host, "the next record", func() bool { return len(recordsOf(t, host, "m-dlq")) == 5 })
	time.Sleep(100 * time.Millisecond)
	if got := keysOf(recordsOf(t, host, "m-dlq")); !slices.Equal(got, []string{"ObjectCreated:Put poison.json",
		"ObjectCreated:Put poison.json", "ObjectCreated:Put fine.json", "ObjectCreated:Put fine.json",
		"ObjectCreated:Put fine.json"}) || len(host.Failures()) != 1 {
		t.Errorf("deliveries %q, %d on-failure records", got, len(host.Failures()))
	}
	f := host.Failures()[0]
	var rec struct {
		Version        string
		RequestContext struct {
			FunctionARN            string `json:"functionArn"`
			Condition              string
			ApproximateInvokeCount int
			RequestID              string `json:"requestId"`
		}
		RequestPayload  events.S3Event
		ResponseContext struct {
			StatusCode      int
			ExecutedVersion string
			FunctionError   string
		}
		ResponsePayload map[string]string
	}
	if err := json.Unmarshal(f.Record, &rec); err != nil {
		t.Fatal(err)
	}
	if f.MappingUUID != "m-dlq" || rec.Version != "1.0" || rec.RequestContext.Condition != "RetriesExhausted" ||
		rec.RequestContext.ApproximateInvokeCount != 2 || rec.RequestContext.FunctionARN != m.FunctionARN ||
		rec.RequestContext.RequestID == "" || len(rec.RequestPayload.Records) != 1 ||
		rec.RequestPayload.Records[0].S3.Object.Key != "poison.json" || rec.ResponseContext.StatusCode != 200 ||
		rec.ResponseContext.ExecutedVersion != "$LATEST" || rec.ResponseContext.FunctionError != "Unhandled" ||
		rec.ResponsePayload["errorType"] != "Handled" {
		t.Errorf("on-failure record %s", f.Record)
	}
}

// TestWebhookJournalSurvivesRestart: notifications the store was answered for are delivered by
// the next plugin process when the first could not deliver them, in the order they came; then
// the journal is empty and new notifications flow again.
func TestWebhookJournalSurvivesRestart(t *testing.T) {
	dataDir, addr := t.TempDir(), freeAddr(t)
	busy := &sdktest.Host{Result: func(sdk.Batch) sdk.BatchResult { return sdk.BatchResult{Outcome: sdk.RetryLater} }}
	src1, c1 := startSource(t, busy, dataDir, map[string]string{"webhook_listen": addr})
	m := mapping("m-durable", "durable", "inbox", nil)
	setMappings(t, c1, m)
	srv := s3test.Start(t, s3test.Options{WebhookURL: "http://" + addr + "/", Buckets: []string{"inbox"}})

	pending := func() int {
		src1.mu.RLock()
		defer src1.mu.RUnlock()
		return src1.hooks["m-durable"].j.len()
	}
	keys := []string{"one.txt", "two words.txt", "three.txt"}
	for i, k := range keys {
		put(t, srv, "inbox", k, k)
		// One at a time, to know their order.
		eventually(t, fmt.Sprintf("%d records in the journal", i+1), func() bool { return pending() == i+1 })
	}
	waitFor(t, busy, "a delivery attempt", func() bool { return len(busy.Batches()) > 0 })
	src1.Close() // the plugin goes away with three records undelivered
	noGoroutines(t, "main.(*webhookRunner).run", "net/http.(*Server).Serve")
	if len(busy.Failures()) != 0 {
		t.Fatalf("records given up on: %v", busy.Failures())
	}

	host := &sdktest.Host{}
	_, c2 := startSource(t, host, dataDir, map[string]string{"webhook_listen": addr})
	setMappings(t, c2, m)
	waitFor(t, host, "the journal's records", func() bool { return len(recordsOf(t, host, "m-durable")) >= 3 })
	want := []string{"ObjectCreated:Put one.txt", "ObjectCreated:Put two words.txt", "ObjectCreated:Put three.txt"}
	if got := keysOf(recordsOf(t, host, "m-durable")); !slices.Equal(got, want) {
		t.Fatalf("after the restart: %q, want %q", got, want)
	}
	put(t, srv, "inbox", "four.txt", "4")
	waitFor(t, host, "a new record", func() bool { return len(recordsOf(t, host, "m-durable")) >= 4 })
	if got := keysOf(recordsOf(t, host, "m-durable")); !slices.Equal(got, append(want, "ObjectCreated:Put four.txt")) {
		t.Fatalf("deliveries %q", got)
	}
	eventually(t, "an empty journal once everything is delivered", func() bool {
		st, err := os.Stat(filepath.Join(dataDir, "webhook", "m-durable.journal"))
		return err == nil && st.Size() == 0
	})
}

// TestWebhookTakesAmazonS3Notifications: Amazon S3's own notification JSON (URL-encoded keys) is
// taken too; test events, strangers without the token and malformed documents are answered
// without delivering anything.
func TestWebhookTakesAmazonS3Notifications(t *testing.T) {
	host := &sdktest.Host{}
	src, c := startSource(t, host, t.TempDir(), map[string]string{"webhook_listen": "127.0.0.1:0", "webhook_token": "s3cret"})
	addr := src.WebhookAddr() // the address the server bound
	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/?token=s3cret", amazonNotification); code != http.StatusServiceUnavailable {
		t.Errorf("before any mapping: %d", code)
	}
	setMappings(t, c, mapping("m-aws", "aws", "bkt", map[string]string{"events": "s3:ObjectRemoved:*"}))
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/", amazonNotification, http.StatusUnauthorized},
		{"/?token=wrong", amazonNotification, http.StatusUnauthorized},
		{"/?token=s3cret", `{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"bkt"}`, http.StatusOK},
		{"/?token=s3cret", `{"Records": "no"}`, http.StatusBadRequest},
		{"/any/path?token=s3cret", amazonNotification, http.StatusOK},
		// A bucket no trigger of this node reads is refused, not dropped (another node may run it).
		{"/?token=s3cret", strings.Replace(amazonNotification, `"bkt"`, `"elsewhere"`, 1), http.StatusServiceUnavailable},
	} {
		if code := post(tc.path, tc.body); code != tc.want {
			t.Errorf("POST %s %.40s: %d, want %d", tc.path, tc.body, code, tc.want)
		}
	}
	waitFor(t, host, "the delivery", func() bool { return len(recordsOf(t, host, "m-aws")) == 1 })
	r := recordsOf(t, host, "m-aws")[0].record
	if r.S3.Object.Key != "photos/my+cat%2B1.jpg" || r.S3.Object.URLDecodedKey != "photos/my cat+1.jpg" ||
		r.EventName != "ObjectRemoved:Delete" || r.AWSRegion != "eu-west-1" || r.S3.ConfigurationID != "aws" ||
		r.S3.Object.Sequencer != "0055AED6DCD90281E5" || r.PrincipalID.PrincipalID != "AWS:AIDAEXAMPLE" {
		t.Errorf("record %+v", r)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestPollDeliversEachObjectOnce: objects there before the mapping starts and put after it are
// delivered, each once, filtered by prefix and suffix (a LATEST mapping only the later ones); a
// changed object is delivered again; a restarted source delivers what came while it was away and
// nothing it had delivered.
func TestPollDeliversEachObjectOnce(t *testing.T) {
	srv := s3test.Start(t, s3test.Options{Buckets: []string{"drop"}})
	put(t, srv, "drop", "in/before-1.txt", "b1")
	put(t, srv, "drop", "in/before 2.txt", "b2")
	put(t, srv, "drop", "out/skip.txt", "not under in/")
	put(t, srv, "drop", "in/skip.bin", "not .txt")

	dataDir := t.TempDir()
	cfg := map[string]string{"webhook_listen": "off", "endpoint": srv.Endpoint, "access_key": srv.AccessKey,
		"secret_key": srv.SecretKey, "poll_interval": "100ms"}
	m := mapping("m-poll", "polled", "drop", map[string]string{"mode": "poll", "prefix": "in/", "suffix": ".txt"})
	host := &sdktest.Host{}
	src1, c1 := startSource(t, host, dataDir, cfg)
	latest := mapping("m-latest", "latest", "drop", map[string]string{"mode": "poll"})
	latest.StartingPosition = sdk.Latest
	if st := setMappings(t, c1, m, latest); len(st) != 2 || st[0].State != sdk.StateOK || st[1].State != sdk.StateOK {
		t.Fatalf("status %+v", st)
	}
	waitFor(t, host, "the objects already there", func() bool { return len(recordsOf(t, host, "m-poll")) >= 2 })
	eventually(t, "the LATEST mapping's first poll", func() bool {
		_, err := os.Stat(filepath.Join(dataDir, "poll", "m-latest.json"))
		return err == nil
	})
	put(t, srv, "drop", "in/after-1.txt", "a1")
	waitFor(t, host, "a new object", func() bool { return len(recordsOf(t, host, "m-poll")) >= 3 })
	newTag := put(t, srv, "drop", "in/before-1.txt", "b1, changed")
	waitFor(t, host, "a changed object", func() bool { return len(recordsOf(t, host, "m-poll")) >= 4 })
	time.Sleep(500 * time.Millisecond) // a few more polls: nothing more
	got := keysOf(recordsOf(t, host, "m-poll"))
	want := []string{"ObjectCreated:Put in/before 2.txt", "ObjectCreated:Put in/before-1.txt", "ObjectCreated:Put in/after-1.txt",
		"ObjectCreated:Put in/before-1.txt"}
	if !slices.Equal(sorted(got[:2]), sorted(want[:2])) || !slices.Equal(got[2:], want[2:]) {
		t.Fatalf("deliveries %q, want %q", got, want)
	}
	last := recordsOf(t, host, "m-poll")[3]
	r := last.record
	if r.EventVersion != "2.1" || r.EventSource != "aws:s3" || r.AWSRegion != "us-east-1" || r.S3.SchemaVersion != "1.0" ||
		r.S3.ConfigurationID != "polled" || r.S3.Bucket.Name != "drop" || r.S3.Bucket.Arn != "arn:aws:s3:::drop" ||
		r.S3.Object.Key != "in/before-1.txt" || r.S3.Object.Size != int64(len("b1, changed")) || r.S3.Object.ETag != newTag ||
		r.S3.Object.Sequencer == "" || last.batch.ItemIDs[0] != r.S3.Object.Sequencer || time.Since(r.EventTime) > time.Minute {
		t.Errorf("record %s", last.raw)
	}
	if got := keysOf(recordsOf(t, host, "m-latest")); !slices.Equal(got, []string{"ObjectCreated:Put in/after-1.txt",
		"ObjectCreated:Put in/before-1.txt"}) {
		t.Errorf("the LATEST mapping delivered %q", got)
	}
	for _, d := range recordsOf(t, host, "m-poll") {
		if d.record.S3.Object.URLDecodedKey == "in/before 2.txt" && d.record.S3.Object.Key != "in/before+2.txt" {
			t.Errorf("key %q", d.record.S3.Object.Key)
		}
	}

	src1.Close()
	noGoroutines(t, "main.(*pollRunner).run")
	put(t, srv, "drop", "in/while-away.txt", "w")
	host2 := &sdktest.Host{}
	_, c2 := startSource(t, host2, dataDir, cfg)
	setMappings(t, c2, m)
	waitFor(t, host2, "the object put while away", func() bool { return len(recordsOf(t, host2, "m-poll")) >= 1 })
	put(t, srv, "drop", "in/after-restart.txt", "r")
	waitFor(t, host2, "a new object", func() bool { return len(recordsOf(t, host2, "m-poll")) >= 2 })
	time.Sleep(500 * time.Millisecond)
	if got := keysOf(recordsOf(t, host2, "m-poll")); !slices.Equal(got, []string{"ObjectCreated:Put in/while-away.txt",
		"ObjectCreated:Put in/after-restart.txt"}) {
		t.Fatalf("after the restart: %q", got)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestMappingsAndConfigurationChecked: bad options put a mapping in error (the others run), bad
// configuration comes back as diagnostics, and webhook mappings fail without a webhook server.
func TestMappingsAndConfigurationChecked(t *testing.T) {
	host := &sdktest.Host{}
	_, c := startSource(t, host, t.TempDir(), map[string]string{"webhook_listen": "off"})
	st := setMappings(t, c,
		mapping("m-bad-option", "a", "b", map[string]string{"prefx": "typo"}),
		mapping("m-bad-mode", "a", "b", map[string]string{"mode": "push"}),
		mapping("m-bad-events", "a", "b", map[string]string{"events": "Created"}),
		mapping("m-webhook", "a", "b", nil),
		mapping("m-poll", "a", "b", map[string]string{"mode": "poll", "poll_interval": "1h"}),
	)
	want := map[string]string{"m-bad-option": sdk.StateError, "m-bad-mode": sdk.StateError, "m-bad-events": sdk.StateError,
		"m-webhook": sdk.StateError, "m-poll": sdk.StateOK}
	if len(st) != len(want) {
		t.Fatalf("statuses %+v", st)
	}
	for _, s := range st {
		if s.State != want[s.UUID] {
			t.Errorf("%s: %s %q", s.UUID, s.State, s.Message)
		}
	}

	src := newSourceWithLogger(hclog.NewNullLogger())
	t.Cleanup(src.Close)
	c2 := sdktest.Trigger(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, tc := range []struct {
		cfg       string
		attribute string
	}{
		{`{"poll_interval":"soon"}`, "poll_interval"},
		{`{"webhook_key_encoding":"base64"}`, "webhook_key_encoding"},
		{`{"access_key":"a"}`, "secret_key"},
		{`{"webhook_listen":"256.0.0.1:1"}`, "webhook_listen"},
	} {
		diags, err := c2.Configure(ctx, sdk.ConfigureRequest{Config: json.RawMessage(tc.cfg),
			HostInfo: map[string]string{"data_dir": t.TempDir()}}, host)
		if err != nil || len(diags) != 1 || diags[0].Attribute != tc.attribute {
			t.Errorf("%s: %+v %v", tc.cfg, diags, err)
		}
	}
}
