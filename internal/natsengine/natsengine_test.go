package natsengine

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStartServesJetStream: on port 0 the engine picks a port, reports it in ClientURL, serves
// JetStream from StoreDir, logs through the logger named "nats", and shuts down.
func TestStartServesJetStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var logs syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Name: "agent", Output: &logs, Level: hclog.Info})
	e, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: logger})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	if !strings.HasPrefix(e.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(e.ClientURL(), ":0") {
		t.Fatalf("client URL %q", e.ClientURL())
	}

	nc, err := nats.Connect(e.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "t", []byte("hello")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream info: %+v %v", info, err)
	}

	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	out := logs.String()
	for _, want := range []string{"agent.nats", "Starting nats-server", "NATS JetStream started", "NATS JetStream stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// TestStoreSurvivesRestart: a second engine on the same StoreDir finds the first one's messages.
func TestStoreSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	run := func(f func(js jetstream.JetStream)) {
		e, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: dir})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		defer func() {
			if err := e.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}()
		nc, err := nats.Connect(e.ClientURL())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		f(js)
	}
	run(func(js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatalf("create stream: %v", err)
		}
		for i := 0; i < 3; i++ {
			if _, err := js.Publish(ctx, "t", []byte("x")); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	})
	run(func(js jetstream.JetStream) {
		s, err := js.Stream(ctx, "T")
		if err != nil {
			t.Fatalf("stream after restart: %v", err)
		}
		if info, err := s.Info(ctx); err != nil || info.State.Msgs != 3 {
			t.Fatalf("stream after restart: %+v %v", info, err)
		}
	})
}

// TestStartFailures: bad configurations and a port already taken end Start with an error,
// without leaving a server behind.
func TestStartFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	taken := strings.TrimPrefix(e.ClientURL(), "nats://")

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no store", Config{Listen: "127.0.0.1:0"}, "StoreDir"},
		{"bad address", Config{Listen: "localhost", StoreDir: t.TempDir()}, "listen address"},
		{"bad port", Config{Listen: "127.0.0.1:http", StoreDir: t.TempDir()}, "bad port"},
		{"port taken", Config{Listen: taken, StoreDir: t.TempDir(), ReadyTimeout: 5 * time.Second}, "listening"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Start(ctx, tc.cfg)
			if err == nil {
				_ = e.Shutdown(ctx)
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
