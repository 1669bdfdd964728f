package natsstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/natsengine/natstest"
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
)

// jetStream starts an embedded server for the test and returns a client of it.
func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Start(t)
	return js
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"clicks", true}, {"Clicks-2024_eu", true}, {"a", true}, {strings.Repeat("a", 128), true}, {strings.Repeat("a", 129), false},
		{"", false}, {"a.b", false}, {"a b", false}, {"a*", false}, {"a>", false}, {"é", false}, {"a/b", false},
	} {
		err := natsstream.Validate(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%q) = %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, natsstream.ErrInvalidName) {
			t.Errorf("Validate(%q) = %v, not ErrInvalidName", tc.name, err)
		}
	}
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"user-1", true}, {"é日本", true}, {strings.Repeat("k", 256), true}, {strings.Repeat("日", 256), true},
		{"", false}, {strings.Repeat("k", 257), false}, {"a\nb", false}, {"a\rb", false}, {"\xff", false},
	} {
		if err := natsstream.ValidatePartitionKey(tc.key); (err == nil) != tc.ok {
			t.Errorf("ValidatePartitionKey(%q) = %v", tc.key, err)
		}
	}
	if got := natsstream.StreamName("clicks"); got != "STREAM_clicks" {
		t.Errorf("stream name %q", got)
	}
	if got := natsstream.Subject("clicks", 3); got != "stream.clicks.3" {
		t.Errorf("subject %q", got)
	}
	if got := natsstream.ShardID(7); got != "shardId-000000000007" {
		t.Errorf("shard id %q", got)
	}
	if got := natsstream.CheckpointKey("0f8e-4a.b*c", 2); got != "0f8e-4a_b_c.shardId-000000000002" {
		t.Errorf("checkpoint key %q", got)
	}
}

// TestShardFor: a key always maps to the same shard, every shard gets keys, and keys spread
// about evenly.
func TestShardFor(t *testing.T) {
	if natsstream.ShardFor("x", 1) != 0 || natsstream.ShardFor("x", 0) != 0 {
		t.Error("one shard: not shard 0")
	}
	// Pinned values: the hash must not change between releases, or keys move shards. ("a" has
	// the MD5 0cc175b9..., in the first sixteenth of the hash range.)
	for _, tc := range []struct {
		key       string
		of4, of16 int
	}{{"a", 0, 0}, {"user-1", 3, 13}, {"user-2", 0, 3}, {"orders-42", 2, 11}} {
		if a, b := natsstream.ShardFor(tc.key, 4), natsstream.ShardFor(tc.key, 16); a != tc.of4 || b != tc.of16 {
			t.Errorf("ShardFor(%q) = %d of 4, %d of 16; want %d, %d", tc.key, a, b, tc.of4, tc.of16)
		}
	}
	for _, shards := range []int{2, 4, 7, 64} {
		counts := make([]int, shards)
		const keys = 20000
		for i := 0; i < keys; i++ {
			s := natsstream.ShardFor(fmt.Sprintf("key-%d", i), shards)
			if s < 0 || s >= shards {
				t.Fatalf("ShardFor(key-%d, %d) = %d", i, shards, s)
			}
			counts[s]++
		}
		for s, n := range counts {
			if want := keys / shards; n < want*7/10 || n > want*13/10 {
				t.Errorf("%d shards: shard %d has %d keys of %d", shards, s, n, keys)
			}
		}
	}
}

// TestEnsure: Ensure creates the stream as the convention says, and a stream keeps its shard
// count whatever later callers ask for, also when many create it at once.
func TestEnsure(t *testing.T) {
	js := jetStream(t)
	ctx := testContext(t)

	var wg sync.WaitGroup
	counts := make(chan int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := natsstream.Ensure(ctx, js, "clicks", 3)
			if err != nil {
				t.Errorf("Ensure: %v", err)
			}
			counts <- n
		}()
	}
	wg.Wait()
	close(counts)
	for n := range counts {
		if n != 3 {
			t.Errorf("Ensure returned %d shards", n)
		}
	}
	if n, err := natsstream.Ensure(ctx, js, "clicks", 8); err != nil || n != 3 {
		t.Errorf("Ensure of an existing stream with another count: %d %v", n, err)
	}
	s, err := js.Stream(ctx, "STREAM_clicks")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Retention != jetstream.LimitsPolicy || cfg.Storage != jetstream.FileStorage || len(cfg.Subjects) != 3 ||
		cfg.Subjects[2] != "stream.clicks.2" || cfg.Metadata[natsstream.ShardsMetadataKey] != "3" {
		t.Errorf("stream config %+v", cfg)
	}
	if n, err := natsstream.Ensure(ctx, js, "views", 0); err != nil || n != natsstream.DefaultShards {
		t.Errorf("default shards: %d %v", n, err)
	}

	// A stream made by hand without the metadata: the count comes from its subjects.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STREAM_manual",
		Subjects: []string{"stream.manual.0", "stream.manual.1", "stream.manual.4"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := natsstream.Shards(ctx, js, "manual"); err != nil || n != 5 {
		t.Errorf("shards from subjects: %d %v", n, err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STREAM_other", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsstream.Ensure(ctx, js, "other", 0); !errors.Is(err, natsstream.ErrNotAStream) {
		t.Errorf("a foreign stream: %v", err)
	}
	if _, err := natsstream.Shards(ctx, js, "absent"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("an absent stream: %v", err)
	}
	for _, n := range []int{-1, natsstream.MaxShards + 1} {
		if _, err := natsstream.Ensure(ctx, js, "bad", n); !errors.Is(err, natsstream.ErrInvalidShards) {
			t.Errorf("Ensure with %d shards: %v", n, err)
		}
	}
	if _, err := natsstream.Ensure(ctx, js, "a.b", 1); !errors.Is(err, natsstream.ErrInvalidName) {
		t.Errorf("a bad name: %v", err)
	}
}

// TestPublish: records land on their key's shard with the key in a header, in order, and
// Publish finds a stream again after it was deleted and made anew with another shard count.
func TestPublish(t *testing.T) {
	js := jetStream(t)
	ctx := testContext(t)

	var last uint64
	for i := 0; i < 40; i++ {
		key := fmt.Sprintf("k%d", i%5)
		seq, err := natsstream.Publish(ctx, js, "orders", key, []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if seq <= last {
			t.Fatalf("sequence %d after %d", seq, last)
		}
		last = seq
	}
	if n, err := natsstream.Shards(ctx, js, "orders"); err != nil || n != natsstream.DefaultShards {
		t.Fatalf("created with %d shards: %v", n, err)
	}
	s, err := js.Stream(ctx, "STREAM_orders")
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= last; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
		key := m.Header.Get(natsstream.PartitionKeyHeader)
		if want := natsstream.Subject("orders", natsstream.ShardFor(key, natsstream.DefaultShards)); m.Subject != want || key == "" {
			t.Errorf("record %d with key %q on %s, want %s", seq, key, m.Subject, want)
		}
	}

	if err := js.DeleteStream(ctx, "STREAM_orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := natsstream.Ensure(ctx, js, "orders", 1); err != nil {
		t.Fatal(err)
	}
	seq, err := natsstream.Publish(ctx, js, "orders", "k3", []byte("again"))
	if err != nil {
		t.Fatalf("publish after the stream was made anew: %v", err)
	}
	s, err = js.Stream(ctx, "STREAM_orders")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil || m.Subject != "stream.orders.0" || string(m.Data) != "again" {
		t.Errorf("record after the stream was made anew: %+v %v", m, err)
	}
	if _, err := natsstream.Publish(ctx, js, "orders", "", nil); !errors.Is(err, natsstream.ErrInvalidPartitionKey) {
		t.Errorf("an empty key: %v", err)
	}
}

func TestCheckpoints(t *testing.T) {
	js := jetStream(t)
	ctx := testContext(t)

	kv, err := natsstream.Checkpoints(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if seq, ok, err := natsstream.LoadCheckpoint(ctx, kv, "m1", 0); err != nil || ok || seq != 0 {
		t.Errorf("no checkpoint yet: %d %v %v", seq, ok, err)
	}
	for shard, seq := range []uint64{10, 20, 30} {
		if err := natsstream.SaveCheckpoint(ctx, kv, "m1", shard, seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := natsstream.SaveCheckpoint(ctx, kv, "m1", 1, 25); err != nil {
		t.Fatal(err)
	}
	if err := natsstream.SaveCheckpoint(ctx, kv, "m2", 1, 99); err != nil {
		t.Fatal(err)
	}
	// A second handle on the bucket (another plugin, another node) sees the same.
	kv2, err := natsstream.Checkpoints(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		uuid  string
		shard int
		seq   uint64
	}{{"m1", 0, 10}, {"m1", 1, 25}, {"m1", 2, 30}, {"m2", 1, 99}} {
		if seq, ok, err := natsstream.LoadCheckpoint(ctx, kv2, tc.uuid, tc.shard); err != nil || !ok || seq != tc.seq {
			t.Errorf("checkpoint of %s on shard %d: %d %v %v, want %d", tc.uuid, tc.shard, seq, ok, err, tc.seq)
		}
	}
	if err := natsstream.DeleteCheckpoints(ctx, kv, "m1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := natsstream.LoadCheckpoint(ctx, kv, "m1", 1); err != nil || ok {
		t.Errorf("deleted checkpoint: %v %v", ok, err)
	}
	if seq, ok, err := natsstream.LoadCheckpoint(ctx, kv, "m2", 1); err != nil || !ok || seq != 99 {
		t.Errorf("another mapping's checkpoint after the delete: %d %v %v", seq, ok, err)
	}
}
