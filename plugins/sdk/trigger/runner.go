package trigger

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// Base is what every mapping's runner (an sdk.Runner kept by an sdk.MappingSet) has: the
// mapping's state, and the lifetime of its work. A runner embeds it and calls Start from its own
// Start; Stop, Wait, Status and SetStatus then come with it. Its zero value is ready to use.
type Base struct {
	mu      sync.Mutex
	uuid    string
	state   string
	message string
	cancel  context.CancelFunc
	done    chan struct{} // closed when the runner's work has ended
}

// Setup is a runner's part of Start, P being what a successful set-up yields (a consumer, a
// plan of shards, ...).
type Setup[P any] struct {
	// Logger logs the set-up's failures.
	Logger hclog.Logger
	// Check refuses a mapping that cannot run as it is (bad settings): the mapping is in error
	// until it is changed. Nil accepts every mapping.
	Check func() error
	// SetUp is one attempt at setting the mapping up (creating what it reads, finding where it
	// starts). It is bounded by the context it is given. Nil: there is nothing to set up.
	SetUp func(context.Context) (P, error)
	// Run is the mapping's work, in its own goroutine until ctx ends (Stop, or the source's
	// parent context). It gets the first attempt's result; with ok false that attempt failed
	// (the mapping is in error) and Run sets up again, for instance with SetUpAgain.
	Run func(ctx context.Context, p P, ok bool)
}

// Start is the start-up every runner shares. A disabled mapping reports "disabled" and runs
// nothing; one that s.Check refuses is in error for good. Otherwise one attempt at s.SetUp is
// made within setupCtx before Start returns, so that SetMappings reports how the mapping fares
// (and a LATEST mapping starts reading when it is given), and s.Run goes on under parent.
func Start[P any](b *Base, m sdk.Mapping, setupCtx, parent context.Context, s Setup[P]) {
	b.mu.Lock()
	b.uuid = m.UUID
	if b.done == nil {
		b.done = make(chan struct{})
	}
	b.mu.Unlock()
	if !m.Enabled {
		b.SetStatus(sdk.StateOK, "disabled")
		close(b.done)
		return
	}
	if s.Check != nil {
		if err := s.Check(); err != nil {
			b.SetStatus(sdk.StateError, err.Error())
			s.Logger.Error("the mapping cannot run", "error", err)
			close(b.done)
			return
		}
	}
	ctx, cancel := context.WithCancel(parent)
	b.mu.Lock()
	b.cancel = cancel
	b.mu.Unlock()
	var p P
	var err error
	if s.SetUp != nil {
		p, err = s.SetUp(setupCtx)
	}
	if err != nil {
		b.SetStatus(sdk.StateError, err.Error())
		s.Logger.Warn("cannot set the mapping up yet; retrying", "error", err)
	} else {
		b.SetStatus(sdk.StateOK, "")
	}
	go func() {
		defer close(b.done)
		s.Run(ctx, p, err == nil)
	}()
}

// SetUpAgain calls setUp until it succeeds, waiting before each attempt (a second at first,
// doubling up to maxBackoff), and reports each failure in b's status. ok is false when ctx
// ended first.
func SetUpAgain[P any](ctx context.Context, b *Base, logger hclog.Logger, maxBackoff time.Duration,
	setUp func(context.Context) (P, error)) (p P, ok bool) {
	backoff := time.Second
	for Sleep(ctx, backoff) {
		backoff = min(2*backoff, maxBackoff)
		q, err := setUp(ctx)
		if err != nil {
			b.SetStatus(sdk.StateError, err.Error())
			logger.Warn("cannot set the mapping up", "error", err)
			continue
		}
		b.SetStatus(sdk.StateOK, "")
		return q, true
	}
	return p, false
}

// SetStatus sets the mapping's state (sdk.StateOK or sdk.StateError) and message.
func (b *Base) SetStatus(state, msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.message = state, msg
}

// SetErr reports err as the mapping's state: in error with its message, or OK when nil.
func (b *Base) SetErr(err error) {
	if err != nil {
		b.SetStatus(sdk.StateError, err.Error())
	} else {
		b.SetStatus(sdk.StateOK, "")
	}
}

// Status reports the mapping's state.
func (b *Base) Status() sdk.MappingStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return sdk.MappingStatus{UUID: b.uuid, State: b.state, Message: b.message}
}

// Stop asks the runner's work to end.
func (b *Base) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		b.cancel()
	}
}

// Wait returns once the runner's work has ended.
func (b *Base) Wait() { <-b.Done() }

// Done is closed once the runner's work has ended.
func (b *Base) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done == nil {
		b.done = make(chan struct{})
	}
	return b.done
}
