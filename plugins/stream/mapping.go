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

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natssource"
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
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
	trigger.Base
	m      sdk.Mapping
	st     settings
	host   sdk.Host
	js     jetstream.JetStream
	region string
	arn    string
	logger hclog.Logger

	mu       sync.Mutex
	problems map[int]string // by shard; the Base's message is the mapping's own problem
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

func newRunner(env natssource.Env, m sdk.Mapping, logger hclog.Logger) *mapping {
	return &mapping{m: m, host: env.Host, js: env.Conn.JS, region: env.Conn.Region, arn: streamARN(env.Conn.Region, m.Source),
		logger:   logger.Named("mapping").With("mapping", m.UUID, "stream", m.Source, "function", m.Function),
		problems: map[int]string{}}
}

// Start sets the mapping up (one attempt, bounded by setupCtx) and runs it under parent until
// Stop. The first attempt is made before Start returns, so that a LATEST mapping starts reading
// when SetMappings gives it.
func (mp *mapping) Start(setupCtx, parent context.Context) {
	trigger.Start(&mp.Base, mp.m, setupCtx, parent, trigger.Setup[*plan]{
		Logger: mp.logger,
		Check: func() (err error) {
			if mp.st, err = mappingSettings(mp.m); err != nil {
				return err
			}
			return natsstream.Validate(mp.m.Source)
		},
		SetUp: mp.setup,
		Run:   func(ctx context.Context, p *plan, _ bool) { mp.run(ctx, p) },
	})
}

// run sets the mapping up until it is, runs the shard workers, and sets it up again if the
// stream goes away, until ctx ends.
func (mp *mapping) run(ctx context.Context, p *plan) {
	for ctx.Err() == nil {
		if p == nil {
			var ok bool
			if p, ok = trigger.SetUpAgain(ctx, &mp.Base, mp.logger, maxSetupBackoff, mp.setup); !ok {
				break
			}
		}
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
					mp.SetStatus(sdk.StateError, err.Error())
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

// Status is the mapping's own state, or an error when a shard has a problem.
func (mp *mapping) Status() sdk.MappingStatus {
	st := mp.Base.Status()
	mp.mu.Lock()
	defer mp.mu.Unlock()
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
