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

// freezeHookDriver wraps a real driver; its instances' Freeze is freeze, given the real instance.
// It stands in for freezes that cannot be made to fail on demand. Everything else is the real
// driver's.
type freezeHookDriver struct {
	sandbox.Driver
	freeze func(ctx context.Context, real sandbox.Instance) error
}

func (d *freezeHookDriver) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Instance, error) {
	inst, err := d.Driver.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &freezeHookInstance{Instance: inst, d: d}, nil
}

type freezeHookInstance struct {
	sandbox.Instance
	d *freezeHookDriver
}

func (i *freezeHookInstance) Freeze(ctx context.Context) error { return i.d.freeze(ctx, i.Instance) }

// TestInvocationCancelsAFreezeInProgress: an invocation that finds its environment being frozen
// rolls the freeze back at once instead of waiting for it to finish (or, here, to time out).
func TestInvocationCancelsAFreezeInProgress(t *testing.T) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			// A freeze that never completes by itself, as with a cgroup held in FREEZING by a task
			// in uninterruptible sleep: only its context ends it.
			started, ended := make(chan struct{}, 8), make(chan error, 8)
			h := newHarness(t, &freezeHookDriver{Driver: dc.new(t), freeze: func(ctx context.Context, _ sandbox.Instance) error {
				started <- struct{}{}
				<-ctx.Done()
				ended <- ctx.Err()
				return fmt.Errorf("freezing: %w", ctx.Err())
			}}, nil)
			fn := testFunction("stuckfreeze", nil) // freeze_delay 0s

			callFn(t, h, fn, `{"mode":"hello","name":"one"}`)
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the environment was not frozen after the invocation")
			}
			resp := callFn(t, h, fn, `{"mode":"hello","name":"two"}`)
			if resp.FunctionError {
				t.Fatalf("second invocation failed: %s", resp.Payload)
			}
			if got := decode(t, resp.Payload)["message"]; got != "Hello, two!" {
				t.Fatalf("second invocation answered %v", got)
			}
			select {
			case err := <-ended:
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

// TestStuckFrozenEnvironmentIsThawedBeforeUse: an environment whose freeze failed in a way the
// driver could not undo is treated as frozen, so the next invocation thaws it first.
func TestStuckFrozenEnvironmentIsThawedBeforeUse(t *testing.T) {
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			// The real freeze, then a report that it could not be undone, as when writing THAWED
			// back failed.
			frozen := make(chan struct{}, 8)
			h := newHarness(t, &freezeHookDriver{Driver: dc.new(t), freeze: func(ctx context.Context, real sandbox.Instance) error {
				if err := real.Freeze(ctx); err != nil {
					return err
				}
				frozen <- struct{}{}
				return fmt.Errorf("freezing: thawing it back failed: %w", sandbox.ErrStuckFrozen)
			}}, nil)
			fn := testFunction("stuckfrozen", func(f *structs.Function) { f.Timeout = 3 * time.Second }) // freeze_delay 0s
			for _, name := range []string{"one", "two", "three"} {
				resp := callFn(t, h, fn, `{"mode":"hello","name":"`+name+`"}`)
				if got := decode(t, resp.Payload)["message"]; got != "Hello, "+name+"!" {
					t.Fatalf("invocation %s answered %s (a frozen environment was not thawed?)", name, resp.Payload)
				}
				select {
				case <-frozen:
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
