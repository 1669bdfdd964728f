package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/natsengine"
	"github.com/lambdagw/gateway/internal/natsengine/natstest"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
)

const functionARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"

// testContext bounds a test.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func testLogger() hclog.Logger {
	if testing.Verbose() && os.Getenv("STREAM_TEST_LOG") != "" {
		return hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: os.Stderr})
	}
	return hclog.NewNullLogger()
}

// natsServer is an embedded NATS JetStream for one test.
type natsServer struct {
	url string
	js  jetstream.JetStream
	// seed is the plugins' NKey seed, as the agent gives it.
	seed string
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	testUser, _, testCreds := natstest.User(t)
	pluginUser, pluginSeed, _ := natstest.User(t)
	e, err := natsengine.Start(ctx, natsengine.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Users: []string{testUser, pluginUser}})
	if err != nil {
		t.Fatalf("starting NATS: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	nc, err := nats.Connect(e.ClientURL(), testCreds)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &natsServer{url: e.ClientURL(), js: js, seed: pluginSeed}
}

// publish puts a record on stream and returns its sequence.
func (n *natsServer) publish(t *testing.T, ctx context.Context, stream, key, data string) uint64 {
	t.Helper()
	seq, err := natsstream.Publish(ctx, n.js, stream, key, []byte(data))
	if err != nil {
		t.Fatalf("publishing to %s: %v", stream, err)
	}
	return seq
}

// publishN puts n records on stream with keys k0..k(keys-1) in turn and data "<prefix><i>".
func (n *natsServer) publishN(t *testing.T, ctx context.Context, stream string, count, keys int, prefix string) []uint64 {
	t.Helper()
	seqs := make([]uint64, count)
	for i := range seqs {
		seqs[i] = n.publish(t, ctx, stream, fmt.Sprintf("k%d", i%keys), prefix+strconv.Itoa(i))
	}
	return seqs
}

// checkpoint returns the saved checkpoint of mapping on shard (0 if none).
func (n *natsServer) checkpoint(t *testing.T, ctx context.Context, mapping string, shard int) uint64 {
	t.Helper()
	kv, err := natsstream.Checkpoints(ctx, n.js)
	if err != nil {
		t.Fatal(err)
	}
	seq, _, err := natsstream.LoadCheckpoint(ctx, kv, mapping, shard)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// waitCheckpoint waits until mapping's checkpoint on shard is seq.
func (n *natsServer) waitCheckpoint(t *testing.T, ctx context.Context, mapping string, shard int, seq uint64) {
	t.Helper()
	for {
		got := n.checkpoint(t, ctx, mapping, shard)
		if got == seq {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("checkpoint of %s on shard %d is %d, want %d", mapping, shard, got, seq)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// delivery is a batch the test host answered.
type delivery struct {
	mapping string
	shard   string
	seqs    []uint64
	keys    []string
	data    []string
	outcome sdk.Outcome
}

func (d delivery) has(seq uint64) bool {
	for _, s := range d.seqs {
		if s == seq {
			return true
		}
	}
	return false
}

// testHost is the gateway as the plugin sees it: sdktest's recording host, answering with
// decide (Success when nil), remembering every delivery and counting the batches of each shard
// in flight at once.
type testHost struct {
	*sdktest.Host
	decide func(d delivery) sdk.BatchResult
	delay  time.Duration

	mu         sync.Mutex
	deliveries []delivery
	inflight   map[string]int // by mapping and shard
	overlaps   int            // deliveries that began while their shard had one in flight
}

func newTestHost(decide func(d delivery) sdk.BatchResult) *testHost {
	h := &testHost{Host: &sdktest.Host{}, decide: decide, inflight: map[string]int{}}
	h.Host.Result = func(b sdk.Batch) sdk.BatchResult {
		d := decodeDelivery(b)
		r := sdk.BatchResult{}
		if h.decide != nil {
			r = h.decide(d)
		}
		d.outcome = r.Outcome
		h.mu.Lock()
		h.deliveries = append(h.deliveries, d)
		h.mu.Unlock()
		return r
	}
	return h
}

func (h *testHost) Deliver(ctx context.Context, b sdk.Batch) (sdk.BatchResult, error) {
	key := b.MappingUUID + "/" + decodeDelivery(b).shard
	h.mu.Lock()
	if h.inflight[key] > 0 {
		h.overlaps++
	}
	h.inflight[key]++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inflight[key]--
		h.mu.Unlock()
	}()
	if h.delay > 0 {
		time.Sleep(h.delay)
	}
	return h.Host.Deliver(ctx, b)
}

// Deliveries returns the deliveries so far (of mapping, or all when "").
func (h *testHost) Deliveries(mapping string) []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []delivery
	for _, d := range h.deliveries {
		if mapping == "" || d.mapping == mapping {
			out = append(out, d)
		}
	}
	return out
}

// succeeded counts how often each record was part of a successful batch of mapping.
func (h *testHost) succeeded(mapping string) map[uint64]int {
	out := map[uint64]int{}
	for _, d := range h.Deliveries(mapping) {
		if d.outcome == sdk.Success {
			for _, s := range d.seqs {
				out[s]++
			}
		}
	}
	return out
}

// waitSucceeded waits until every one of seqs was in a successful batch of mapping.
func (h *testHost) waitSucceeded(t *testing.T, ctx context.Context, mapping string, seqs []uint64) {
	t.Helper()
	err := h.Wait(ctx, func(*sdktest.Host) bool {
		got := h.succeeded(mapping)
		for _, s := range seqs {
			if got[s] == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		got := h.succeeded(mapping)
		missing := 0
		for _, s := range seqs {
			if got[s] == 0 {
				missing++
			}
		}
		t.Fatalf("%d of %d records of %s were not delivered: %v", missing, len(seqs), mapping, err)
	}
}

// failureRecords returns the on-failure records sent for mapping, decoded.
func (h *testHost) failureRecords(t *testing.T, mapping string) []failureRecord {
	t.Helper()
	var out []failureRecord
	for _, f := range h.Failures() {
		if f.MappingUUID != mapping {
			continue
		}
		var r failureRecord
		if err := json.Unmarshal(f.Record, &r); err != nil {
			t.Fatalf("an on-failure record %s: %v", f.Record, err)
		}
		out = append(out, r)
	}
	return out
}

// decodeDelivery reads a batch's Kinesis event (panicking on one that is none: the test ends).
func decodeDelivery(b sdk.Batch) delivery {
	var ev events.KinesisEvent
	if err := json.Unmarshal(b.Event, &ev); err != nil {
		panic(fmt.Sprintf("a batch that is no Kinesis event: %v: %s", err, b.Event))
	}
	d := delivery{mapping: b.MappingUUID}
	for _, r := range ev.Records {
		seq, err := strconv.ParseUint(r.Kinesis.SequenceNumber, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("sequence number %q", r.Kinesis.SequenceNumber))
		}
		shard := r.EventID[:len(r.EventID)-len(r.Kinesis.SequenceNumber)-1]
		if d.shard != "" && d.shard != shard {
			d.shard = "MIXED"
		} else {
			d.shard = shard
		}
		d.seqs = append(d.seqs, seq)
		d.keys = append(d.keys, r.Kinesis.PartitionKey)
		d.data = append(d.data, string(r.Kinesis.Data))
	}
	return d
}

// plugin is the stream trigger served over gRPC, configured against a NATS server.
type plugin struct {
	src    *source
	client *sdk.TriggerClient
}

func startPlugin(t *testing.T, n *natsServer, host sdk.Host, info map[string]string) *plugin {
	t.Helper()
	src := newSourceWithLogger(testLogger())
	client := sdktest.Trigger(t, src)
	t.Cleanup(src.Close) // before the connection closes
	if info == nil {
		info = map[string]string{}
	}
	if _, ok := info["nats_url"]; !ok {
		info["nats_url"] = n.url
		info["nats_nkey_seed"] = n.seed
	}
	ctx := testContext(t, 10*time.Second)
	diags, err := client.Configure(ctx, sdk.ConfigureRequest{HostInfo: info}, host)
	if err != nil || len(diags) > 0 {
		t.Fatalf("configuring the plugin: %+v %v", diags, err)
	}
	return &plugin{src: src, client: client}
}

// set gives the plugin mappings and checks they all run.
func (p *plugin) set(t *testing.T, ms ...sdk.Mapping) {
	t.Helper()
	ctx := testContext(t, 15*time.Second)
	st, err := p.client.SetMappings(ctx, ms)
	if err != nil {
		t.Fatalf("SetMappings: %v", err)
	}
	if len(st) != len(ms) {
		t.Fatalf("SetMappings returned %d statuses for %d mappings", len(st), len(ms))
	}
	for _, s := range st {
		if s.State != sdk.StateOK {
			t.Fatalf("mapping %s: %s %s", s.UUID, s.State, s.Message)
		}
	}
}

func newMapping(uuid, stream string) sdk.Mapping {
	return sdk.Mapping{UUID: uuid, Name: "trigger", Function: "fn", FunctionARN: functionARN, Source: stream,
		BatchSize: 10, StartingPosition: sdk.TrimHorizon, MaximumRetryAttempts: -1, Enabled: true}
}
