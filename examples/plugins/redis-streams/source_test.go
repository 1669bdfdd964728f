package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/redis/go-redis/v9"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

func TestEventHasKinesisShape(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	ids := rs.add(t, "orders", 2, func(i int) map[string]any {
		if i == 0 {
			return map[string]any{"key": "customer-7", "data": "hello"}
		}
		return map[string]any{"a": "1", "b": "x"}
	})
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	m := mapping("shape", "orders")
	p.setMappings(t, m)
	waitHost(t, p.host, "a batch", func(h *sdktest.Host) bool { return len(h.Batches()) > 0 })

	b := p.host.Batches()[0]
	if b.MappingUUID != m.UUID || !slices.Equal(b.ItemIDs, ids) {
		t.Fatalf("batch of %s with items %v, want %s with %v", b.MappingUUID, b.ItemIDs, m.UUID, ids)
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(b.Event, &ev); err != nil {
		t.Fatalf("decoding the event: %v\n%s", err, b.Event)
	}
	if len(ev.Records) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(ev.Records), b.Event)
	}
	wantKeys := []string{"customer-7", ids[1]}
	wantData := []string{"hello", `{"a":"1","b":"x"}`}
	for i, r := range ev.Records {
		if r.EventSource != "redis:streams" || r.EventSourceArn != "redis://"+rs.addr+"/orders" ||
			r.AwsRegion != "eu-west-1" || r.EventName != "redis:streams:record" || r.EventID != "orders:"+ids[i] {
			t.Errorf("record %d: source %q arn %q region %q name %q id %q", i, r.EventSource, r.EventSourceArn,
				r.AwsRegion, r.EventName, r.EventID)
		}
		k := r.Kinesis
		if k.SequenceNumber != ids[i] || k.PartitionKey != wantKeys[i] || string(k.Data) != wantData[i] {
			t.Errorf("record %d: sequence %q key %q data %q, want %q %q %q", i, k.SequenceNumber, k.PartitionKey,
				k.Data, ids[i], wantKeys[i], wantData[i])
		}
		if age := time.Since(k.ApproximateArrivalTimestamp.Time); age < 0 || age > time.Minute {
			t.Errorf("record %d: arrival %v is not about now", i, k.ApproximateArrivalTimestamp.Time)
		}
	}
	rs.waitNoPending(t, "orders", groupOf(m))
}

func TestEveryEntryIsDeliveredAndAcknowledged(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	fields := func(i int) map[string]any { return map[string]any{"key": fmt.Sprint(i % 7), "data": fmt.Sprint(i)} }
	ids := rs.add(t, "events", 150, fields)
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	m := mapping("all", "events")
	m.BatchSize = 25
	p.setMappings(t, m)
	ids = append(ids, rs.add(t, "events", 150, fields)...)

	waitHost(t, p.host, "every entry", func(h *sdktest.Host) bool { return len(deliveries(h.Batches())) == len(ids) })
	got := deliveries(p.host.Batches())
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("entry %s delivered %d times, want once", id, got[id])
		}
	}
	for _, b := range p.host.Batches() {
		if len(b.ItemIDs) > m.BatchSize {
			t.Errorf("a batch of %d entries, over the batch size %d", len(b.ItemIDs), m.BatchSize)
		}
	}
	rs.waitNoPending(t, "events", groupOf(m))
	st, err := p.trig.Status(context.Background())
	if err != nil || len(st) != 1 || st[0].State != sdk.StateOK {
		t.Fatalf("status %+v, %v", st, err)
	}
}

func TestBatchWindowGathersEntries(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	m := mapping("window", "ticks")
	m.BatchWindow = 700 * time.Millisecond
	p.setMappings(t, m)
	for i := range 5 {
		rs.add(t, "ticks", 1, func(int) map[string]any { return map[string]any{"data": fmt.Sprint(i)} })
		time.Sleep(20 * time.Millisecond)
	}
	waitHost(t, p.host, "the batch", func(h *sdktest.Host) bool { return len(deliveries(h.Batches())) == 5 })
	if bs := p.host.Batches(); len(bs) != 1 {
		t.Fatalf("%d batches, want the 5 entries in one", len(bs))
	}
}

func TestPartialFailuresAreDeliveredAgain(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	ids := rs.add(t, "jobs", 40, func(i int) map[string]any { return map[string]any{"data": fmt.Sprint(i)} })
	failing := map[string]bool{}
	for i, id := range ids {
		if i%5 == 0 {
			failing[id] = true
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	host := &sdktest.Host{Result: func(b sdk.Batch) sdk.BatchResult {
		mu.Lock()
		defer mu.Unlock()
		var failed []string
		for _, id := range b.ItemIDs {
			seen[id]++
			if failing[id] && seen[id] == 1 {
				failed = append(failed, id)
			}
		}
		if len(failed) == 0 {
			return sdk.BatchResult{Outcome: sdk.Success}
		}
		return sdk.BatchResult{Outcome: sdk.Partial, FailedItemIDs: failed}
	}}
	p := startPlugin(t, rs, "n1", host)
	m := mapping("partial", "jobs")
	m.ReportBatchItemFailures = true
	p.setMappings(t, m)

	waitHost(t, host, "the failed entries again", func(h *sdktest.Host) bool {
		got := deliveries(h.Batches())
		for id := range failing {
			if got[id] < 2 {
				return false
			}
		}
		return len(got) == len(ids)
	})
	rs.waitNoPending(t, "jobs", groupOf(m))
	got := deliveries(host.Batches())
	for _, id := range ids {
		want := 1
		if failing[id] {
			want = 2
		}
		if got[id] != want {
			t.Errorf("entry %s delivered %d times, want %d", id, got[id], want)
		}
	}
	if f := host.Failures(); len(f) != 0 {
		t.Errorf("%d on-failure records, want none", len(f))
	}
}

func TestRetriesThenOnFailureDestination(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	ids := rs.add(t, "payments", 5, func(i int) map[string]any { return map[string]any{"data": fmt.Sprint(i)} })
	host := &sdktest.Host{Result: func(sdk.Batch) sdk.BatchResult {
		return sdk.BatchResult{Outcome: sdk.FunctionError, ErrorType: "Boom", ErrorMessage: "always"}
	}}
	p := startPlugin(t, rs, "n1", host)
	m := mapping("retries", "payments")
	m.MaximumRetryAttempts = 2
	m.OnFailureDestination = "queue:dlq"
	p.setMappings(t, m)

	var recs []failureRecord
	waitHost(t, host, "the on-failure records", func(h *sdktest.Host) bool {
		recs = failureRecords(t, h)
		n := 0
		for _, r := range recs {
			n += len(r.StreamBatchInfo.EntryIDs)
		}
		return n >= len(ids)
	})
	rs.waitNoPending(t, "payments", groupOf(m))

	var dead []string
	for _, r := range recs {
		dead = append(dead, r.StreamBatchInfo.EntryIDs...)
		if r.RequestContext.Condition != trigger.ConditionRetries || r.RequestContext.ApproximateInvokeCount != 3 ||
			r.RequestContext.FunctionARN != m.FunctionARN || r.ResponseContext.FunctionError != "Unhandled" ||
			r.StreamBatchInfo.StreamARN != "redis://"+rs.addr+"/payments" || r.StreamBatchInfo.Group != groupOf(m) {
			t.Errorf("on-failure record %+v", r)
		}
	}
	slices.SortFunc(dead, func(a, b string) int {
		if lessID(a, b) {
			return -1
		}
		return 1
	})
	if !slices.Equal(dead, ids) {
		t.Errorf("on-failure records name %v, want %v", dead, ids)
	}
	for id, n := range deliveries(host.Batches()) {
		if n != 3 {
			t.Errorf("entry %s delivered %d times, want 3 (1 + 2 retries)", id, n)
		}
	}
	for _, f := range host.Failures() {
		if f.MappingUUID != m.UUID {
			t.Errorf("on-failure record for mapping %s, want %s", f.MappingUUID, m.UUID)
		}
	}
	if n := rs.rdb.XLen(context.Background(), "payments").Val(); n != int64(len(ids)) {
		t.Errorf("the stream holds %d entries, want them all (%d) still there", n, len(ids))
	}
}

func TestRetryLaterUsesNoAttempt(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	ids := rs.add(t, "busy", 3, func(i int) map[string]any { return map[string]any{"data": fmt.Sprint(i)} })
	var mu sync.Mutex
	calls := 0
	host := &sdktest.Host{Result: func(sdk.Batch) sdk.BatchResult {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			return sdk.BatchResult{Outcome: sdk.RetryLater}
		}
		return sdk.BatchResult{Outcome: sdk.FunctionError}
	}}
	p := startPlugin(t, rs, "n1", host)
	m := mapping("busy", "busy")
	m.MaximumRetryAttempts = 0
	m.OnFailureDestination = "function:dlq"
	p.setMappings(t, m)

	waitHost(t, host, "the on-failure record", func(h *sdktest.Host) bool { return len(h.Failures()) > 0 })
	rs.waitNoPending(t, "busy", groupOf(m))
	recs := failureRecords(t, host)
	if len(recs) != 1 || len(recs[0].StreamBatchInfo.EntryIDs) != len(ids) {
		t.Fatalf("on-failure records %+v, want one for the %d entries", recs, len(ids))
	}
	if n := recs[0].RequestContext.ApproximateInvokeCount; n != 1 {
		t.Errorf("approximateInvokeCount %d, want 1 (RetryLater uses no attempt)", n)
	}
	for id, n := range deliveries(host.Batches()) {
		if n != 3 {
			t.Errorf("entry %s delivered %d times, want 3 (2 RetryLater, 1 invocation)", id, n)
		}
	}
}

func TestOldEntriesGoToOnFailureUndelivered(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	ctx := context.Background()
	if err := rs.rdb.XAdd(ctx, &redis.XAddArgs{Stream: "late", ID: "1000-0", Values: map[string]any{"data": "old"}}).Err(); err != nil {
		t.Fatal(err)
	}
	fresh := rs.add(t, "late", 1, func(int) map[string]any { return map[string]any{"data": "new"} })[0]
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	m := mapping("age", "late")
	m.MaximumRecordAge = time.Minute
	m.OnFailureDestination = "queue:old"
	p.setMappings(t, m)

	waitHost(t, p.host, "the fresh entry and the old one's record", func(h *sdktest.Host) bool {
		return len(h.Failures()) == 1 && deliveries(h.Batches())[fresh] == 1
	})
	rs.waitNoPending(t, "late", groupOf(m))
	if got := deliveries(p.host.Batches()); got["1000-0"] != 0 {
		t.Errorf("the old entry was delivered %d times", got["1000-0"])
	}
	r := failureRecords(t, p.host)[0]
	if r.RequestContext.Condition != trigger.ConditionRecordAge || r.RequestContext.ApproximateInvokeCount != 0 ||
		!slices.Equal(r.StreamBatchInfo.EntryIDs, []string{"1000-0"}) {
		t.Errorf("on-failure record %+v", r)
	}
}

func TestLatestStartsAtTheEnd(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	rs.add(t, "feed", 3, func(int) map[string]any { return map[string]any{"data": "before"} })
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	m := mapping("latest", "feed")
	m.StartingPosition = sdk.Latest
	p.setMappings(t, m)
	after := rs.add(t, "feed", 2, func(int) map[string]any { return map[string]any{"data": "after"} })
	waitHost(t, p.host, "the new entries", func(h *sdktest.Host) bool { return len(deliveries(h.Batches())) >= 2 })
	time.Sleep(300 * time.Millisecond) // room for a wrong delivery of the old ones
	got := deliveries(p.host.Batches())
	if len(got) != 2 || got[after[0]] != 1 || got[after[1]] != 1 {
		t.Fatalf("delivered %v, want only %v", got, after)
	}
}

func TestNodesShareTheGroupAndTakeOverPendingEntries(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	ctx := context.Background()
	m := mapping("shared", "clicks")
	ids := rs.add(t, "clicks", 200, func(i int) map[string]any { return map[string]any{"data": fmt.Sprint(i)} })
	// A node that died: it read the first 10 entries and never acknowledged them.
	if err := rs.rdb.XGroupCreateMkStream(ctx, "clicks", groupOf(m), "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rs.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: groupOf(m), Consumer: "dead", Streams: []string{"clicks", ">"},
		Count: 10, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}

	h1, h2 := &sdktest.Host{}, &sdktest.Host{}
	p1 := startPlugin(t, rs, "n1", h1)
	p2 := startPlugin(t, rs, "n2", h2)
	p1.setMappings(t, m)
	p2.setMappings(t, m)

	all := func() map[string]int {
		got := deliveries(h1.Batches())
		for id, n := range deliveries(h2.Batches()) {
			got[id] += n
		}
		return got
	}
	eventually(t, "every entry, on either node", func() bool { return len(all()) == len(ids) })
	rs.waitNoPending(t, "clicks", groupOf(m))
	for id, n := range all() {
		if n != 1 {
			t.Errorf("entry %s delivered %d times, want once", id, n)
		}
	}
	consumers, err := rs.rdb.XInfoConsumers(ctx, "clicks", groupOf(m)).Result()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range consumers {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"dead", "n1", "n2"}) {
		t.Errorf("consumers %v, want dead, n1 and n2", names)
	}
}

func TestMappingsLeftOutStop(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	a, b := mapping("a", "stream-a"), mapping("b", "stream-b")
	off := mapping("off", "stream-off")
	off.Enabled = false
	st := p.setMappings(t, a, b, off)
	if len(st) != 3 || st[2].UUID != off.UUID || st[2].Message != "disabled" {
		t.Fatalf("statuses %+v", st)
	}
	rs.add(t, "stream-b", 1, func(int) map[string]any { return map[string]any{"data": "1"} })
	waitHost(t, p.host, "b's entry", func(h *sdktest.Host) bool { return len(h.Batches()) == 1 })

	st = p.setMappings(t, a)
	if len(st) != 1 || st[0].UUID != a.UUID {
		t.Fatalf("statuses %+v, want a's alone", st)
	}
	rs.add(t, "stream-b", 1, func(int) map[string]any { return map[string]any{"data": "2"} })
	rs.add(t, "stream-off", 1, func(int) map[string]any { return map[string]any{"data": "3"} })
	aID := rs.add(t, "stream-a", 1, func(int) map[string]any { return map[string]any{"data": "4"} })[0]
	// Entry IDs are per stream (two streams may have the same): look for a's batch.
	waitHost(t, p.host, "a's entry", func(h *sdktest.Host) bool {
		return slices.ContainsFunc(h.Batches(), func(bt sdk.Batch) bool {
			return bt.MappingUUID == a.UUID && slices.Contains(bt.ItemIDs, aID)
		})
	})
	time.Sleep(500 * time.Millisecond) // room for a wrong delivery from b
	for _, bt := range p.host.Batches() {
		if bt.MappingUUID != a.UUID && bt.MappingUUID != b.UUID {
			t.Errorf("a batch of mapping %s", bt.MappingUUID)
		}
	}
	if n := len(p.host.Batches()); n != 2 {
		t.Errorf("%d batches, want 2 (b's first entry, a's)", n)
	}
	st = p.setMappings(t)
	if len(st) != 0 {
		t.Errorf("statuses %+v, want none", st)
	}
}

func TestStreamDeletedGroupIsCreatedAgain(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	m := mapping("again", "flaky")
	p.setMappings(t, m)
	if err := rs.rdb.Del(context.Background(), "flaky").Err(); err != nil {
		t.Fatal(err)
	}
	// The group goes with the stream; the plugin creates both again (MKSTREAM) and reads on.
	var id string
	eventually(t, "the consumer group again", func() bool {
		groups, err := rs.rdb.XInfoGroups(context.Background(), "flaky").Result()
		return err == nil && len(groups) == 1
	})
	id = rs.add(t, "flaky", 1, func(int) map[string]any { return map[string]any{"data": "x"} })[0]
	waitHost(t, p.host, "the new entry", func(h *sdktest.Host) bool { return deliveries(h.Batches())[id] == 1 })
	eventually(t, "status OK", func() bool {
		st, err := p.trig.Status(context.Background())
		return err == nil && len(st) == 1 && st[0].State == sdk.StateOK
	})
}

func TestConfigureDiagnostics(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "s3cret")
	for _, tc := range []struct {
		name   string
		config map[string]any
		attr   string // the attribute the diagnostic is about; "" for none
	}{
		{"no address", map[string]any{}, "address"},
		{"address without port", map[string]any{"address": "localhost"}, "address"},
		{"negative db", map[string]any{"address": rs.addr, "password": "s3cret", "db": -1}, "db"},
		{"fractional db", map[string]any{"address": rs.addr, "password": "s3cret", "db": 1.5}, "db"},
		{"db out of range", map[string]any{"address": rs.addr, "password": "s3cret", "db": 999}, "db"},
		{"no password", map[string]any{"address": rs.addr}, "password"},
		{"wrong password", map[string]any{"address": rs.addr, "password": "nope"}, "password"},
		{"right password", map[string]any{"address": rs.addr, "password": "s3cret", "db": 2}, ""},
		{"unreachable yet", map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", freePort(t))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(testLogger(t, "n1"))
			trig := sdktest.Trigger(t, src)
			t.Cleanup(src.Close)
			cfg, _ := json.Marshal(tc.config)
			diags, err := trig.Configure(context.Background(), sdk.ConfigureRequest{Config: cfg}, &sdktest.Host{})
			if err != nil {
				t.Fatalf("Configure: %v", err)
			}
			t.Logf("diagnostics: %+v", diags)
			switch {
			case tc.attr == "" && len(diags) > 0:
				t.Fatalf("diagnostics %+v, want none", diags)
			case tc.attr != "" && (len(diags) != 1 || diags[0].Attribute != tc.attr):
				t.Fatalf("diagnostics %+v, want one about %s", diags, tc.attr)
			}
		})
	}
}

func TestInvalidMappingIsInError(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	for _, tc := range []struct {
		name   string
		change func(*sdk.Mapping)
	}{
		{"no stream", func(m *sdk.Mapping) { m.Source = "" }},
		{"unknown option", func(m *sdk.Mapping) { m.Options = map[string]string{"colour": "blue"} }},
		{"short retry delay", func(m *sdk.Mapping) { m.Options = map[string]string{optionRetryDelay: "1ms"} }},
		{"batch too large", func(m *sdk.Mapping) { m.BatchSize = maxBatchSize + 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mapping("bad", "s")
			tc.change(&m)
			st, err := p.trig.SetMappings(context.Background(), []sdk.Mapping{m})
			if err != nil || len(st) != 1 || st[0].State != sdk.StateError || st[0].Message == "" {
				t.Fatalf("statuses %+v, %v; want the mapping in error", st, err)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	for _, tc := range []struct {
		name  string
		m     sdk.Mapping
		group string
		start string
	}{
		{"defaults", sdk.Mapping{Function: "f", Name: "t", Source: "s"}, "gateway:f:t", "0"},
		{"latest", sdk.Mapping{Function: "f", Name: "t", Source: "s", StartingPosition: sdk.Latest}, "gateway:f:t", "$"},
		{"at timestamp", sdk.Mapping{Function: "f", Name: "t", Source: "s", StartingPosition: sdk.AtTimestamp,
			StartingPositionTimestamp: at}, "gateway:f:t", "1700000000122-18446744073709551615"},
		{"group option", sdk.Mapping{Function: "f", Name: "t", Source: "s", Options: map[string]string{optionGroup: "mine"}},
			"mine", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := mappingSettings(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if st.group != tc.group || st.startID != tc.start || st.batchSize != defaultBatchSize || st.retryDelay != defaultRetryDelay {
				t.Fatalf("settings %+v, want group %q start %q", st, tc.group, tc.start)
			}
		})
	}
}

func TestUnreachableRedisIsReportedInStatus(t *testing.T) {
	t.Parallel()
	src := newSource(testLogger(t, "n1"))
	trig := sdktest.Trigger(t, src)
	t.Cleanup(src.Close)
	cfg := []byte(fmt.Sprintf(`{"address":"127.0.0.1:%d"}`, freePort(t)))
	if diags, err := trig.Configure(context.Background(), sdk.ConfigureRequest{Config: cfg}, &sdktest.Host{}); err != nil || len(diags) > 0 {
		t.Fatalf("Configure: %v %+v", err, diags)
	}
	st, err := trig.SetMappings(context.Background(), []sdk.Mapping{mapping("down", "s")})
	if err != nil || len(st) != 1 || st[0].State != sdk.StateError || st[0].Message == "" {
		t.Fatalf("statuses %+v, %v; want the mapping in error", st, err)
	}
	t.Logf("status: %+v", st[0])
}

func TestSlowFunctionKeepsItsEntries(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	// The function takes 4 retry delays: without the batch's entries kept fresh, the other node
	// would claim them meanwhile and deliver them again.
	slow := func(sdk.Batch) sdk.BatchResult {
		time.Sleep(800 * time.Millisecond)
		return sdk.BatchResult{Outcome: sdk.Success}
	}
	h1, h2 := &sdktest.Host{Result: slow}, &sdktest.Host{Result: slow}
	m := mapping("slow", "slow")
	startPlugin(t, rs, "n1", h1).setMappings(t, m)
	startPlugin(t, rs, "n2", h2).setMappings(t, m)
	ids := rs.add(t, "slow", 5, func(i int) map[string]any { return map[string]any{"data": fmt.Sprint(i)} })

	all := func() map[string]int {
		got := deliveries(h1.Batches())
		for id, n := range deliveries(h2.Batches()) {
			got[id] += n
		}
		return got
	}
	eventually(t, "every entry", func() bool { return len(all()) == len(ids) })
	rs.waitNoPending(t, "slow", groupOf(m))
	time.Sleep(300 * time.Millisecond) // room for a wrong second delivery
	for id, n := range all() {
		if n != 1 {
			t.Errorf("entry %s delivered %d times, want once", id, n)
		}
	}
}

// TestAcceptRecord: as a destination the plugin adds each record to the stream it names, with
// the request id as "key" and the record as "data", so a trigger on that stream reads the record
// back as its Kinesis record's data and partition key.
func TestAcceptRecord(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "")
	p := startPlugin(t, rs, "n1", &sdktest.Host{})
	rec := sdk.Record{Target: "audit", Key: "req-1", Data: []byte(`{"requestContext":{"condition":"Success"}}`)}
	if err := p.trig.AcceptRecord(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	m := mapping("audit", "audit")
	p.setMappings(t, m)
	waitHost(t, p.host, "the record as a batch", func(h *sdktest.Host) bool { return len(h.Batches()) > 0 })
	var ev events.KinesisEvent
	if err := json.Unmarshal(p.host.Batches()[0].Event, &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("the event: %v %s", err, p.host.Batches()[0].Event)
	}
	if k := ev.Records[0].Kinesis; k.PartitionKey != "req-1" || string(k.Data) != string(rec.Data) {
		t.Errorf("the record read back with key %q and data %s", k.PartitionKey, k.Data)
	}
}
