// Package natstest starts an embedded NATS JetStream for a test.
package natstest

import (
	"context"
	"fmt"
	"net"
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
	return StartConfig(t, natsengine.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Anonymous: true})
}

// StartConfig is Start with cfg (a server of ClusterConfigs).
func StartConfig(t testing.TB, cfg natsengine.Config) (*natsengine.Engine, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := natsengine.Start(ctx, cfg)
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

// ClusterConfigs are the configurations of n servers that form one NATS cluster (StartConfig
// starts each), as the agents of a cluster's nodes: named s1...sn, on free loopback ports, each
// given every route address (its own among them), admitting clients without credentials.
func ClusterConfigs(t testing.TB, n int) []natsengine.Config {
	t.Helper()
	routes := make([]string, n)
	for i := range routes {
		// Found free by listening on port 0; every server must know the others' addresses
		// before it starts.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routes[i] = l.Addr().String()
		defer l.Close()
	}
	cfgs := make([]natsengine.Config, n)
	for i := range cfgs {
		cfgs[i] = natsengine.Config{Name: fmt.Sprintf("s%d", i+1), Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Anonymous: true,
			ClusterListen: routes[i], Routes: routes}
	}
	return cfgs
}
