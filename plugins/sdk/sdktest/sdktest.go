// Package sdktest runs a plugin in-process behind go-plugin's real gRPC transport, so a plugin's
// tests see it as the gateway does, and gives a recording Host to deliver to.
package sdktest

import (
	"context"
	"sync"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// Trigger serves impl over gRPC and returns the host's client of it. The connection closes
// when the test ends.
func Trigger(t testing.TB, impl sdk.TriggerSource) *sdk.TriggerClient {
	t.Helper()
	c, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{sdk.TriggerPluginName: &sdk.TriggerPlugin{Impl: impl}})
	t.Cleanup(func() { _ = c.Close() })
	raw, err := c.Dispense(sdk.TriggerPluginName)
	if err != nil {
		t.Fatalf("dispensing the trigger: %v", err)
	}
	return raw.(*sdk.TriggerClient)
}

// Extension serves impl over gRPC and returns the host's client of it.
func Extension(t testing.TB, impl sdk.Extension) *sdk.ExtensionClient {
	t.Helper()
	c, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{sdk.ExtensionPluginName: &sdk.ExtensionPlugin{Impl: impl}})
	t.Cleanup(func() { _ = c.Close() })
	raw, err := c.Dispense(sdk.ExtensionPluginName)
	if err != nil {
		t.Fatalf("dispensing the extension: %v", err)
	}
	return raw.(*sdk.ExtensionClient)
}

// Host records what a trigger delivers. Result decides each batch's result (Success when nil).
type Host struct {
	Result func(sdk.Batch) sdk.BatchResult

	mu       sync.Mutex
	batches  []sdk.Batch
	failures []Failure
	notify   chan struct{}
}

// Failure is a record sent to an on-failure destination.
type Failure struct {
	MappingUUID string
	Record      []byte
}

// Deliver records b and answers with Result.
func (h *Host) Deliver(_ context.Context, b sdk.Batch) (sdk.BatchResult, error) {
	r := sdk.BatchResult{}
	if h.Result != nil {
		r = h.Result(b)
	}
	h.mu.Lock()
	h.batches = append(h.batches, b)
	h.mu.Unlock()
	h.poke()
	return r, nil
}

// SendOnFailure records the record.
func (h *Host) SendOnFailure(_ context.Context, uuid string, record []byte) error {
	h.mu.Lock()
	h.failures = append(h.failures, Failure{uuid, record})
	h.mu.Unlock()
	h.poke()
	return nil
}

func (h *Host) poke() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.notify != nil {
		close(h.notify)
		h.notify = nil
	}
}

// Batches returns the batches delivered so far.
func (h *Host) Batches() []sdk.Batch {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sdk.Batch(nil), h.batches...)
}

// Failures returns the on-failure records sent so far.
func (h *Host) Failures() []Failure {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Failure(nil), h.failures...)
}

// Wait waits until cond holds (checked after each delivery or failure) or ctx ends.
func (h *Host) Wait(ctx context.Context, cond func(h *Host) bool) error {
	for {
		h.mu.Lock()
		if h.notify == nil {
			h.notify = make(chan struct{})
		}
		ch := h.notify
		h.mu.Unlock()
		if cond(h) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
