package gateway

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// The event invoke configuration operations (Lambda's 2019-09-25 API): how asynchronous
// invocations of a function's qualifier are retried, how long they may wait, and where their
// outcome goes. Each configuration is stored apart from the function, as a function URL is, so
// changing it never replaces the function's environments; gateway/async.go reads it as each
// event runs.

// maxEventConfigsPage is the most ListFunctionEventInvokeConfigs answers at once, as Lambda.
const maxEventConfigsPage = 50

// eventConfigTarget finds the function and qualifier an operation names: a qualifier in the
// name or apart (not two different ones), "$LATEST" when none; a version or an alias must
// exist.
func (g *Gateway) eventConfigTarget(nameOrARN, qualifier string) (*structs.Function, string, error) {
	name, q, err := lambda.ParseFunctionName(nameOrARN)
	if err != nil {
		return nil, "", err
	}
	if qualifier != "" && q != "" && qualifier != q {
		return nil, "", lambda.InvalidParameter("the qualifier %q differs from the one in the function name (%q)", qualifier, q)
	}
	qualifier = cmp.Or(qualifier, q, structs.LatestVersion)
	fn, ok := g.cfg.Store.Function(name)
	if !ok {
		return nil, "", lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, name, qualifier))
	}
	if qualifier != structs.LatestVersion {
		if _, err := g.qualifierTarget(fn.Name, qualifier); err != nil {
			return nil, "", err
		}
	}
	return fn, qualifier, nil
}

// noEventConfig is Lambda's answer for a qualifier without a configuration.
func (g *Gateway) noEventConfig(fn, qualifier string) error {
	return lambda.ResourceNotFound("The function %s doesn't have an EventInvokeConfig", lambda.FunctionARN(g.cfg.Region, fn, qualifier))
}

// applyEventInput sets c's fields from in: those given (an Update), or all of them (a Put of a
// new, empty c); a destination given empty removes it. It applies the rules of
// internal/structs, the ones function files obey too.
func applyEventInput(c *structs.EventInvokeConfig, in *lambda.EventInvokeConfigInput) error {
	var errs []structs.FieldError
	if n := in.MaximumRetryAttempts; n != nil {
		v := *n
		c.MaximumRetryAttempts = &v
	}
	if s := in.MaximumEventAgeInSeconds; s != nil {
		// Bounded first, so an absurd number cannot wrap around into the valid range.
		c.MaximumEventAge = time.Duration(min(max(*s, -1<<31), 1<<31)) * time.Second
		if *s == 0 { // 0 stands for the default in the stored configuration; given, it is out of range
			errs = append(errs, structs.ValidateEventAge(0)...)
		}
	}
	if dc := in.DestinationConfig; dc != nil {
		for _, d := range []struct {
			field   string
			from    *lambda.Destination
			to, arn *string
		}{
			{"DestinationConfig.OnSuccess.Destination", dc.OnSuccess, &c.OnSuccess, &c.OnSuccessARN},
			{"DestinationConfig.OnFailure.Destination", dc.OnFailure, &c.OnFailure, &c.OnFailureARN},
		} {
			if d.from == nil {
				continue
			}
			*d.to, *d.arn = "", ""
			if d.from.Destination == "" {
				continue
			}
			dest, err := lambda.ParseDestinationARN(d.from.Destination)
			if err != nil {
				return lambda.InvalidParameter("%s: %v", d.field, err)
			}
			*d.to, *d.arn = dest, d.from.Destination
		}
	}
	return lambda.InvalidFields(append(errs, c.Check()...))
}

// PutFunctionEventInvokeConfig replaces the configuration of a function's qualifier: what in
// leaves out is removed, as Lambda's Put does.
func (g *Gateway) PutFunctionEventInvokeConfig(ctx context.Context, name, qualifier string, in *lambda.EventInvokeConfigInput) (*lambda.FunctionEventInvokeConfig, error) {
	fn, q, err := g.eventConfigTarget(name, qualifier)
	if err != nil {
		return nil, err
	}
	c := &structs.EventInvokeConfig{Function: fn.Name, Qualifier: q}
	if err := applyEventInput(c, in); err != nil {
		return nil, err
	}
	return g.putEventConfig(ctx, c, false)
}

// UpdateFunctionEventInvokeConfig changes the fields of in that are given in an existing
// configuration.
func (g *Gateway) UpdateFunctionEventInvokeConfig(ctx context.Context, name, qualifier string, in *lambda.EventInvokeConfigInput) (*lambda.FunctionEventInvokeConfig, error) {
	cur, err := g.storedEventConfig(name, qualifier)
	if err != nil {
		return nil, err
	}
	c := cur.Copy()
	if err := applyEventInput(c, in); err != nil {
		return nil, err
	}
	return g.putEventConfig(ctx, c, true)
}

func (g *Gateway) putEventConfig(ctx context.Context, c *structs.EventInvokeConfig, update bool) (*lambda.FunctionEventInvokeConfig, error) {
	if err := g.checkDestination("DestinationConfig.OnSuccess.Destination", c.OnSuccess); err != nil {
		return nil, err
	}
	if err := g.checkDestination("DestinationConfig.OnFailure.Destination", c.OnFailure); err != nil {
		return nil, err
	}
	c.LastModified = time.Now().UTC().Truncate(time.Millisecond)
	stored, err := g.cfg.Store.PutEventInvokeConfig(ctx, c, update)
	if err != nil {
		return nil, g.eventConfigStoreError(c.Function, c.Qualifier, err)
	}
	out := lambda.EventInvokeConfigFrom(stored, g.cfg.Region)
	return &out, nil
}

// GetFunctionEventInvokeConfig describes the configuration of a function's qualifier.
func (g *Gateway) GetFunctionEventInvokeConfig(name, qualifier string) (*lambda.FunctionEventInvokeConfig, error) {
	c, err := g.storedEventConfig(name, qualifier)
	if err != nil {
		return nil, err
	}
	out := lambda.EventInvokeConfigFrom(c, g.cfg.Region)
	return &out, nil
}

// storedEventConfig is the stored configuration an operation names.
func (g *Gateway) storedEventConfig(name, qualifier string) (*structs.EventInvokeConfig, error) {
	fn, q, err := g.eventConfigTarget(name, qualifier)
	if err != nil {
		return nil, err
	}
	c, ok := g.cfg.Store.EventInvokeConfig(fn.Name, q)
	if !ok {
		return nil, g.noEventConfig(fn.Name, q)
	}
	return c, nil
}

// DeleteFunctionEventInvokeConfig removes the configuration of a function's qualifier: its
// events then run with Lambda's defaults.
func (g *Gateway) DeleteFunctionEventInvokeConfig(ctx context.Context, name, qualifier string) error {
	c, err := g.storedEventConfig(name, qualifier)
	if err != nil {
		return err
	}
	if err := g.cfg.Store.DeleteEventInvokeConfig(ctx, c.Function, c.Qualifier); err != nil {
		return g.eventConfigStoreError(c.Function, c.Qualifier, err)
	}
	return nil
}

// ListFunctionEventInvokeConfigs pages through a function's configurations by qualifier;
// marker is the previous page's NextMarker.
func (g *Gateway) ListFunctionEventInvokeConfigs(name, marker string, maxItems int) (*lambda.ListFunctionEventInvokeConfigsOutput, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if maxItems <= 0 || maxItems > maxEventConfigsPage {
		maxItems = maxEventConfigsPage
	}
	after := ""
	if marker != "" {
		after = markerName(marker)
	}
	out := &lambda.ListFunctionEventInvokeConfigsOutput{FunctionEventInvokeConfigs: []lambda.FunctionEventInvokeConfig{}}
	last := ""
	for _, c := range g.cfg.Store.EventInvokeConfigs(fn.Name) {
		if after != "" && c.Qualifier <= after {
			continue
		}
		if len(out.FunctionEventInvokeConfigs) == maxItems {
			next := encodeMarker(last)
			out.NextMarker = &next
			break
		}
		out.FunctionEventInvokeConfigs = append(out.FunctionEventInvokeConfigs, lambda.EventInvokeConfigFrom(c, g.cfg.Region))
		last = c.Qualifier
	}
	return out, nil
}

// eventConfigStoreError maps a write's error: a function, qualifier or configuration that went
// away meanwhile is not found, as it would be now.
func (g *Gateway) eventConfigStoreError(fn, qualifier string, err error) error {
	se := g.cfg.StoreErrors
	if se.NotFound != nil && errors.Is(err, se.NotFound) {
		if _, _, terr := g.eventConfigTarget(fn, qualifier); terr != nil {
			return terr
		}
		return g.noEventConfig(fn, qualifier)
	}
	return g.storeError(fn, err)
}

// deadLetterTarget maps a DeadLetterConfig to a function's DeadLetterTarget: "" removes it;
// the queue, stream or plugin target its ARN names otherwise (Function.Validate says which
// targets are valid).
func (g *Gateway) deadLetterTarget(dc *lambda.DeadLetterConfig) (string, error) {
	if dc.TargetArn == "" {
		return "", nil
	}
	target, err := lambda.ParseDestinationARN(dc.TargetArn)
	if err != nil {
		return "", lambda.InvalidParameter("DeadLetterConfig.TargetArn: %v", err)
	}
	return target, g.checkDestination("DeadLetterConfig.TargetArn", target)
}
