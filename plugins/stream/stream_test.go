package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
)

// TestConfigure: the schema, and a plugin with no NATS server to use says so on "url".
func TestConfigure(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 10*time.Second)
	src := newSourceWithLogger(testLogger())
	t.Cleanup(src.Close)
	c := sdktest.Trigger(t, src)
	v, schema, err := c.Schema(ctx)
	if err != nil || v != sdk.TriggerAPIVersion || len(schema.Attributes) != 2 || schema.Attributes[0].Name != "url" ||
		schema.Attributes[0].Required || schema.Attributes[1].Name != "credentials_file" {
		t.Fatalf("schema: %d %+v %v", v, schema, err)
	}
	if _, err := c.SetMappings(ctx, []sdk.Mapping{newMapping("m", "s")}); err == nil {
		t.Error("SetMappings before Configure succeeded")
	}
	diags, err := c.Configure(ctx, sdk.ConfigureRequest{HostInfo: map[string]string{"region": "eu-west-1"}}, &sdktest.Host{})
	if err != nil || len(diags) != 1 || diags[0].Attribute != "url" {
		t.Errorf("no NATS server: %+v %v", diags, err)
	}
	diags, err = c.Configure(ctx, sdk.ConfigureRequest{Config: json.RawMessage(`{"url":"nats://127.0.0.1:1","credentials_file":"/nonexistent"}`)},
		&sdktest.Host{})
	if err != nil || len(diags) != 1 || diags[0].Attribute != "credentials_file" {
		t.Errorf("a missing credentials file: %+v %v", diags, err)
	}
}

// TestEventShape: a batch is Lambda's Kinesis event, every field of every record as Lambda
// fills it, with the sequence numbers as item ids.
func TestEventShape(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 20*time.Second)
	if _, err := natsstream.Ensure(ctx, n.js, "shape", 2); err != nil {
		t.Fatal(err)
	}
	payloads := []string{"\x00\x01binary\xff", `{"hello":"world"}`, ""}
	before := time.Now().Add(-time.Millisecond)
	var seqs []uint64
	for _, p := range payloads {
		seqs = append(seqs, n.publish(t, ctx, "shape", "device-7", p))
	}
	after := time.Now().Add(time.Millisecond)

	host := newTestHost(nil)
	p := startPlugin(t, n, host, map[string]string{"region": "eu-west-1"})
	m := newMapping("shape-1", "shape")
	m.BatchWindow = time.Second // all three in one batch
	p.set(t, m)
	host.waitSucceeded(t, ctx, m.UUID, seqs)

	batches := host.Batches()
	if len(batches) != 1 {
		t.Fatalf("%d batches, want 1", len(batches))
	}
	b := batches[0]
	wantIDs := []string{strconv.FormatUint(seqs[0], 10), strconv.FormatUint(seqs[1], 10), strconv.FormatUint(seqs[2], 10)}
	if b.MappingUUID != m.UUID || !reflect.DeepEqual(b.ItemIDs, wantIDs) {
		t.Errorf("batch %s with item ids %v, want %v", b.MappingUUID, b.ItemIDs, wantIDs)
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(b.Event, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 3 {
		t.Fatalf("%d records", len(ev.Records))
	}
	shardID := natsstream.ShardID(natsstream.ShardFor("device-7", 2))
	for i, r := range ev.Records {
		seq := wantIDs[i]
		want := events.KinesisEventRecord{
			AwsRegion:         "eu-west-1",
			EventID:           shardID + ":" + seq,
			EventName:         "aws:kinesis:record",
			EventSource:       "aws:kinesis",
			EventSourceArn:    "arn:aws:kinesis:eu-west-1:000000000000:stream/shape",
			EventVersion:      "1.0",
			InvokeIdentityArn: "arn:aws:iam::000000000000:role/gateway",
			Kinesis: events.KinesisRecord{
				ApproximateArrivalTimestamp: r.Kinesis.ApproximateArrivalTimestamp,
				Data:                        []byte(payloads[i]),
				PartitionKey:                "device-7",
				SequenceNumber:              seq,
				KinesisSchemaVersion:        "1.0",
			},
		}
		if len(want.Kinesis.Data) == 0 {
			want.Kinesis.Data = r.Kinesis.Data // "" decodes as an empty or nil slice
			if len(r.Kinesis.Data) != 0 {
				t.Errorf("record %d: data %q, want none", i, r.Kinesis.Data)
			}
		}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, r, want)
		}
		if at := r.Kinesis.ApproximateArrivalTimestamp.Time; at.Before(before) || at.After(after) {
			t.Errorf("record %d arrived at %v, not between %v and %v", i, at, before, after)
		}
	}
	// The wire form: data as base64, the arrival time as seconds.
	var raw struct {
		Records []struct {
			Kinesis map[string]any `json:"kinesis"`
		}
	}
	if err := json.Unmarshal(b.Event, &raw); err != nil {
		t.Fatal(err)
	}
	for i, r := range raw.Records {
		if got := r.Kinesis["data"]; got != base64.StdEncoding.EncodeToString([]byte(payloads[i])) {
			t.Errorf("record %d: data on the wire: %#v", i, got)
		}
	}
	if ts, ok := raw.Records[0].Kinesis["approximateArrivalTimestamp"].(float64); !ok || ts < float64(before.Unix()) || ts > float64(after.Unix()+1) {
		t.Errorf("approximateArrivalTimestamp on the wire: %v", raw.Records[0].Kinesis["approximateArrivalTimestamp"])
	}
	if st, err := p.client.Status(ctx); err != nil || len(st) != 1 || st[0].State != sdk.StateOK {
		t.Errorf("status: %+v %v", st, err)
	}
}

// TestOrderingUnderLoad: 2000 records over 20 partition keys on 4 shards, while the function
// fails now and then and the gateway asks for retries: every record is delivered, per key in
// increasing sequence order, each batch holds one shard's records, and no shard ever has two
// batches in flight.
func TestOrderingUnderLoad(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 30*time.Second)
	if _, err := natsstream.Ensure(ctx, n.js, "load", 4); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	host := newTestHost(func(d delivery) sdk.BatchResult {
		switch c := calls.Add(1); {
		case c%13 == 0:
			return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: "Runtime.ExitError"}
		case c%17 == 0:
			return sdk.BatchResult{Outcome: sdk.RetryLater}
		}
		return sdk.BatchResult{}
	})
	host.delay = time.Millisecond
	p := startPlugin(t, n, host, nil)
	m := newMapping("load-1", "load")
	m.BatchSize = 50
	p.set(t, m)

	const records, keys, publishers = 2000, 20, 4
	var mu sync.Mutex
	var all []uint64
	perKey := map[string][]uint64{}
	var wg sync.WaitGroup
	for g := 0; g < publishers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < records; i += publishers {
				key := fmt.Sprintf("key-%d", (i/publishers)%(keys/publishers)*publishers+g) // each publisher owns its keys
				seq, err := natsstream.Publish(ctx, n.js, "load", key, []byte(strconv.Itoa(i)))
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				mu.Lock()
				all = append(all, seq)
				perKey[key] = append(perKey[key], seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	host.waitSucceeded(t, ctx, m.UUID, all)

	got := map[string][]uint64{}
	lastOfShard := map[string]uint64{}
	for _, d := range host.Deliveries(m.UUID) {
		if d.shard == "MIXED" || len(d.seqs) == 0 || len(d.seqs) > 50 {
			t.Fatalf("a batch of %d records from shard %s", len(d.seqs), d.shard)
		}
		for i, k := range d.keys {
			if want := natsstream.ShardID(natsstream.ShardFor(k, 4)); d.shard != want {
				t.Errorf("key %s delivered from %s, want %s", k, d.shard, want)
			}
			if d.outcome == sdk.Success {
				got[k] = append(got[k], d.seqs[i])
				lastOfShard[d.shard] = max(lastOfShard[d.shard], d.seqs[i])
			}
		}
	}
	if len(got) != keys {
		t.Errorf("%d keys delivered, want %d", len(got), keys)
	}
	for k, seqs := range got {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("key %s: sequence %d delivered after %d", k, seqs[i], seqs[i-1])
			}
		}
		if !reflect.DeepEqual(seqs, perKey[k]) {
			t.Errorf("key %s: %d records succeeded, %d published", k, len(seqs), len(perKey[k]))
		}
	}
	for seq, c := range host.succeeded(m.UUID) {
		if c != 1 {
			t.Errorf("record %d succeeded %d times", seq, c)
		}
	}
	host.mu.Lock()
	overlaps := host.overlaps
	host.mu.Unlock()
	if overlaps != 0 {
		t.Errorf("%d times a shard had two batches in flight", overlaps)
	}
	t.Logf("%d deliveries for %d records", calls.Load(), records)
	if calls.Load() < 13 {
		t.Errorf("only %d deliveries: no failure was exercised", calls.Load())
	}
	for i := 0; i < 4; i++ {
		n.waitCheckpoint(t, ctx, m.UUID, i, lastOfShard[natsstream.ShardID(i)])
	}
}

// TestCheckpointResume: a mapping stopped and started again, and a plugin restarted, go on
// after the last success: only the records published since are delivered.
func TestCheckpointResume(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 30*time.Second)
	if _, err := natsstream.Ensure(ctx, n.js, "resume", 2); err != nil {
		t.Fatal(err)
	}
	lastPerShard := func(seqs []uint64, keys int) map[int]uint64 {
		out := map[int]uint64{}
		for i, s := range seqs {
			sh := natsstream.ShardFor(fmt.Sprintf("k%d", i%keys), 2)
			out[sh] = max(out[sh], s)
		}
		return out
	}
	first := n.publishN(t, ctx, "resume", 30, 6, "a")
	host := newTestHost(nil)
	p := startPlugin(t, n, host, nil)
	m := newMapping("resume-1", "resume")
	p.set(t, m)
	host.waitSucceeded(t, ctx, m.UUID, first)
	for sh, seq := range lastPerShard(first, 6) {
		n.waitCheckpoint(t, ctx, m.UUID, sh, seq)
	}

	// Stop the mapping: its goroutines end and its readers go.
	running := runnerOf(p.src, m.UUID)
	p.set(t)
	select {
	case <-running.Done():
	default:
		t.Fatal("the stopped mapping still runs")
	}
	s, err := n.js.Stream(ctx, natsstream.StreamName("resume"))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Consumers != 0 {
		t.Errorf("the stream has %d consumers after the mapping stopped (%v)", info.State.Consumers, err)
	}
	second := n.publishN(t, ctx, "resume", 20, 6, "b")
	time.Sleep(200 * time.Millisecond)
	delivered := len(host.Deliveries(m.UUID))
	p.set(t, m)
	host.waitSucceeded(t, ctx, m.UUID, second)
	for _, d := range host.Deliveries(m.UUID)[delivered:] {
		for _, seq := range d.seqs {
			if seq <= first[len(first)-1] {
				t.Errorf("record %d delivered again after the mapping restarted", seq)
			}
		}
	}
	both := append(append([]uint64(nil), first...), second...)
	for sh, seq := range lastPerShard(both, 6) {
		n.waitCheckpoint(t, ctx, m.UUID, sh, seq)
	}

	// Restart the plugin: a new process, the same checkpoints.
	p.src.Close()
	third := n.publishN(t, ctx, "resume", 10, 6, "c")
	host2 := newTestHost(nil)
	p2 := startPlugin(t, n, host2, nil)
	p2.set(t, m)
	host2.waitSucceeded(t, ctx, m.UUID, third)
	if got := host2.succeeded(m.UUID); len(got) != len(third) {
		t.Errorf("the restarted plugin delivered %d records, want the %d new ones", len(got), len(third))
	}
}

// TestPartialBatchFailure: as Lambda, a partial batch failure checkpoints just before the
// lowest failed record and retries from it; with the retries exhausted, the rest of the batch
// goes to the on-failure destination and the shard goes on.
func TestPartialBatchFailure(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 30*time.Second)
	for _, s := range []string{"partial", "partial-exhausted"} {
		if _, err := natsstream.Ensure(ctx, n.js, s, 1); err != nil {
			t.Fatal(err)
		}
	}
	seqs := n.publishN(t, ctx, "partial", 10, 3, "p")
	seqs2 := n.publishN(t, ctx, "partial-exhausted", 10, 3, "q")
	id := func(s uint64) string { return strconv.FormatUint(s, 10) }

	var calls atomic.Int64
	var checkpointAtRetry atomic.Uint64
	host := newTestHost(func(d delivery) sdk.BatchResult {
		switch d.mapping {
		case "partial-1":
			if calls.Add(1) == 1 {
				return sdk.BatchResult{Outcome: sdk.Partial, FailedItemIDs: []string{id(seqs[7]), id(seqs[4])}}
			}
			if d.seqs[0] == seqs[4] {
				if kv, err := natsstream.Checkpoints(context.Background(), n.js); err == nil {
					cp, _, _ := natsstream.LoadCheckpoint(context.Background(), kv, "partial-1", 0)
					checkpointAtRetry.Store(cp)
				}
			}
		case "partial-2":
			if d.has(seqs2[4]) {
				return sdk.BatchResult{Outcome: sdk.Partial, FailedItemIDs: []string{id(seqs2[4])}}
			}
		}
		return sdk.BatchResult{}
	})
	p := startPlugin(t, n, host, nil)
	m1 := newMapping("partial-1", "partial")
	m1.ReportBatchItemFailures = true
	m1.BatchWindow = time.Second
	m2 := newMapping("partial-2", "partial-exhausted")
	m2.ReportBatchItemFailures = true
	m2.BatchWindow = time.Second
	m2.MaximumRetryAttempts = 1
	m2.OnFailureDestination = "queue:dlq"
	p.set(t, m1, m2)

	host.waitSucceeded(t, ctx, m1.UUID, seqs[4:]) // the first four succeeded in the partial batch
	ds := host.Deliveries(m1.UUID)
	if len(ds) != 2 || !reflect.DeepEqual(ds[0].seqs, seqs) || ds[0].outcome != sdk.Partial ||
		!reflect.DeepEqual(ds[1].seqs, seqs[4:]) || ds[1].outcome != sdk.Success {
		t.Fatalf("deliveries %+v", ds)
	}
	if got := checkpointAtRetry.Load(); got != seqs[4]-1 {
		t.Errorf("checkpoint while retrying: %d, want %d (just before the lowest failed record)", got, seqs[4]-1)
	}
	n.waitCheckpoint(t, ctx, m1.UUID, 0, seqs[9])

	// Exhausted: two attempts (the first and one retry), then the on-failure record.
	if err := host.Wait(ctx, func(*sdktest.Host) bool { return len(host.failureRecords(t, m2.UUID)) == 1 }); err != nil {
		t.Fatalf("no on-failure record: %v", err)
	}
	ds = host.Deliveries(m2.UUID)
	if len(ds) != 2 || !reflect.DeepEqual(ds[0].seqs, seqs2) || !reflect.DeepEqual(ds[1].seqs, seqs2[4:]) {
		t.Fatalf("deliveries %+v", ds)
	}
	f := host.failureRecords(t, m2.UUID)[0]
	bi := f.KinesisBatchInfo
	if f.RequestContext.Condition != "RetryAttemptsExhausted" || f.RequestContext.ApproximateInvokeCount != 2 ||
		f.RequestContext.FunctionARN != functionARN || f.RequestContext.RequestID == "" ||
		f.ResponseContext.StatusCode != 200 || f.ResponseContext.ExecutedVersion != "$LATEST" || f.ResponseContext.FunctionError != "" ||
		f.Version != "1.0" || bi.ShardID != "shardId-000000000000" || bi.StartSequenceNumber != id(seqs2[4]) ||
		bi.EndSequenceNumber != id(seqs2[9]) || bi.BatchSize != 6 ||
		bi.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/partial-exhausted" {
		t.Errorf("on-failure record %+v", f)
	}
	for _, ts := range []string{f.Timestamp, bi.ApproximateArrivalOfFirstRecord, bi.ApproximateArrivalOfLastRecord} {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
			t.Errorf("timestamp %q: %v", ts, err)
		}
	}
	n.waitCheckpoint(t, ctx, m2.UUID, 0, seqs2[9])
	more := n.publishN(t, ctx, "partial-exhausted", 3, 3, "r")
	host.waitSucceeded(t, ctx, m2.UUID, more)
}

// TestBisectOnError: with BisectBatchOnFunctionError, a batch with a poison record is split
// until the poison record is alone; it goes to the on-failure destination after its retries,
// and every other record succeeds.
func TestBisectOnError(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 30*time.Second)
	if _, err := natsstream.Ensure(ctx, n.js, "bisect", 1); err != nil {
		t.Fatal(err)
	}
	const poisonAt = 37
	var seqs []uint64
	for i := 0; i < 64; i++ {
		data := "ok-" + strconv.Itoa(i)
		if i == poisonAt {
			data = "poison"
		}
		seqs = append(seqs, n.publish(t, ctx, "bisect", fmt.Sprintf("k%d", i%5), data))
	}
	poison := seqs[poisonAt]
	host := newTestHost(func(d delivery) sdk.BatchResult {
		for _, v := range d.data {
			if v == "poison" {
				return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: "Runtime.ExitError", ErrorMessage: "poisoned"}
			}
		}
		return sdk.BatchResult{}
	})
	p := startPlugin(t, n, host, nil)
	m := newMapping("bisect-1", "bisect")
	m.BatchSize = 64
	m.BatchWindow = time.Second
	m.BisectBatchOnFunctionError = true
	m.MaximumRetryAttempts = 2
	m.OnFailureDestination = "queue:dlq"
	p.set(t, m)

	var others []uint64
	for _, s := range seqs {
		if s != poison {
			others = append(others, s)
		}
	}
	host.waitSucceeded(t, ctx, m.UUID, others)
	if err := host.Wait(ctx, func(*sdktest.Host) bool { return len(host.failureRecords(t, m.UUID)) == 1 }); err != nil {
		t.Fatalf("no on-failure record: %v", err)
	}
	n.waitCheckpoint(t, ctx, m.UUID, 0, seqs[len(seqs)-1])

	var sizes []int
	for _, d := range host.Deliveries(m.UUID) {
		if d.has(poison) {
			sizes = append(sizes, len(d.seqs))
			if d.outcome != sdk.FunctionError {
				t.Errorf("a batch with the poison record: %v", d.outcome)
			}
		} else if d.outcome != sdk.Success {
			t.Errorf("a batch without the poison record: %v", d.outcome)
		}
	}
	t.Logf("the poison record's batches: %v", sizes)
	for i := 1; i < len(sizes); i++ {
		if sizes[i] > sizes[i-1] {
			t.Errorf("the poison record's batches grew: %v", sizes)
		}
	}
	// Alone, the poison record has its first attempt and two retries; the splits used none.
	if len(sizes) < 3 || sizes[len(sizes)-1] != 1 || sizes[len(sizes)-2] != 1 || sizes[len(sizes)-3] != 1 ||
		(len(sizes) > 3 && sizes[len(sizes)-4] == 1) {
		t.Errorf("the poison record's batch sizes: %v; want them halving down to 1, then 3 attempts alone", sizes)
	}
	if sizes[0] == 64 && !reflect.DeepEqual(sizes, []int{64, 32, 16, 8, 4, 2, 1, 1, 1}) {
		t.Errorf("the poison record's batch sizes: %v", sizes)
	}
	for seq, c := range host.succeeded(m.UUID) {
		if c != 1 {
			t.Errorf("record %d succeeded %d times", seq, c)
		}
	}
	f := host.failureRecords(t, m.UUID)[0]
	bi := f.KinesisBatchInfo
	if f.RequestContext.Condition != "RetryAttemptsExhausted" || f.RequestContext.ApproximateInvokeCount != len(sizes) ||
		f.ResponseContext.FunctionError != "Unhandled" || f.ResponseContext.StatusCode != 200 ||
		bi.StartSequenceNumber != strconv.FormatUint(poison, 10) || bi.EndSequenceNumber != bi.StartSequenceNumber || bi.BatchSize != 1 {
		t.Errorf("on-failure record %+v (the poison record was in %d invocations)", f, len(sizes))
	}
}

// TestMaximumRecordAge: records older than MaximumRecordAge are not delivered; they go to the
// on-failure destination (or are dropped, with none) and the shard goes on with the others.
func TestMaximumRecordAge(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 30*time.Second)
	if _, err := natsstream.Ensure(ctx, n.js, "aging", 1); err != nil {
		t.Fatal(err)
	}
	old := n.publishN(t, ctx, "aging", 5, 2, "old")
	time.Sleep(2500 * time.Millisecond)
	fresh := n.publishN(t, ctx, "aging", 3, 2, "new")

	host := newTestHost(nil)
	p := startPlugin(t, n, host, nil)
	withDest := newMapping("age-1", "aging")
	withDest.MaximumRecordAge = 2 * time.Second
	withDest.BatchWindow = time.Second
	withDest.OnFailureDestination = "queue:dlq"
	noDest := withDest
	noDest.UUID, noDest.OnFailureDestination = "age-2", ""
	p.set(t, withDest, noDest)

	for _, m := range []sdk.Mapping{withDest, noDest} {
		host.waitSucceeded(t, ctx, m.UUID, fresh)
		n.waitCheckpoint(t, ctx, m.UUID, 0, fresh[len(fresh)-1])
		for _, d := range host.Deliveries(m.UUID) {
			for _, s := range d.seqs {
				if s <= old[len(old)-1] {
					t.Errorf("%s: expired record %d delivered", m.UUID, s)
				}
			}
		}
	}
	fs := host.failureRecords(t, withDest.UUID)
	total := 0
	for _, f := range fs {
		total += f.KinesisBatchInfo.BatchSize
		if f.RequestContext.Condition != "RecordAgeExceeded" || f.RequestContext.ApproximateInvokeCount != 0 ||
			f.ResponseContext.StatusCode != 0 || f.KinesisBatchInfo.ShardID != "shardId-000000000000" {
			t.Errorf("on-failure record %+v", f)
		}
	}
	if total != len(old) || fs[0].KinesisBatchInfo.StartSequenceNumber != strconv.FormatUint(old[0], 10) ||
		fs[len(fs)-1].KinesisBatchInfo.EndSequenceNumber != strconv.FormatUint(old[len(old)-1], 10) {
		t.Errorf("on-failure records for %d records: %+v", total, fs)
	}
	if fs := host.failureRecords(t, noDest.UUID); len(fs) != 0 {
		t.Errorf("on-failure records for a mapping without a destination: %+v", fs)
	}
}

// TestStartingPositions: LATEST delivers only what arrives after the mapping started, also
// when it is stopped before anything arrived; AT_TIMESTAMP starts at the records stored from
// the timestamp on.
func TestStartingPositions(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 30*time.Second)
	if _, err := natsstream.Ensure(ctx, n.js, "positions", 2); err != nil {
		t.Fatal(err)
	}
	host := newTestHost(nil)
	p := startPlugin(t, n, host, nil)
	old := n.publishN(t, ctx, "positions", 5, 4, "old")

	// Started and stopped before anything new arrived: it must not skip what came since.
	early := newMapping("latest-early", "positions")
	early.StartingPosition = sdk.Latest
	p.set(t, early)
	p.set(t)

	latest := newMapping("latest-1", "positions")
	latest.StartingPosition = sdk.Latest
	p.set(t, latest)
	a := n.publishN(t, ctx, "positions", 4, 4, "a")
	host.waitSucceeded(t, ctx, latest.UUID, a)
	p.set(t)
	b := n.publishN(t, ctx, "positions", 4, 4, "b")
	p.set(t, latest, early)
	host.waitSucceeded(t, ctx, latest.UUID, b)
	ab := append(append([]uint64(nil), a...), b...)
	host.waitSucceeded(t, ctx, early.UUID, ab)
	for _, uuid := range []string{latest.UUID, early.UUID} {
		if got := host.succeeded(uuid); len(got) != len(ab) {
			t.Errorf("%s delivered %d records, want %d", uuid, len(got), len(ab))
		}
		for _, s := range old {
			if host.succeeded(uuid)[s] != 0 {
				t.Errorf("%s delivered record %d, older than the mapping", uuid, s)
			}
		}
	}

	// AT_TIMESTAMP.
	time.Sleep(50 * time.Millisecond)
	at := time.Now()
	time.Sleep(50 * time.Millisecond)
	c := n.publishN(t, ctx, "positions", 6, 4, "c")
	stamped := newMapping("at-1", "positions")
	stamped.StartingPosition = sdk.AtTimestamp
	stamped.StartingPositionTimestamp = at
	p.set(t, stamped)
	host.waitSucceeded(t, ctx, stamped.UUID, c)
	if got := host.succeeded(stamped.UUID); len(got) != len(c) {
		t.Errorf("AT_TIMESTAMP delivered %d records, want the %d after the timestamp", len(got), len(c))
	}
}

// TestMappingLifecycle: statuses of mappings that cannot run, disabled ones, a stream the
// mapping creates (with the shards option), a changed mapping restarted, and stopping.
func TestMappingLifecycle(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 30*time.Second)
	host := newTestHost(nil)
	p := startPlugin(t, n, host, nil)

	good := newMapping("good", "fresh")
	good.Options = map[string]string{"shards": "3"}
	disabled := newMapping("disabled", "fresh")
	disabled.Enabled = false
	tooBig := newMapping("too-big", "fresh")
	tooBig.BatchSize = 20000
	badPos := newMapping("bad-position", "fresh")
	badPos.StartingPosition = "AT_SEQUENCE_NUMBER"
	noStamp := newMapping("no-stamp", "fresh")
	noStamp.StartingPosition = sdk.AtTimestamp
	badName := newMapping("bad-name", "a.b")
	badShards := newMapping("bad-shards", "fresh")
	badShards.Options = map[string]string{"shards": "0"}

	if _, err := p.client.SetMappings(ctx, []sdk.Mapping{good, good}); err == nil {
		t.Error("a mapping given twice was accepted")
	}
	st, err := p.client.SetMappings(ctx, []sdk.Mapping{good, disabled, tooBig, badPos, noStamp, badName, badShards})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{sdk.StateOK, sdk.StateOK, sdk.StateError, sdk.StateError, sdk.StateError, sdk.StateError, sdk.StateError}
	if len(st) != len(want) {
		t.Fatalf("statuses %+v", st)
	}
	for i, s := range st {
		if s.State != want[i] || (s.State == sdk.StateError && s.Message == "") {
			t.Errorf("status %d: %+v, want %s", i, s, want[i])
		}
	}
	if st[1].Message != "disabled" {
		t.Errorf("disabled mapping: %+v", st[1])
	}
	if shards, err := natsstream.Shards(ctx, n.js, "fresh"); err != nil || shards != 3 {
		t.Errorf("the stream the mapping created has %d shards: %v", shards, err)
	}
	seqs := n.publishN(t, ctx, "fresh", 12, 6, "x")
	host.waitSucceeded(t, ctx, good.UUID, seqs)
	if d := host.Deliveries(disabled.UUID); len(d) != 0 {
		t.Errorf("the disabled mapping delivered %d batches", len(d))
	}

	// A changed mapping restarts with its new settings and its checkpoints.
	first := runnerOf(p.src, good.UUID)
	changed := good
	changed.BatchSize = 2
	p.set(t, changed)
	if runnerOf(p.src, good.UUID) == first {
		t.Error("the changed mapping was not restarted")
	}
	select {
	case <-first.Done():
	default:
		t.Error("the mapping before the change still runs")
	}
	more := n.publishN(t, ctx, "fresh", 12, 6, "y")
	host.waitSucceeded(t, ctx, good.UUID, more)
	for _, d := range host.Deliveries(good.UUID) {
		if d.seqs[0] >= more[0] && len(d.seqs) > 2 {
			t.Errorf("a batch of %d records after the batch size became 2", len(d.seqs))
		}
	}
	for seq, c := range host.succeeded(good.UUID) {
		if c != 1 {
			t.Errorf("record %d delivered %d times across the restart", seq, c)
		}
	}
	if st, err := p.client.Status(ctx); err != nil || len(st) != 1 || st[0].UUID != good.UUID || st[0].State != sdk.StateOK {
		t.Errorf("status: %+v %v", st, err)
	}

	// Stopped: nothing more is delivered.
	current := runnerOf(p.src, good.UUID)
	p.set(t)
	<-current.Done()
	before := len(host.Deliveries(""))
	n.publishN(t, ctx, "fresh", 3, 3, "z")
	time.Sleep(300 * time.Millisecond)
	if after := len(host.Deliveries("")); after != before {
		t.Errorf("%d batches delivered after the mapping stopped", after-before)
	}
	s, err := n.js.Stream(ctx, natsstream.StreamName("fresh"))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Consumers != 0 {
		t.Errorf("consumers left on the stream: %v", err)
	}
}

// TestStatusAndRecovery: a mapping whose deliveries fail reports it in its status and recovers
// when they work again; a mapping whose stream is deleted sets it up anew and goes on.
func TestStatusAndRecovery(t *testing.T) {
	t.Parallel()
	n := startNATS(t)
	ctx := testContext(t, 30*time.Second)
	for _, s := range []string{"flaky", "gone"} {
		if _, err := natsstream.Ensure(ctx, n.js, s, 1); err != nil {
			t.Fatal(err)
		}
	}
	host := &failingHost{testHost: newTestHost(nil)}
	host.failing.Store(true)
	p := startPlugin(t, n, host, nil)
	flaky, gone := newMapping("flaky-1", "flaky"), newMapping("gone-1", "gone")
	p.set(t, flaky, gone)

	seqs := n.publishN(t, ctx, "flaky", 5, 2, "f")
	waitStatus := func(uuid, state, contains string) {
		t.Helper()
		for {
			st, err := p.client.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st {
				if s.UUID == uuid && s.State == state && strings.Contains(s.Message, contains) {
					return
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never became %s (%q): %+v", uuid, state, contains, st)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	waitStatus(flaky.UUID, sdk.StateError, "delivering a batch")
	host.failing.Store(false)
	host.waitSucceeded(t, ctx, flaky.UUID, seqs)
	waitStatus(flaky.UUID, sdk.StateOK, "")

	first := n.publishN(t, ctx, "gone", 3, 3, "g")
	host.waitSucceeded(t, ctx, gone.UUID, first)
	n.waitCheckpoint(t, ctx, gone.UUID, 0, first[len(first)-1])
	if err := n.js.DeleteStream(ctx, natsstream.StreamName("gone")); err != nil {
		t.Fatal(err)
	}
	// The mapping makes the stream anew (with the default shard count) and, its checkpoint past
	// the new stream's end, reads it from the start.
	for {
		if shards, err := natsstream.Shards(ctx, n.js, "gone"); err == nil {
			if shards != natsstream.DefaultShards {
				t.Errorf("the stream was made anew with %d shards", shards)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the mapping did not make its stream anew")
		case <-time.After(50 * time.Millisecond):
		}
	}
	waitStatus(gone.UUID, sdk.StateOK, "")
	n.publishN(t, ctx, "gone", 8, 8, "h")
	// The new stream's sequences start over: tell its records by their data.
	err := host.Wait(ctx, func(*sdktest.Host) bool {
		seen := map[string]bool{}
		for _, d := range host.Deliveries(gone.UUID) {
			if d.outcome == sdk.Success {
				for _, v := range d.data {
					seen[v] = true
				}
			}
		}
		for i := 0; i < 8; i++ {
			if !seen["h"+strconv.Itoa(i)] {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("the records of the stream made anew were not all delivered: %v", err)
	}
}

// failingHost fails every delivery (the gateway is away) while failing is set.
type failingHost struct {
	*testHost
	failing atomic.Bool
}

func (h *failingHost) Deliver(ctx context.Context, b sdk.Batch) (sdk.BatchResult, error) {
	if h.failing.Load() {
		return sdk.BatchResult{}, fmt.Errorf("the gateway is away")
	}
	return h.testHost.Deliver(ctx, b)
}

// runnerOf is the mapping src runs for uuid, nil when none.
func runnerOf(src *source, uuid string) *mapping {
	mp, _ := src.Runner(uuid)
	return mp
}
