package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/internal/natsengine"
)

// peerCountersTimeout bounds asking one node for its counts of a function's events.
const peerCountersTimeout = 2 * time.Second

// peerAsyncCounters asks every other node of the cluster for its counts of a function's events
// (gateway async status adds them up) and names those that did not answer.
func peerAsyncCounters(node *cluster.Node) gateway.ClusterCounters {
	return func(ctx context.Context, fn string) (gateway.AsyncCounters, []string) {
		var sum gateway.AsyncCounters
		var mu sync.Mutex
		var missing []string
		err := eachPeer(node, func(m cluster.Member) {
			c, err := askAsyncCounters(ctx, node, m.Address, fn)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				missing = append(missing, m.ID)
				return
			}
			sum.Add(c)
		})
		if err != nil {
			return sum, []string{"?"}
		}
		return sum, missing
	}
}

func askAsyncCounters(ctx context.Context, node *cluster.Node, addr, fn string) (gateway.AsyncCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, peerCountersTimeout)
	defer cancel()
	var c gateway.AsyncCounters
	body, err := node.Get(ctx, addr, "async/counters?function="+url.QueryEscape(fn))
	if err != nil {
		return c, err
	}
	defer body.Close()
	return c, json.NewDecoder(io.LimitReader(body, 1<<16)).Decode(&c)
}

// serveAsyncCounters answers this node's counts of a function's events.
func serveAsyncCounters(gw *gateway.Gateway) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(gw.AsyncCounters(r.URL.Query().Get("function")))
	}
}

// maxDefaultReplicas is the default number of replicas of the events' stream on a NATS cluster
// of the nodes' embedded servers: three keep accepted events through the loss of a node.
const maxDefaultReplicas = 3

// asyncReplicas is the replicas of the events' stream: the async block's, or by default one
// (a node alone, an external NATS) or, with nats { routes }, as many as the nodes they name
// (this one and the others: its own route may be listed too), up to three. Every node given the
// same routes comes to the same number, so none changes the stream another made.
func asyncReplicas(ctx context.Context, cfg *config.Agent) int {
	if cfg.Async.Replicas > 0 {
		return cfg.Async.Replicas
	}
	if len(cfg.NATS.Routes) == 0 {
		return 1
	}
	return min(maxDefaultReplicas, 1+natsengine.OtherServers(ctx, cfg.NATS.ClusterListen, cfg.NATS.Routes))
}
