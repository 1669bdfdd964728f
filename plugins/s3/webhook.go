package main

// Webhook mode: the HTTP handler the store POSTs notifications to, and the runner delivering a
// mapping's journal.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// maxNotification is the largest notification document taken.
const maxNotification = 10 << 20

// errNotReady: no SetMappings yet, so where notifications go is unknown.
var errNotReady = errors.New("the s3 trigger has no mappings yet")

// ServeHTTP takes a notification: POST, any path. GET answers 200 (a health check).
func (s *source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	token, enc := s.token, s.keyEncoding
	s.mu.RUnlock()
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		w.WriteHeader(http.StatusOK)
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST, GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case !s.authorized(r, token):
		s.logger.Warn("refused a notification without the webhook token", "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxNotification+1))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxNotification {
		http.Error(w, "notification too large", http.StatusRequestEntityTooLarge)
		return
	}
	received := time.Now()
	notes, err := parseNotifications(body, enc, received)
	if errors.Is(err, errTestEvent) {
		s.logger.Debug("got the store's test event", "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusOK)
		return
	}
	if err != nil {
		s.logger.Warn("refused a notification", "remote", r.RemoteAddr, "error", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.route(notes, received); err != nil {
		if errors.Is(err, errNotReady) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if errors.Is(err, errNotHere) {
			s.logger.Warn("refused a notification for a bucket no trigger of this node reads (in a cluster, point the store at the node running the trigger, or a balancer that retries)", "error", err)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		s.logger.Error("could not keep a notification", "error", err)
		http.Error(w, "could not keep the notification", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// route journals each notification in every webhook mapping it matches, and wakes them.
func (s *source) route(notes []notification, received time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.mappingsSet {
		return errNotReady
	}
	matched, known := 0, false
	for _, r := range s.hooks {
		var recs []json.RawMessage
		for _, n := range notes {
			if n.Bucket != r.d.m.Source {
				continue
			}
			known = true
			if !r.d.st.filter.matches(n) {
				continue
			}
			if n.Sequencer == "" {
				n.Sequencer = pollSequencer(n.Key, received)
			}
			b, err := json.Marshal(n.record(r.configurationID(), r.region))
			if err != nil {
				return err
			}
			recs = append(recs, b)
		}
		if len(recs) == 0 {
			continue
		}
		if err := r.j.append(recs, received); err != nil {
			return fmt.Errorf("mapping %s: %w", r.d.m.UUID, err)
		}
		matched += len(recs)
		r.wake()
	}
	if !known {
		// Not this node's: in a cluster each trigger runs on one node. Saying so (503) rather
		// than taking it lets a store or balancer that retries find the node that runs it,
		// instead of the notification being lost here.
		return fmt.Errorf("%w: %s", errNotHere, notes[0].Bucket)
	}
	if matched == 0 {
		s.logger.Trace("a notification matched no mapping's filters", "bucket", notes[0].Bucket, "key", notes[0].Key, "event", notes[0].EventName)
	}
	return nil
}

// errNotHere is a notification for a bucket no webhook trigger of this node reads.
var errNotHere = errors.New("no webhook trigger of this node reads bucket")

// webhookRunner delivers a webhook mapping's journal, in order.
type webhookRunner struct {
	trigger.Base
	d      *deliverer
	j      *journal
	region string
	wakeCh chan struct{}
}

func newWebhookRunner(d *deliverer, j *journal, region string) *webhookRunner {
	return &webhookRunner{d: d, j: j, region: region, wakeCh: make(chan struct{}, 1)}
}

func (r *webhookRunner) configurationID() string {
	if r.d.m.Name != "" {
		return r.d.m.Name
	}
	return r.d.m.UUID
}

func (r *webhookRunner) wake() {
	select {
	case r.wakeCh <- struct{}{}:
	default:
	}
}

// start runs the mapping under parent until stop; it has nothing to set up first.
func (r *webhookRunner) start(parent context.Context) {
	trigger.Start(&r.Base, r.d.m, parent, parent, trigger.Setup[struct{}]{
		Logger: r.d.logger,
		Run:    func(ctx context.Context, _ struct{}, _ bool) { r.run(ctx) },
	})
}

// stop stops the mapping and waits until it has stopped.
func (r *webhookRunner) stop() {
	r.Stop()
	r.Wait()
}

func (r *webhookRunner) run(ctx context.Context) {
	defer func() {
		if err := r.j.close(); err != nil {
			r.d.logger.Warn("closing the journal", "error", err)
		}
	}()
	size := r.d.st.batchSize
	for {
		entries := r.j.peek(size)
		if len(entries) == 0 {
			select {
			case <-r.wakeCh:
				continue
			case <-ctx.Done():
				return
			}
		}
		if len(entries) < size && r.d.st.window > 0 {
			if !r.gather(ctx, size) {
				return
			}
			entries = r.j.peek(size)
		}
		items := make([]*item, len(entries))
		ids := make([]uint64, len(entries))
		for i, e := range entries {
			items[i] = &item{id: sequencerOf(e), record: e.Record, received: e.Received}
			ids[i] = e.ID
		}
		if err := r.d.deliver(ctx, items); err != nil {
			return // stopping: the entries stay for the next run
		}
		if err := r.j.done(ids); err != nil {
			// Delivered, but the journal may still hold them: they would be delivered again
			// after a restart (at least once).
			r.d.logger.Error("could not remove delivered records from the journal", "error", err)
			r.SetErr(err)
			continue
		}
		r.SetErr(nil)
	}
}

// gather waits until the journal holds a full batch or the batch window has passed.
func (r *webhookRunner) gather(ctx context.Context, size int) bool {
	t := time.NewTimer(r.d.st.window)
	defer t.Stop()
	for r.j.len() < size {
		select {
		case <-r.wakeCh:
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// sequencerOf is an entry's item id: its record's sequencer, or its journal id when the store
// gave none.
func sequencerOf(e *entry) string {
	var rec struct {
		S3 struct {
			Object struct {
				Sequencer string `json:"sequencer"`
			} `json:"object"`
		} `json:"s3"`
	}
	if json.Unmarshal(e.Record, &rec) == nil && rec.S3.Object.Sequencer != "" {
		return rec.S3.Object.Sequencer
	}
	return strconv.FormatUint(e.ID, 10)
}
