package agent

import (
	"context"
	"testing"

	"github.com/lambdagw/gateway/config"
)

// The events' stream has the async block's replicas; by default one on a node alone or an
// external NATS, and with routes as many as the nodes they name, this one counted once
// (its own route listed or not), up to three.
func TestAsyncReplicas(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int
		listen   string
		routes   []string
		want     int
	}{
		{"alone", 0, "", nil, 1},
		{"set", 2, "127.0.0.1:6222", []string{"127.0.0.1:6222", "10.255.0.2:6222"}, 2},
		{"three nodes, own route listed", 0, "127.0.0.1:6222", []string{"127.0.0.1:6222", "127.0.0.1:6223", "127.0.0.1:6224"}, 3},
		{"three nodes, own route left out", 0, "0.0.0.0:6222", []string{"10.255.0.2:6222", "10.255.0.3:6222"}, 3},
		{"two nodes", 0, "0.0.0.0:6222", []string{"127.0.0.1:6222", "10.255.0.2:6222"}, 2},
		{"five nodes", 0, "0.0.0.0:6222", []string{"10.255.0.2:6222", "10.255.0.3:6222", "10.255.0.4:6222", "10.255.0.5:6222"}, 3},
	} {
		cfg := config.DefaultAgent()
		cfg.Async.Replicas, cfg.NATS.ClusterListen, cfg.NATS.Routes = tc.replicas, tc.listen, tc.routes
		if got := asyncReplicas(context.Background(), cfg); got != tc.want {
			t.Errorf("%s: %d replicas, want %d", tc.name, got, tc.want)
		}
	}
}
