package natsq_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/natsengine/natstest"
	"github.com/lambdagw/gateway/plugins/sdk/natsq"
)

// jetStream starts an embedded server for the test and returns a client of it.
func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := natstest.Start(t)
	return js
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"orders", true}, {"Orders-2024_eu", true}, {"a", true}, {strings.Repeat("a", 80), true}, {strings.Repeat("a", 81), false},
		{"", false}, {"a.b", false}, {"a b", false}, {"a*", false}, {"a>", false}, {"é", false}, {"a/b", false},
	} {
		err := natsq.Validate(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%q) = %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, natsq.ErrInvalidName) {
			t.Errorf("Validate(%q) = %v, not ErrInvalidName", tc.name, err)
		}
	}
	if natsq.Subject("orders") != "queue.orders" || natsq.StreamName("orders") != "QUEUE_orders" {
		t.Errorf("subject %q stream %q", natsq.Subject("orders"), natsq.StreamName("orders"))
	}
	if got := natsq.ConsumerName("0f8e-4a.b*c"); got != "esm-0f8e-4a_b_c" {
		t.Errorf("consumer name %q", got)
	}
}

// TestEnsure: Ensure creates the queue's stream as the convention says, finds it the next
// times (also when many ask at once), and refuses bad names before asking the server.
func TestEnsure(t *testing.T) {
	js := jetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := natsq.Ensure(ctx, js, "orders")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ensure: %v", err)
		}
	}
	s, err := natsq.Ensure(ctx, js, "orders")
	if err != nil {
		t.Fatalf("ensure again: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Name != "QUEUE_orders" || len(c.Subjects) != 1 || c.Subjects[0] != "queue.orders" ||
		c.Retention != jetstream.WorkQueuePolicy || c.Storage != jetstream.FileStorage {
		t.Errorf("stream config %+v", c)
	}
	if _, err := natsq.Ensure(ctx, js, "bad.name"); !errors.Is(err, natsq.ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}
}

// TestPublish: Publish creates the queue on first use, stores the body and headers, and a
// Nats-Msg-Id header deduplicates.
func TestPublish(t *testing.T) {
	js := jetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := natsq.Publish(ctx, js, "jobs", []byte("one"), map[string]string{"kind": "a", "Nats-Msg-Id": "m1"}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := natsq.Publish(ctx, js, "jobs", []byte("one again"), map[string]string{"Nats-Msg-Id": "m1"}); err != nil {
		t.Fatalf("publish a duplicate: %v", err)
	}
	if err := natsq.Publish(ctx, js, "jobs", []byte("two"), nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := natsq.Publish(ctx, js, "no way", []byte("x"), nil); !errors.Is(err, natsq.ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}

	s, err := js.Stream(ctx, "QUEUE_jobs")
	if err != nil {
		t.Fatalf("the queue was not created: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream holds %+v %v, want 2 messages", info.State, err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "one" || m.Header.Get("kind") != "a" || m.Subject != "queue.jobs" {
		t.Errorf("first message %q %v on %s", m.Data, m.Header, m.Subject)
	}
}
