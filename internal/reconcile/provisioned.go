package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/lambda"
)

// provisionedWait bounds how long apply waits for provisioned environments to finish Init;
// provisionedPoll is how often it asks.
const (
	provisionedWait = 5 * time.Minute
	provisionedPoll = 100 * time.Millisecond
)

// provisionedChanges makes the function's provisioned concurrency match its blocks, then,
// when anything the configurations cover changed (the function, an alias: changed; or a
// configuration), waits until every one is READY: apply returns with the environments
// initialised, as Lambda's deployment tools wait for them.
func provisionedChanges(fn *config.Function, cur []lambda.ProvisionedConcurrencyConfig, changed bool) []Change {
	have := map[string]int{}
	for _, c := range cur {
		have[c.FunctionArn[strings.LastIndex(c.FunctionArn, ":")+1:]] = c.RequestedProvisionedConcurrentExecutions
	}
	var out []Change
	for _, p := range fn.Provisioned {
		old, exists := have[p.Qualifier]
		delete(have, p.Qualifier)
		if exists && old == p.Count {
			continue
		}
		from := "none"
		if exists {
			from = strconv.Itoa(old)
		}
		q, n, text := p.Qualifier, p.Count, fmt.Sprintf("provisioned_concurrency %s %s -> %d", p.Qualifier, from, p.Count)
		out = append(out, Change{Function: fn.Name, Kind: Provisioned, Text: text,
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if _, err := a.PutProvisionedConcurrencyConfig(ctx, fn.Name, q, n); err != nil {
					return "", fmt.Errorf("setting provisioned concurrency of %s: %w", q, err)
				}
				return text, nil
			}})
	}
	gone := make([]string, 0, len(have))
	for q := range have {
		gone = append(gone, q)
	}
	sort.Strings(gone)
	for _, q := range gone {
		text := fmt.Sprintf("provisioned_concurrency %s %d -> none", q, have[q])
		out = append(out, Change{Function: fn.Name, Kind: Provisioned, Text: text,
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.DeleteProvisionedConcurrencyConfig(ctx, fn.Name, q); err != nil {
					return "", fmt.Errorf("removing provisioned concurrency of %s: %w", q, err)
				}
				return text, nil
			}})
	}
	if (!changed && len(out) == 0) || len(fn.Provisioned) == 0 {
		return out
	}
	return append(out, Change{Function: fn.Name, Kind: Provisioned,
		apply: func(ctx context.Context, a Agent, progress func(string)) (string, error) {
			return waitProvisioned(ctx, a, fn, progress)
		}})
}

// waitProvisioned waits until every provisioned concurrency configuration of fn is READY.
func waitProvisioned(ctx context.Context, a Agent, fn *config.Function, progress func(string)) (string, error) {
	total := 0
	for _, p := range fn.Provisioned {
		total += p.Count
	}
	progress(fmt.Sprintf("waiting for %d provisioned environment(s) to finish Init", total))
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, provisionedWait)
	defer cancel()
	for _, p := range fn.Provisioned {
		for {
			st, err := a.GetProvisionedConcurrencyConfig(wctx, fn.Name, p.Qualifier)
			if err != nil {
				return "", fmt.Errorf("waiting for provisioned concurrency of %s: %w", p.Qualifier, err)
			}
			if st.Status == lambda.ProvisionedReady {
				break
			}
			if st.Status == lambda.ProvisionedFailed {
				return "", fmt.Errorf("provisioned concurrency of %s failed (%d of %d ready): %s", p.Qualifier,
					st.AvailableProvisionedConcurrentExecutions, st.RequestedProvisionedConcurrentExecutions, st.StatusReason)
			}
			select {
			case <-wctx.Done():
				return "", fmt.Errorf("provisioned concurrency of %s: %d of %d environments ready after %s", p.Qualifier,
					st.AvailableProvisionedConcurrentExecutions, st.RequestedProvisionedConcurrentExecutions, time.Since(start).Round(time.Second))
			case <-time.After(provisionedPoll):
			}
		}
	}
	return fmt.Sprintf("provisioned environments ready in %s", time.Since(start).Round(10*time.Millisecond)), nil
}
