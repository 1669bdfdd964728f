package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/structs"
)

// runtimes are the node's managed runtimes (runtime blocks): each one's image is pulled at
// start, and again until it succeeds, pinned to its digest for the agent's life, so a cold
// start never waits for a registry.
type runtimes struct {
	imgs   *images
	logger hclog.Logger
	names  []string

	mu    sync.Mutex
	state map[string]*runtimeState
}

type runtimeState struct {
	image    string // as configured
	resolved string // pinned, once pulled
	err      error  // the last pull's failure
}

// runtimeRetry is the time between two pulls of a runtime image that failed.
const runtimeRetry = 30 * time.Second

func startRuntimes(ctx context.Context, cfg []config.RuntimeImage, imgs *images, logger hclog.Logger) *runtimes {
	r := &runtimes{imgs: imgs, logger: logger.Named("runtimes"), state: map[string]*runtimeState{}}
	for _, rt := range cfg {
		r.names = append(r.names, rt.Name)
		r.state[rt.Name] = &runtimeState{image: rt.Image, err: fmt.Errorf("not pulled yet")}
		go r.pull(ctx, rt.Name, rt.Image)
	}
	return r
}

func (r *runtimes) pull(ctx context.Context, name, image string) {
	for {
		im, err := r.imgs.s.Pull(ctx, image)
		r.mu.Lock()
		st := r.state[name]
		if err == nil {
			st.resolved, st.err = im.Resolved, nil
		} else {
			st.err = err
		}
		r.mu.Unlock()
		if err == nil {
			r.logger.Info("runtime ready", "runtime", name, "image", im.Resolved)
			return
		}
		if ctx.Err() != nil {
			return
		}
		r.logger.Error("pulling a runtime's image failed; functions on it cannot start here until it succeeds", "runtime", name, "image", image, "error", err, "retry_in", runtimeRetry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(runtimeRetry):
		}
	}
}

// Names lists the runtimes declared, in file order.
func (r *runtimes) Names() []string { return append([]string(nil), r.names...) }

// RuntimeImage is the pinned image of runtime name, or why this node cannot run it.
func (r *runtimes) RuntimeImage(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state[name]
	switch {
	case st == nil:
		return "", fmt.Errorf("runtime %s is not declared on this node (its runtimes: %s)", name, strings.Join(r.names, ", "))
	case st.resolved == "":
		return "", fmt.Errorf("runtime %s: its image %s is not on this node yet: %v", name, st.image, st.err)
	}
	return st.resolved, nil
}

// Digests are the digests of the runtime images pulled, which the image collection keeps.
func (r *runtimes) Digests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, st := range r.state {
		if d := structs.PinnedDigest(st.resolved); d != "" {
			out = append(out, d)
		}
	}
	return out
}

// RuntimeStatus is a runtime as /v1/status (and `gateway runtimes`) shows it.
type RuntimeStatus struct {
	Name     string `json:"name"`
	Image    string `json:"image"`
	Resolved string `json:"resolved,omitempty"` // set once the image is on this node
	Error    string `json:"error,omitempty"`    // why it is not, yet
}

// Status lists the runtimes in file order.
func (r *runtimes) Status() []RuntimeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []RuntimeStatus{}
	for _, n := range r.names {
		st := r.state[n]
		rs := RuntimeStatus{Name: n, Image: st.image, Resolved: st.resolved}
		if st.resolved == "" && st.err != nil {
			rs.Error = st.err.Error()
		}
		out = append(out, rs)
	}
	return out
}

// NodeRuntimes is one node's runtimes, as `gateway runtimes` shows a cluster's.
type NodeRuntimes struct {
	Node     string          `json:"node"`
	Runtimes []RuntimeStatus `json:"runtimes"`
	// Error says why the node could not be asked.
	Error string `json:"error,omitempty"`
}

// peerRuntimesTimeout bounds asking one peer for its runtimes.
const peerRuntimesTimeout = 3 * time.Second

// serveRuntimes answers a peer's RPC for this node's runtimes.
func serveRuntimes(node string, r *runtimes) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(NodeRuntimes{Node: node, Runtimes: r.Status()})
	}
}

// clusterRuntimes is every node's runtimes: this node's own, and each other member's asked over
// the node RPC at once (a node that does not answer in time is listed with the error).
func clusterRuntimes(ctx context.Context, node *cluster.Node, self string, r *runtimes) []NodeRuntimes {
	out := []NodeRuntimes{{Node: self, Runtimes: r.Status()}}
	var mu sync.Mutex
	var peers []NodeRuntimes
	if err := eachPeer(node, func(m cluster.Member) {
		nr := askRuntimes(ctx, node, m)
		mu.Lock()
		peers = append(peers, nr)
		mu.Unlock()
	}); err != nil {
		return append(out, NodeRuntimes{Node: "?", Error: err.Error()})
	}
	slices.SortFunc(peers, func(a, b NodeRuntimes) int { return strings.Compare(a.Node, b.Node) })
	return append(out, peers...)
}

// eachPeer calls ask for every other member of the cluster at once, and returns when all
// have returned.
func eachPeer(node *cluster.Node, ask func(m cluster.Member)) error {
	members, err := node.Members()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, m := range members {
		if m.ID == node.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ask(m)
		}()
	}
	wg.Wait()
	return nil
}

func askRuntimes(ctx context.Context, node *cluster.Node, m cluster.Member) NodeRuntimes {
	ctx, cancel := context.WithTimeout(ctx, peerRuntimesTimeout)
	defer cancel()
	body, err := node.Get(ctx, m.Address, "runtimes")
	if err != nil {
		return NodeRuntimes{Node: m.ID, Error: err.Error()}
	}
	defer body.Close()
	var nr NodeRuntimes
	if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&nr); err != nil {
		return NodeRuntimes{Node: m.ID, Error: fmt.Sprintf("reading its answer: %v", err)}
	}
	nr.Node = m.ID
	return nr
}
