package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// stuckFreezeDriver wraps a real driver. Its instances' Freeze never completes by itself, as
// with a cgroup held in FREEZING by a task in uninterruptible sleep, which cannot be made to
// happen on demand; only the context ends it. Everything else is the real driver's.
type stuckFreezeDriver struct {
	sandbox.Driver
	started chan struct{} // a Freeze began
	ended   chan error    // why a Freeze ended
}

func (d *stuckFreezeDriver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	inst, err := d.Driver.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &stuckFreezeInstance{Instance: inst, d: d}, nil
}

type stuckFreezeInstance struct {
	sandbox.Instance
	d *stuckFreezeDriver
}

func (i *stuckFreezeInstance) Freeze(ctx context.Context) error {
	i.d.started <- struct{}{}
	<-ctx.Done()
	i.d.ended <- ctx.Err()
	return fmt.Errorf("freezing: %w", ctx.Err())
}

// TestInvocationCancelsAFreezeInProgress: an invocation that finds its environment being frozen
// rolls the freeze back at once instead of waiting for it to finish (or, here, to time out).
func TestInvocationCancelsAFreezeInProgress(t *testing.T) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			d := &stuckFreezeDriver{Driver: dc.new(t), started: make(chan struct{}, 8), ended: make(chan error, 8)}
			h := newHarness(t, d, nil)
			fn := testFunction("stuckfreeze", nil) // freeze_delay 0s

			invoke(t, h, fn, `{"mode":"hello","name":"one"}`)
			select {
			case <-d.started:
			case <-time.After(10 * time.Second):
				t.Fatal("the environment was not frozen after the invocation")
			}
			resp := invoke(t, h, fn, `{"mode":"hello","name":"two"}`)
			if resp.FunctionError {
				t.Fatalf("second invocation failed: %s", resp.Payload)
			}
			if got := decode(t, resp.Payload)["message"]; got != "Hello, two!" {
				t.Fatalf("second invocation answered %v", got)
			}
			select {
			case err := <-d.ended:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("the freeze in progress ended with %v, want it cancelled by the invocation", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the freeze in progress never ended")
			}
			if st := h.m.Stats(); st.Environments != 1 {
				t.Fatalf("%d environments, want the one reused", st.Environments)
			}
		})
	}
}

// stuckFrozenDriver wraps a real driver whose instances' Freeze freezes the environment but then
// reports that it could not be undone (sandbox.ErrStuckFrozen), as when writing THAWED back fails.
type stuckFrozenDriver struct {
	sandbox.Driver
	frozen chan struct{} // a Freeze froze the environment
}

func (d *stuckFrozenDriver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	inst, err := d.Driver.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &stuckFrozenInstance{Instance: inst, d: d}, nil
}

type stuckFrozenInstance struct {
	sandbox.Instance
	d *stuckFrozenDriver
}

func (i *stuckFrozenInstance) Freeze(ctx context.Context) error {
	if err := i.Instance.Freeze(ctx); err != nil {
		return err
	}
	i.d.frozen <- struct{}{}
	return fmt.Errorf("freezing: thawing it back failed: %w", sandbox.ErrStuckFrozen)
}

// TestStuckFrozenEnvironmentIsThawedBeforeUse: an environment whose freeze failed in a way the
// driver could not undo is treated as frozen, so the next invocation thaws it first.
func TestStuckFrozenEnvironmentIsThawedBeforeUse(t *testing.T) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			d := &stuckFrozenDriver{Driver: dc.new(t), frozen: make(chan struct{}, 8)}
			h := newHarness(t, d, nil)
			fn := testFunction("stuckfrozen", func(f *structs.Function) { f.Timeout = 3 * time.Second }) // freeze_delay 0s
			for _, name := range []string{"one", "two", "three"} {
				resp := invoke(t, h, fn, `{"mode":"hello","name":"`+name+`"}`)
				if got := decode(t, resp.Payload)["message"]; got != "Hello, "+name+"!" {
					t.Fatalf("invocation %s answered %s (a frozen environment was not thawed?)", name, resp.Payload)
				}
				select {
				case <-d.frozen:
				case <-time.After(10 * time.Second):
					t.Fatal("the environment was not frozen after the invocation")
				}
			}
			if st := h.m.Stats(); st.Environments != 1 {
				t.Fatalf("%d environments, want the one reused", st.Environments)
			}
		})
	}
}
