package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// Triggers are event source mappings: a function's trigger blocks, each run by the trigger
// plugin it names (see internal/triggers). This file is their management API.

// PutTrigger creates or replaces a function's trigger. A new trigger gets a UUID; a replaced
// one keeps its own.
func (g *Gateway) PutTrigger(ctx context.Context, t *structs.Trigger) (*structs.Trigger, error) {
	fn, err := g.existing(t.Function)
	if err != nil {
		return nil, err
	}
	t2 := *t
	t2.Function = fn.Name
	if err := t2.Validate(); err != nil {
		return nil, lambda.InvalidParameter("%v", err)
	}
	if g.cfg.Plugins != nil && !g.cfg.Plugins.HasTrigger(t2.Plugin) {
		return nil, lambda.InvalidParameter("trigger %s: no trigger plugin %q is configured on this node (a plugin block in the agent's configuration)", t2.Name, t2.Plugin)
	}
	if q := t2.Qualifier; q != "" && q != structs.LatestVersion {
		if _, err := g.qualifierTarget(fn.Name, q); err != nil {
			return nil, err
		}
	}
	if dest, ok := strings.CutPrefix(t2.OnFailure, "function:"); ok {
		if _, err := g.existing(dest); err != nil {
			return nil, lambda.InvalidParameter("trigger %s: on_failure destination function %s does not exist", t2.Name, dest)
		}
	}
	if err := g.checkDestination("trigger "+t2.Name+": on_failure", t2.OnFailure); err != nil {
		return nil, err
	}
	if cur, ok := g.cfg.Store.Trigger(fn.Name, t2.Name); ok {
		t2.UUID = cur.UUID
	} else if t2.UUID == "" { // CreateEventSourceMapping names its trigger after the UUID it gives
		t2.UUID = uuid.NewString()
	}
	t2.LastModified = time.Now().UTC().Truncate(time.Millisecond)
	stored, err := g.cfg.Store.PutTrigger(ctx, &t2)
	if err != nil {
		return nil, g.triggerStoreError(&t2, err)
	}
	return stored, nil
}

// qualifierTarget checks that q is a version or alias of function fn.
func (g *Gateway) qualifierTarget(fn, q string) (string, error) {
	if _, ok := g.cfg.Store.Version(fn, q); ok {
		return q, nil
	}
	if a, ok := g.cfg.Store.Alias(fn, q); ok {
		return a.FunctionVersion, nil
	}
	return "", lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, fn, q))
}

// DeleteTrigger removes a function's trigger; its plugin stops it on every node.
func (g *Gateway) DeleteTrigger(ctx context.Context, function, name string) error {
	fn, err := g.existing(function)
	if err != nil {
		return err
	}
	if err := g.cfg.Store.DeleteTrigger(ctx, fn.Name, name); err != nil {
		return g.triggerStoreError(&structs.Trigger{Function: fn.Name, Name: name}, err)
	}
	return nil
}

// ListTriggers returns a function's triggers, or every function's when function is empty.
func (g *Gateway) ListTriggers(function string) ([]*structs.Trigger, error) {
	if function != "" {
		fn, err := g.existing(function)
		if err != nil {
			return nil, err
		}
		function = fn.Name
	}
	out := g.cfg.Store.Triggers(function)
	if out == nil {
		out = []*structs.Trigger{}
	}
	return out, nil
}

func (g *Gateway) triggerStoreError(t *structs.Trigger, err error) error {
	se := g.cfg.StoreErrors
	if se.NotFound != nil && errors.Is(err, se.NotFound) {
		if _, ok := g.cfg.Store.Trigger(t.Function, t.Name); !ok {
			return lambda.ResourceNotFound("Trigger not found: %s of function %s", t.Name, t.Function)
		}
	}
	return g.storeError(t.Function, err)
}
