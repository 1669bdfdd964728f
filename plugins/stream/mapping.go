package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/internal/natsstream"
	"github.com/lambdagw/gateway/plugins/sdk"
)

const (
	// setupTimeout bounds one attempt at setting a mapping up.
	setupTimeout = 10 * time.Second
	// maxSetupBackoff bounds the wait between attempts at setting a mapping up.
	maxSetupBackoff = 30 * time.Second
)

// errStreamGone means the mapping's stream no longer exists: the mapping is set up again.
var errStreamGone = errors.New("the stream is gone")

// mapping runs one event source mapping: a worker per shard of its stream.
type mapping struct {
	m      sdk.Mapping
	st     settings
	host   sdk.Host
	js     jetstream.JetStream
	region string
	arn    string
	logger hclog.Logger

	cancel context.CancelFunc
	done   chan struct{} // closed when every goroutine of the mapping has ended

	mu       sync.Mutex
	state    string
	message  string         // the mapping's own problem (setting it up), or ""
	problems map[int]string // by shard
}

// plan is what a set-up mapping runs: the stream's shards, the checkpoints and where each
// shard starts reading.
type plan struct {
	shards int
	kv     jetstream.KeyValue
	starts []start
}

// start is where a shard starts reading, and its checkpoint.
type start struct {
	checkpoint uint64 // the last sequence done (0: none)
	// position is the starting position when the shard has no checkpoint: sdk.TrimHorizon or
	// sdk.AtTimestamp; "" to read after checkpoint.
	position string
}

func (s *source) newMapping(m sdk.Mapping) *mapping {
	return &mapping{m: m, host: s.host, js: s.js, region: s.region, arn: streamARN(s.region, m.Source),
		logger: s.logger.Named("mapping").With("mapping", m.UUID, "stream", m.Source, "function", m.Function),
		cancel: func() {}, done: make(chan struct{}), problems: map[int]string{}}
}

// Start sets the mapping up (one attempt, bounded by setupCtx) and runs it under parent until
// cancel. The first attempt is made before start returns, so that a LATEST mapping starts
// reading when SetMappings gives it.
func (mp *mapping) Start(setupCtx, parent context.Context) {
	if !mp.m.Enabled {
		mp.setStatus(sdk.StateOK, "disabled")
		close(mp.done)
		return
	}
	st, err := mappingSettings(mp.m)
	if err == nil {
		err = natsstream.Validate(mp.m.Source)
	}
	if err != nil {
		mp.setStatus(sdk.StateError, err.Error())
		mp.logger.Error("the mapping cannot run", "error", err)
		close(mp.done)
		return
	}
	mp.st = st
	ctx, cancel := context.WithCancel(parent)
	mp.cancel = cancel
	p, err := mp.setup(setupCtx)
	if err != nil {
		mp.setStatus(sdk.StateError, err.Error())
		mp.logger.Warn("cannot set the mapping up yet; retrying", "error", err)
	} else {
		mp.setStatus(sdk.StateOK, "")
	}
	go mp.run(ctx, p)
}

// run sets the mapping up until it is, runs the shard workers, and sets it up again if the
// stream goes away, until ctx ends.
func (mp *mapping) run(ctx context.Context, p *plan) {
	defer close(mp.done)
	backoff := time.Second
	for ctx.Err() == nil {
		if p == nil {
			if !sleep(ctx, backoff) {
				break
			}
			backoff = min(2*backoff, maxSetupBackoff)
			var err error
			if p, err = mp.setup(ctx); err != nil {
				mp.setStatus(sdk.StateError, err.Error())
				mp.logger.Warn("cannot set the mapping up", "error", err)
				continue
			}
			mp.setStatus(sdk.StateOK, "")
		}
		backoff = time.Second
		mp.logger.Info("reading the stream", "shards", p.shards, "batch_size", mp.st.batchSize,
			"batch_window", mp.st.window, "starting_position", mp.st.position)
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := 0; i < p.shards; i++ {
			w := mp.newShard(i, p.kv, p.starts[i])
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.run(wctx); errors.Is(err, errStreamGone) {
					mp.setStatus(sdk.StateError, err.Error())
					stop()
				}
			}()
		}
		wg.Wait()
		stop()
		p = nil
		mp.clearProblems()
	}
	mp.logger.Info("mapping stopped")
}

// setup makes sure the stream and the checkpoint bucket exist and finds where each shard
// starts: after its checkpoint, or at the starting position. For LATEST, the stream's last
// sequence becomes the checkpoint of every shard without one, now.
func (mp *mapping) setup(ctx context.Context) (*plan, error) {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	shards, err := natsstream.Ensure(ctx, mp.js, mp.m.Source, mp.st.shards)
	if err != nil {
		return nil, err
	}
	s, err := mp.js.Stream(ctx, natsstream.StreamName(mp.m.Source))
	if err != nil {
		return nil, fmt.Errorf("looking up stream %s: %w", mp.m.Source, err)
	}
	last := s.CachedInfo().State.LastSeq
	kv, err := natsstream.Checkpoints(ctx, mp.js)
	if err != nil {
		return nil, err
	}
	p := &plan{shards: shards, kv: kv, starts: make([]start, shards)}
	for i := range p.starts {
		cp, ok, err := natsstream.LoadCheckpoint(ctx, kv, mp.m.UUID, i)
		if err != nil {
			return nil, err
		}
		if ok && cp > last {
			// Sequences only grow: the stream was deleted and made anew since.
			mp.logger.Warn("the checkpoint is past the stream's end (the stream was made anew); starting over",
				"shard", natsstream.ShardID(i), "checkpoint", cp, "last_sequence", last)
			ok = false
		}
		switch {
		case ok:
			p.starts[i] = start{checkpoint: cp}
		case mp.st.position == sdk.Latest:
			if err := natsstream.SaveCheckpoint(ctx, kv, mp.m.UUID, i, last); err != nil {
				return nil, err
			}
			p.starts[i] = start{checkpoint: last}
		default:
			p.starts[i] = start{position: mp.st.position}
		}
	}
	return p, nil
}

func (mp *mapping) setStatus(state, msg string) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	mp.state, mp.message = state, msg
}

// setProblem records what goes wrong on a shard ("" when it goes well again).
func (mp *mapping) setProblem(shard int, msg string) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	if msg == "" {
		delete(mp.problems, shard)
	} else {
		mp.problems[shard] = msg
	}
}

func (mp *mapping) clearProblems() {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	mp.problems = map[int]string{}
}

// Stop asks the mapping's work to end; Wait returns once it has.
func (mp *mapping) Stop() { mp.cancel() }
func (mp *mapping) Wait() { <-mp.done }

// Status is the mapping's own state, or an error when a shard has a problem.
func (mp *mapping) Status() sdk.MappingStatus {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	st := sdk.MappingStatus{UUID: mp.m.UUID, State: mp.state, Message: mp.message}
	if st.State == sdk.StateOK && len(mp.problems) > 0 {
		shards := make([]int, 0, len(mp.problems))
		for i := range mp.problems {
			shards = append(shards, i)
		}
		sort.Ints(shards)
		st.State = sdk.StateError
		st.Message = natsstream.ShardID(shards[0]) + ": " + mp.problems[shards[0]]
		if len(shards) > 1 {
			st.Message += fmt.Sprintf(" (and %d more shards in trouble)", len(shards)-1)
		}
	}
	return st
}

func (mp *mapping) executedVersion() string {
	if mp.m.Qualifier != "" {
		return mp.m.Qualifier
	}
	return "$LATEST"
}

// sleep waits d or until ctx ends; false if it ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
