package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// Leaser holds a node's share of reserved concurrency in a cluster (the cluster node).
type Leaser interface {
	// Clustered reports whether other nodes share the reservations (more than one member).
	Clustered() bool
	// PutLease asks for slots of fn's reservation until ttl from now (0 gives them back);
	// an error wrapping the store's Conflict means that many are not free.
	PutLease(ctx context.Context, fn string, slots int, ttl time.Duration) error
	// AskIdleSlots asks the other nodes holding leases of fn to give back the slots they do
	// not use (their GiveBackIdle), returning once they answered or ctx ended.
	AskIdleSlots(ctx context.Context, fn string)
}

// Leases of reserved concurrency in a cluster: a node admits a reserved function's calls only
// within the slots it leased from the replicated state, asking for more (a few at a time) when
// it runs out and renewing what it uses; a node that cannot renew (cut off) stops admitting
// before its lease ends, and the others get its slots only after that plus the function's
// timeout (see fsm.PutLease), so the reservation holds across the cluster, also under a
// partition.
const (
	leaseTTL    = 10 * time.Second
	leaseMargin = 2 * time.Second // stop using a lease this long before it ends (clock skew, latency)
	leaseAsk    = 2 * time.Second // bound on asking for a lease on the invocation path
)

type heldLease struct {
	slots int
	until time.Time
	used  time.Time // last admission under it
}

// admit counts an invocation of function fn as running, or refuses it at once when the
// function's reserved concurrency is reached (Lambda's throttle: 429 with the reason, never a
// queue). Every invocation is counted, so a reservation set while calls run sees them. The
// release must be called once the invocation ends. In a cluster a reserved function's calls
// run within this node's lease of its reservation.
//
// A function without a reservation shares what the reservations leave of the node's
// max_concurrency with the other such functions (Lambda's unreserved account concurrency).
func (g *Gateway) admit(ctx context.Context, fn string) (release func(), err error) {
	limit, reserved := g.cfg.Store.ReservedConcurrency(fn)
	if !reserved {
		if release, ok := g.admitUnreserved(fn); ok {
			return release, nil
		}
		return nil, errPoolFull
	}
	if g.cfg.Leases != nil && g.cfg.Leases.Clustered() {
		return g.admitLeased(ctx, fn, limit)
	}
	g.inflightMu.Lock()
	defer g.inflightMu.Unlock()
	if g.inflight[fn] >= limit {
		return nil, lambda.TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded", "Rate Exceeded.")
	}
	g.inflight[fn]++
	return g.releaseReserved(fn), nil
}

// errPoolFull is the throttle of a call of a function without a reservation when this node's
// share of the unreserved concurrency is taken (in a cluster, Invoke first asks the peers).
var errPoolFull = lambda.TooManyRequests("ConcurrentInvocationLimitExceeded", "Rate Exceeded.")

// unreservedPool is the node's share of max_concurrency left to functions without a
// reservation; -1: no limit.
func (g *Gateway) unreservedPool() int {
	if g.cfg.MaxConcurrency <= 0 {
		return -1
	}
	return max(g.cfg.MaxConcurrency-g.cfg.Store.ReservedTotal(), 0)
}

// PoolFree is how many more calls of functions without a reservation this node admits now (the
// router reports it to its peers); -1: no limit.
func (g *Gateway) PoolFree() int {
	pool := g.unreservedPool()
	if pool < 0 {
		return -1
	}
	g.inflightMu.Lock()
	defer g.inflightMu.Unlock()
	return max(pool-g.unreserved, 0)
}

// AdmitUnreserved counts a call of fn, a function without a reservation, against this node's
// share of the unreserved concurrency, or refuses it when the share is full or fn has a
// reservation after all (the router admits a peer's call beyond its own share with it).
func (g *Gateway) AdmitUnreserved(fn string) (release func(), ok bool) {
	if _, reserved := g.cfg.Store.ReservedConcurrency(fn); reserved {
		return nil, false
	}
	return g.admitUnreserved(fn)
}

func (g *Gateway) admitUnreserved(fn string) (release func(), ok bool) {
	pool := g.unreservedPool()
	g.inflightMu.Lock()
	defer g.inflightMu.Unlock()
	if pool >= 0 && g.unreserved >= pool {
		return nil, false
	}
	g.inflight[fn]++
	g.unreserved++
	return func() {
		g.inflightMu.Lock()
		if g.inflight[fn]--; g.inflight[fn] <= 0 {
			delete(g.inflight, fn)
		}
		g.unreserved--
		g.inflightMu.Unlock()
	}, true
}

func (g *Gateway) releaseReserved(fn string) func() {
	return func() {
		g.inflightMu.Lock()
		if g.inflight[fn]--; g.inflight[fn] <= 0 {
			delete(g.inflight, fn)
		}
		g.inflightMu.Unlock()
	}
}

// tryLeased admits under the lease held now, if it has a free slot.
func (g *Gateway) tryLeased(fn string) bool {
	g.inflightMu.Lock()
	defer g.inflightMu.Unlock()
	h := g.held[fn]
	if h == nil || time.Now().After(h.until.Add(-leaseMargin)) || g.inflight[fn] >= h.slots {
		return false
	}
	g.inflight[fn]++
	h.used = time.Now()
	return true
}

func (g *Gateway) admitLeased(ctx context.Context, fn string, limit int) (func(), error) {
	if g.tryLeased(fn) {
		return g.releaseReserved(fn), nil
	}
	// More slots: one lease change at a time, so a smaller grant never replaces a larger one.
	g.leaseMu.Lock()
	defer g.leaseMu.Unlock()
	if g.tryLeased(fn) {
		return g.releaseReserved(fn), nil
	}
	throttled := lambda.TooManyRequests("ReservedFunctionConcurrentInvocationLimitExceeded", "Rate Exceeded.")
	if time.Now().Before(g.noLease[fn]) {
		return nil, throttled
	}
	g.inflightMu.Lock()
	running := g.inflight[fn]
	g.inflightMu.Unlock()
	batch := max(1, limit/8)
	for _, want := range []int{min(limit, running+batch), min(limit, running+1)} {
		if want <= running {
			break
		}
		lctx, cancel := context.WithTimeout(ctx, leaseAsk)
		err := g.cfg.Leases.PutLease(lctx, fn, want, leaseTTL)
		cancel()
		if err == nil {
			g.logger.Debug("leased reserved concurrency", "function", fn, "slots", want, "running", running)
			g.inflightMu.Lock()
			g.held[fn] = &heldLease{slots: want, until: time.Now().Add(leaseTTL)}
			g.inflightMu.Unlock()
			if g.tryLeased(fn) {
				return g.releaseReserved(fn), nil
			}
			break
		}
		if se := g.cfg.StoreErrors; se.Conflict == nil || !errors.Is(err, se.Conflict) {
			g.logger.Warn("no lease of reserved concurrency", "function", fn, "error", err)
			g.noLease[fn] = time.Now().Add(leaseAsk)
			return nil, throttled
		}
	}
	// Every slot is leased: to other nodes, which may not use them (a lease outlives its last
	// call by a few seconds). Lambda throttles only when the function's executions fill its
	// reservation, so the holders are asked to give back what they do not run, and the slot is
	// asked for once more. Nothing is ever leased twice: the replicated state grants a slot only
	// once its holder gave it back.
	lctx, cancel := context.WithTimeout(ctx, leaseAsk)
	defer cancel()
	g.cfg.Leases.AskIdleSlots(lctx, fn)
	want := min(limit, running+1)
	if err := g.cfg.Leases.PutLease(lctx, fn, want, leaseTTL); err != nil {
		return nil, throttled
	}
	g.logger.Debug("leased reserved concurrency given back by another node", "function", fn, "slots", want)
	g.inflightMu.Lock()
	g.held[fn] = &heldLease{slots: want, until: time.Now().Add(leaseTTL)}
	g.inflightMu.Unlock()
	if g.tryLeased(fn) {
		return g.releaseReserved(fn), nil
	}
	return nil, throttled
}

// GiveBackIdle gives back the slots of fn's lease this node does not use: another node found
// none free. It waits a moment for this node's own lease changes (a renewal), but not as long as
// the asker waits: two nodes asking each other at once would otherwise wait on each other.
func (g *Gateway) GiveBackIdle(ctx context.Context, fn string) {
	if g.cfg.Leases == nil {
		return
	}
	for deadline := time.Now().Add(leaseAsk / 4); !g.leaseMu.TryLock(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
	}
	defer g.leaseMu.Unlock()
	g.inflightMu.Lock()
	h := g.held[fn]
	if h == nil || g.inflight[fn] >= h.slots {
		g.inflightMu.Unlock()
		return
	}
	// Shrunk before it is given back: nothing is admitted beyond what runs meanwhile.
	running := g.inflight[fn]
	h.slots = running
	g.inflightMu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, leaseAsk)
	defer cancel()
	if err := g.cfg.Leases.PutLease(lctx, fn, running, leaseTTL); err != nil {
		g.logger.Debug("giving back idle reserved concurrency", "function", fn, "error", err)
		return
	}
	g.inflightMu.Lock()
	if running == 0 {
		delete(g.held, fn)
	} else {
		h.until = time.Now().Add(leaseTTL)
	}
	g.inflightMu.Unlock()
	g.logger.Debug("gave back idle reserved concurrency", "function", fn, "kept", running)
}

// renewLeases keeps the leases this node uses and gives back those idle for a while; it runs
// every leaseTTL/3 until the gateway shuts down.
func (g *Gateway) renewLeases(stop <-chan struct{}) {
	t := time.NewTicker(leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		g.leaseMu.Lock()
		g.inflightMu.Lock()
		type job struct {
			fn    string
			slots int
		}
		var jobs []job
		for fn, h := range g.held {
			idle := g.inflight[fn] == 0 && time.Since(h.used) > leaseTTL/3
			if idle {
				jobs = append(jobs, job{fn, 0})
			} else {
				jobs = append(jobs, job{fn, h.slots})
			}
		}
		g.inflightMu.Unlock()
		for i, j := range jobs {
			ctx, cancel := context.WithTimeout(context.Background(), leaseAsk)
			err := g.cfg.Leases.PutLease(ctx, j.fn, j.slots, leaseTTL)
			cancel()
			if se := g.cfg.StoreErrors; err != nil && (se.Conflict == nil || !errors.Is(err, se.Conflict)) {
				// No leader to be had: the other leases would wait for it too, and callers should
				// not ask again at once. The leases run out where they are.
				g.logger.Warn("cannot renew leases of reserved concurrency", "error", err)
				for _, j := range jobs[i:] {
					g.noLease[j.fn] = time.Now().Add(leaseAsk)
				}
				break
			}
			g.inflightMu.Lock()
			switch {
			case err == nil && j.slots == 0:
				delete(g.held, j.fn)
			case err == nil:
				if h := g.held[j.fn]; h != nil {
					h.until = time.Now().Add(leaseTTL)
				}
			}
			g.inflightMu.Unlock()
		}
		g.leaseMu.Unlock()
	}
}

// PutFunctionConcurrency reserves n concurrent executions for the function (0 throttles every
// call, as Lambda's does).
func (g *Gateway) PutFunctionConcurrency(ctx context.Context, name string, n int) (*lambda.Concurrency, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if err := lambda.InvalidFields(structs.ValidateReservedConcurrency(n)); err != nil {
		return nil, err
	}
	if g.cfg.MaxConcurrency > 0 {
		others := g.cfg.Store.ReservedTotal()
		if cur, ok := g.cfg.Store.ReservedConcurrency(fn.Name); ok {
			others -= cur
		}
		if others+n > g.cfg.MaxConcurrency {
			return nil, lambda.InvalidParameter("Specified ReservedConcurrentExecutions for function decreases the node's unreserved concurrency below 0: %d reserved by other functions, %d requested, max_concurrency %d",
				others, n, g.cfg.MaxConcurrency)
		}
	}
	if err := g.cfg.Store.PutConcurrency(ctx, fn.Name, &n); err != nil {
		return nil, g.storeError(fn.Name, err)
	}
	return &lambda.Concurrency{ReservedConcurrentExecutions: &n}, nil
}

// GetFunctionConcurrency reports the reservation; none is an empty answer, as in Lambda.
func (g *Gateway) GetFunctionConcurrency(name string) (*lambda.Concurrency, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	out := &lambda.Concurrency{}
	if n, ok := g.cfg.Store.ReservedConcurrency(fn.Name); ok {
		out.ReservedConcurrentExecutions = &n
	}
	return out, nil
}

// DeleteFunctionConcurrency removes the reservation.
func (g *Gateway) DeleteFunctionConcurrency(ctx context.Context, name string) error {
	fn, err := g.existing(name)
	if err != nil {
		return err
	}
	if err := g.cfg.Store.PutConcurrency(ctx, fn.Name, nil); err != nil {
		return g.storeError(fn.Name, err)
	}
	return nil
}
