package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/gateway/httpapi"
	"github.com/lambdagw/gateway/internal/asyncq"
	"github.com/lambdagw/gateway/internal/funclog"
	"github.com/lambdagw/gateway/internal/metrics"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/plugins/host"
	"github.com/lambdagw/gateway/sandbox"
)

// sandboxMetrics is the registry as the sandbox sees it.
type sandboxMetrics struct{ *metrics.Registry }

func (s sandboxMetrics) Invocation(function, arn string) sandbox.InvocationMetrics {
	return s.Function(function, arn)
}

// nodeFigures are what the registry reads from the node's parts at each scrape.
func nodeFigures(mgr *sandbox.Manager, logs *funclog.Store, js jetstream.JetStream, plugins *host.Host, gw *gateway.Gateway,
	exists func(string) bool) metrics.Node {
	var (
		mu      sync.Mutex
		figures sandbox.Figures
		at      time.Time
	)
	// One scrape reads the environments once, for the three figures made of them.
	figs := func() sandbox.Figures {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > time.Second {
			figures, at = mgr.Figures(), time.Now()
		}
		return figures
	}
	var streams func(ctx context.Context) ([]metrics.StreamDepth, error)
	if js != nil {
		streams = func(ctx context.Context) ([]metrics.StreamDepth, error) {
			var out []metrics.StreamDepth
			l := js.ListStreams(ctx)
			for info := range l.Info() {
				out = append(out, metrics.StreamDepth{Stream: info.Config.Name, Messages: info.State.Msgs,
					Bytes: info.State.Bytes, Consumers: info.State.Consumers})
			}
			return out, l.Err()
		}
	}
	var waiting func(ctx context.Context) ([]metrics.AsyncWaiting, error)
	if js != nil {
		// One question lists every function's consumer of the async stream (asyncq).
		waiting = func(ctx context.Context) ([]metrics.AsyncWaiting, error) {
			st, err := js.Stream(ctx, asyncq.StreamName)
			if err != nil {
				return nil, err
			}
			var out []metrics.AsyncWaiting
			l := st.ListConsumers(ctx)
			for info := range l.Info() {
				fn, ok := strings.CutPrefix(info.Name, asyncq.ConsumerName(""))
				if !ok || !exists(fn) {
					continue
				}
				out = append(out, metrics.AsyncWaiting{Function: fn, Waiting: info.NumPending, InFlight: info.NumAckPending})
			}
			return out, l.Err()
		}
	}
	return metrics.Node{
		Waiting:      waiting,
		Environments: func() map[string]int { return figs().States },
		Memory: func() (uint64, uint64) {
			f := figs()
			return f.MemoryLimitBytes, f.MemoryPeakBytes
		},
		Provisioned: func() []metrics.FunctionCount {
			var out []metrics.FunctionCount
			for k, n := range figs().ProvisionedInUse {
				out = append(out, metrics.FunctionCount{Function: k[0], Qualifier: k[1], N: n})
			}
			return out
		},
		LogLines: func() (int64, int64) { return logs.Dropped(), logs.Lost() },
		Streams:  streams,
		Plugins: func() []metrics.PluginState {
			var out []metrics.PluginState
			for _, st := range plugins.Status() {
				out = append(out, metrics.PluginState{Name: st.Name, State: st.State, Restarts: st.Restarts})
			}
			return out
		},
		Async: func() []metrics.AsyncCount {
			var out []metrics.AsyncCount
			gw.EachAsyncCounters(func(fn string, c gateway.AsyncCounters) {
				if !exists(fn) {
					return // a deleted function's counts go with it
				}
				for _, o := range []struct {
					name string
					n    uint64
				}{{"succeeded", c.Succeeded}, {"retried", c.Retried}, {"retries_exhausted", c.RetriesExhausted},
					{"expired", c.Expired}, {"delivered", c.Delivered - c.DeadLettered}, {"dead_lettered", c.DeadLettered},
					{"dropped", c.Dropped}} {
					out = append(out, metrics.AsyncCount{Function: fn, Outcome: o.name, N: o.n})
				}
			})
			return out
		},
	}
}

// peerHistoryTimeout bounds asking one peer for its history of a function.
const peerHistoryTimeout = 3 * time.Second

// historyRPC is the node RPC route of a function's history on one node.
const historyRPC = "metrics/history"

// serveHistory answers a peer's RPC for this node's buckets of a function:
// ?function=NAME&end=UNIXMINUTE&minutes=N.
func serveHistory(met *metrics.Registry) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		end, err1 := strconv.ParseInt(q.Get("end"), 10, 64)
		n, err2 := strconv.Atoi(q.Get("minutes"))
		if err1 != nil || err2 != nil || n < 1 || n > metrics.HistoryMinutes {
			http.Error(w, "end (a Unix minute) and minutes (1 to 180) are required", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(met.History(q.Get("function"), time.Unix(end*60, 0), n))
	}
}

// clusterHistory is the API's metrics: the registry's handler, and a function's history
// gathered from every node.
type clusterHistory struct {
	met  *metrics.Registry
	node *cluster.Node
}

func (c clusterHistory) Handler() http.Handler { return c.met.Handler() }

// History merges this node's buckets of function with every other member's, asked over the node
// RPC at once; a node that does not answer in time is listed in NodesFailed.
func (c clusterHistory) History(ctx context.Context, function string, n int) any {
	now := time.Now()
	end := now.Unix() / 60
	nodes := []metrics.NodeHistory{c.met.History(function, now, n)}
	var (
		mu     sync.Mutex
		failed []string
	)
	err := eachPeer(c.node, func(m cluster.Member) {
		h, err := askHistory(ctx, c.node, m, function, end, n)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = append(failed, m.ID+": "+err.Error())
			return
		}
		nodes = append(nodes, h)
	})
	if err != nil {
		failed = append(failed, "members: "+err.Error())
	}
	out := metrics.Merge(function, end, n, nodes)
	if failed != nil {
		out.NodesFailed = failed
	}
	return out
}

func askHistory(ctx context.Context, node *cluster.Node, m cluster.Member, function string, end int64, n int) (metrics.NodeHistory, error) {
	ctx, cancel := context.WithTimeout(ctx, peerHistoryTimeout)
	defer cancel()
	q := "?function=" + url.QueryEscape(function) + "&end=" + strconv.FormatInt(end, 10) + "&minutes=" + strconv.Itoa(n)
	body, err := node.Get(ctx, m.Address, historyRPC+q)
	if err != nil {
		return metrics.NodeHistory{}, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, 4<<20))
	if err != nil {
		return metrics.NodeHistory{}, err
	}
	return metrics.DecodeNodeHistory(data, end, n)
}

// The registry as each part takes it: an unset interface when metrics are off (a nil
// *Registry in an interface would not read as unset).
func sandboxMetricsOf(met *metrics.Registry) sandbox.Metrics {
	if met == nil {
		return nil
	}
	return sandboxMetrics{met}
}

func gatewayMetricsOf(met *metrics.Registry) gateway.Metrics {
	if met == nil {
		return nil
	}
	return met
}

func apiMetricsOf(met *metrics.Registry, node *cluster.Node) httpapi.Metrics {
	if met == nil {
		return nil
	}
	return clusterHistory{met: met, node: node}
}

// keepMetrics forgets the series of the functions no longer in fns.
func keepMetrics(met *metrics.Registry, fns []*structs.Function) {
	if met == nil {
		return
	}
	names := make([]string, len(fns))
	for i, fn := range fns {
		names[i] = fn.Name
	}
	met.Keep(names)
}
