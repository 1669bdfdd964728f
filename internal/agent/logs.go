package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/internal/funclog"
)

// clusterLogs reads a function's log from every node of the cluster: this node's store, and
// each other member's over the node RPC (GET logs/{name}), merged in time order. A node that
// cannot be read is reported as an entry of type error, never silently missing.
type clusterLogs struct {
	store  *funclog.Store
	node   *cluster.Node
	self   string
	logger hclog.Logger
}

const (
	// peerLogsTimeout bounds reading one peer's past lines.
	peerLogsTimeout = 10 * time.Second
	// followRescan is how often a follow looks for members it does not stream from yet (a node
	// that joined, or one whose stream broke).
	followRescan = 5 * time.Second
	// maxEntryBytes bounds one entry on the RPC (a line is at most 256 KB, escaped).
	maxEntryBytes = 2 << 20
	// typeHistoryEnd is the RPC's marker between a node's past lines and its followed ones.
	typeHistoryEnd = "history_end"
)

// Entry types beyond funclog's kinds.
const (
	entryError  = "error"  // a node could not be read
	entryNotice = "notice" // a node's scan stopped at its bound
)

// serve answers a peer's GET logs/{name}: this node's lines as JSON entries, the marker, then,
// with follow=true, new lines until the peer hangs up.
func (c *clusterLogs) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p, err := funclog.ParseParams(r.URL.Query(), time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var sub <-chan string
	if p.Follow { // subscribed before the past is read: no line falls between
		sub = c.store.Follow(r.Context(), name)
	}
	res, err := c.store.Query(name, p.Query)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, l := range res.Lines {
		_ = enc.Encode(l.Entry(c.self, name))
	}
	end := funclog.Entry{Type: typeHistoryEnd, Node: c.self}
	if res.Truncated {
		end.Message = "truncated"
	}
	_ = enc.Encode(end)
	_ = bw.Flush()
	flush(w)
	if sub == nil {
		return
	}
	for rec := range sub {
		l, ok := funclog.Parse(rec)
		if !ok || !p.Matches(l) {
			continue
		}
		if err := enc.Encode(l.Entry(c.self, name)); err != nil {
			return
		}
		if len(sub) == 0 {
			if bw.Flush() != nil {
				return
			}
			flush(w)
		}
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// peerStream is one peer's answer being read.
type peerStream struct {
	node    string
	history []funclog.Entry
	notice  string
	err     error
	done    chan struct{} // closed when history (or err) is complete
}

// Read calls out with the last p.Limit lines of the function across the cluster in time order
// (and error entries for nodes that could not be read), then, with p.Follow, every new line of
// every node as it comes, until ctx ends or out fails.
func (c *clusterLogs) Read(ctx context.Context, function string, p funclog.Params, out func(funclog.Entry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sub <-chan string
	if p.Follow {
		sub = c.store.Follow(ctx, function)
	}
	live := make(chan funclog.Entry, 1024)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later runs first): every reader is gone on return
	defer cancel()
	streaming := map[string]bool{}
	var smu sync.Mutex
	// start reads a member's log; restarted ones (ps nil) report on live only.
	start := func(m cluster.Member, pp funclog.Params, restarted bool) *peerStream {
		var ps *peerStream
		if !restarted {
			ps = &peerStream{node: m.ID, done: make(chan struct{})}
		}
		smu.Lock()
		streaming[m.ID] = true
		smu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.readPeer(ctx, m, function, pp, ps, live)
			smu.Lock()
			delete(streaming, m.ID)
			smu.Unlock()
		}()
		return ps
	}
	var peers []*peerStream
	var listErr error
	if c.node != nil {
		members, err := c.node.Members()
		listErr = err
		for _, m := range members {
			if m.ID != c.node.ID() {
				peers = append(peers, start(m, p, false))
			}
		}
	}
	res, err := c.store.Query(function, p.Query)
	if err != nil {
		return fmt.Errorf("reading the log of %s: %w", function, err)
	}
	entries := make([]funclog.Entry, 0, len(res.Lines))
	for _, l := range res.Lines {
		entries = append(entries, l.Entry(c.self, function))
	}
	var notes []funclog.Entry
	now := func() string { return time.Now().UTC().Format(time.RFC3339Nano) }
	if res.Truncated {
		notes = append(notes, funclog.Entry{Time: now(), Node: c.self, Function: function, Type: entryNotice,
			Message: "[gateway] node " + c.self + ": the search stopped at its bound; older lines were not read"})
	}
	if listErr != nil {
		notes = append(notes, funclog.Entry{Time: now(), Node: "?", Function: function, Type: entryError,
			Message: "[gateway] the cluster's members could not be listed: " + listErr.Error()})
	}
	timeout := time.NewTimer(peerLogsTimeout)
	defer timeout.Stop()
	for _, ps := range peers {
		select {
		case <-ps.done:
		case <-timeout.C:
			timeout.Reset(0)
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-ps.done:
		default:
			notes = append(notes, funclog.Entry{Time: now(), Node: ps.node, Function: function, Type: entryError,
				Message: "[gateway] node " + ps.node + " could not be read: no answer within " + peerLogsTimeout.String()})
			continue
		}
		switch {
		case ps.err != nil:
			notes = append(notes, funclog.Entry{Time: now(), Node: ps.node, Function: function, Type: entryError,
				Message: "[gateway] node " + ps.node + " could not be read: " + ps.err.Error()})
		case ps.notice != "":
			notes = append(notes, funclog.Entry{Time: now(), Node: ps.node, Function: function, Type: entryNotice,
				Message: "[gateway] node " + ps.node + ": the search stopped at its bound; older lines were not read"})
		}
		entries = append(entries, ps.history...)
		ps.history = nil
	}
	for i := range entries {
		entries[i].At() // parsed once here, not at every comparison
	}
	slices.SortStableFunc(entries, func(a, b funclog.Entry) int { return a.At().Compare(b.At()) })
	if len(entries) > p.Limit {
		entries = entries[len(entries)-p.Limit:]
	}
	for _, e := range append(entries, notes...) {
		if err := out(e); err != nil {
			return err
		}
	}
	if !p.Follow {
		return nil
	}
	if err := out(funclog.Entry{Type: funclog.TypeCaughtUp}); err != nil {
		return err
	}
	// Following: members that join, or whose stream broke, are (re)started without their past.
	fp := p
	fp.Limit = 0
	lastErr := map[string]bool{}
	rescan := time.NewTicker(followRescan)
	defer rescan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case rec, ok := <-sub:
			if !ok {
				return nil
			}
			l, ok := funclog.Parse(rec)
			if !ok || !p.Matches(l) {
				continue
			}
			if err := out(l.Entry(c.self, function)); err != nil {
				return err
			}
		case e := <-live:
			// A node that stays down is said once per failure, not at every retry.
			if e.Type == entryError {
				if lastErr[e.Node] {
					continue
				}
				lastErr[e.Node] = true
			} else {
				delete(lastErr, e.Node)
			}
			if err := out(e); err != nil {
				return err
			}
		case <-rescan.C:
			if c.node == nil {
				continue
			}
			members, err := c.node.Members()
			if err != nil {
				continue
			}
			for _, m := range members {
				smu.Lock()
				on := streaming[m.ID]
				smu.Unlock()
				if m.ID != c.node.ID() && !on {
					start(m, fp, true)
				}
			}
		}
	}
}

// readPeer reads one peer's answer: its past lines into ps.history until the marker, then its
// followed lines to live. A failure after the past was read (or with no ps) is reported on live.
func (c *clusterLogs) readPeer(ctx context.Context, m cluster.Member, function string, p funclog.Params, ps *peerStream, live chan<- funclog.Entry) {
	inHistory := true
	fail := func(err error) {
		if inHistory && ps != nil {
			ps.err = err
			close(ps.done)
			return
		}
		e := funclog.Entry{Time: time.Now().UTC().Format(time.RFC3339Nano), Node: m.ID, Function: function, Type: entryError,
			Message: "[gateway] node " + m.ID + " stopped answering (retrying): " + err.Error()}
		select {
		case live <- e:
		case <-ctx.Done():
		}
	}
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	if !p.Follow {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(hctx, peerLogsTimeout)
		defer cancel()
	}
	body, err := c.node.Get(hctx, m.Address, "logs/"+url.PathEscape(function)+"?"+p.Values().Encode())
	if err != nil {
		fail(err)
		return
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxEntryBytes)
	for sc.Scan() {
		var e funclog.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fail(fmt.Errorf("reading its answer: %w", err))
			return
		}
		e.Node, e.Function = m.ID, function // as this node knows it, whatever the peer says
		if inHistory {
			if e.Type == typeHistoryEnd {
				inHistory = false
				if ps != nil {
					ps.notice = e.Message
					close(ps.done)
				}
				continue
			}
			if ps != nil && len(ps.history) < p.Limit {
				ps.history = append(ps.history, e)
			}
			continue
		}
		select {
		case live <- e:
		case <-ctx.Done():
			return
		}
	}
	if ctx.Err() != nil {
		if inHistory && ps != nil {
			fail(ctx.Err())
		}
		return
	}
	err = sc.Err()
	if err == nil {
		if !inHistory && !p.Follow {
			return
		}
		err = fmt.Errorf("its answer ended early")
	}
	fail(err)
}
