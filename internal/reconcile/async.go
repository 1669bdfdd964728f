package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// wireRegion is the region of the destination ARNs apply sends: the agent reads only their
// kind and name (a function, a queue, a stream), whatever its own region.
const wireRegion = "us-east-1"

// asyncChanges makes the function's event invoke configurations match its async blocks, one
// per qualifier: the file is the truth, so a configuration no block declares is deleted. Each
// is written whole (PutFunctionEventInvokeConfig replaces), so what a block leaves out is
// Lambda's default.
func asyncChanges(fn *config.Function, cur []lambda.FunctionEventInvokeConfig) ([]Change, error) {
	have := map[string]*structs.EventInvokeConfig{}
	for i := range cur {
		c, err := cur[i].Structs()
		if err != nil {
			return nil, fmt.Errorf("reading an event invoke configuration: %w", err)
		}
		have[c.Qualifier] = c
	}
	var out []Change
	for _, a := range fn.Async {
		want := a.EventInvokeConfig
		q, in := want.Qualifier, lambda.EventInvokeConfigInputFrom(&want, wireRegion)
		old, exists := have[q]
		delete(have, q)
		var text, done string
		switch {
		case !exists:
			list := " (" + asyncText(&want) + ")"
			text, done = "async "+q+" to create"+list, "async "+q+" created"+list
		default:
			diffs := asyncDiffs(old, &want)
			if len(diffs) == 0 {
				continue
			}
			list := " (" + strings.Join(diffs, ", ") + ")"
			text, done = "async "+q+" to update"+list, "async "+q+" updated"+list
		}
		out = append(out, Change{Function: fn.Name, Kind: Async, Text: text,
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if _, err := a.PutFunctionEventInvokeConfig(ctx, fn.Name, q, in); err != nil {
					return "", fmt.Errorf("setting the event invoke configuration of %s: %w", q, err)
				}
				return done, nil
			}})
	}
	gone := make([]string, 0, len(have))
	for q := range have {
		gone = append(gone, q)
	}
	sort.Strings(gone)
	for _, q := range gone {
		out = append(out, Change{Function: fn.Name, Kind: Async, Text: "async " + q + " to delete",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.DeleteFunctionEventInvokeConfig(ctx, fn.Name, q); err != nil {
					return "", fmt.Errorf("deleting the event invoke configuration of %s: %w", q, err)
				}
				return "async " + q + " deleted", nil
			}})
	}
	return out, nil
}

// asyncValues are a configuration's settings as an async block's attributes show them;
// "default" (Lambda's) or "none" when unset.
func asyncValues(c *structs.EventInvokeConfig) [4][2]string {
	retries, age, success, failure := "default", "default", "none", "none"
	if c.MaximumRetryAttempts != nil {
		retries = strconv.Itoa(*c.MaximumRetryAttempts)
	}
	if c.MaximumEventAge != 0 {
		age = c.MaximumEventAge.String()
	}
	if c.OnSuccess != "" {
		success = c.OnSuccess
	}
	if c.OnFailure != "" {
		failure = c.OnFailure
	}
	return [4][2]string{{"maximum_retry_attempts", retries}, {"maximum_event_age", age}, {"on_success", success}, {"on_failure", failure}}
}

// asyncText lists the settings a configuration sets, e.g. "maximum_retry_attempts 1,
// on_failure queue:dlq"; "defaults" when it sets none.
func asyncText(c *structs.EventInvokeConfig) string {
	var parts []string
	for _, v := range asyncValues(c) {
		if v[1] != "default" && v[1] != "none" {
			parts = append(parts, v[0]+" "+v[1])
		}
	}
	if len(parts) == 0 {
		return "defaults"
	}
	return strings.Join(parts, ", ")
}

// asyncDiffs lists the settings that differ, "attribute old -> new".
func asyncDiffs(old, new *structs.EventInvokeConfig) []string {
	var diffs []string
	o, n := asyncValues(old), asyncValues(new)
	for i := range o {
		if o[i][1] != n[i][1] {
			diffs = append(diffs, fmt.Sprintf("%s %s -> %s", o[i][0], o[i][1], n[i][1]))
		}
	}
	return diffs
}

// deadLetterText is a function's dead-letter target as dead_letter_target shows it.
func deadLetterText(dc *lambda.DeadLetterConfig) string {
	if dc == nil || dc.TargetArn == "" {
		return "none"
	}
	if d, err := lambda.ParseDestinationARN(dc.TargetArn); err == nil {
		return d
	}
	return dc.TargetArn
}

// deadLetterConfig is the DeadLetterConfig that sets target ("" removes it).
func deadLetterConfig(target string) *lambda.DeadLetterConfig {
	if target == "" {
		return &lambda.DeadLetterConfig{}
	}
	return &lambda.DeadLetterConfig{TargetArn: lambda.DestinationARN(wireRegion, target)}
}
