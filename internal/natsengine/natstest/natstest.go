// Package natstest starts an embedded NATS JetStream for a test.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/lambdagw/gateway/internal/natsengine"
)

// Start runs an embedded server on a free loopback port, its data in t.TempDir(), and returns
// it with a client of it; both are closed when the test ends. The server admits clients without
// credentials, as an external NATS may: the agent's own never does.
func Start(t testing.TB) (*natsengine.Engine, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := natsengine.Start(ctx, natsengine.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Anonymous: true})
	if err != nil {
		t.Fatalf("starting NATS: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	nc, err := nats.Connect(e.ClientURL())
	if err != nil {
		t.Fatalf("connecting to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return e, js
}

// User makes a user NKey, for natsengine.Config.Users: its public key, its seed (what a plugin
// gets in HostInfo) and the option a test's client connects with.
func User(t testing.TB) (pub, seed string, opt nats.Option) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	if pub, err = kp.PublicKey(); err != nil {
		t.Fatal(err)
	}
	s, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return pub, string(s), nats.Nkey(pub, kp.Sign)
}
