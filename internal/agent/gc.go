package agent

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/cluster/codestore"
	"github.com/lambdagw/gateway/internal/image"
)

// collector deletes, every interval, the code zips and the images nothing references any more
// once they stayed so for the grace. It collects only while the node knows the cluster's state
// (caughtUp): a node that knows no leader, or has not applied what the leader committed, may
// lack a newer reference.
type collector struct {
	interval, grace time.Duration
	caughtUp        func(context.Context) error
	code            *codestore.Store
	// keepCode and keepImages list what the node must keep: what the replicated state
	// references and what its environments run (images: its runtimes' too).
	keepCode   func() []string
	images     *image.Store
	keepImages func() []string
	logger     hclog.Logger
}

// run collects until ctx ends.
func (c *collector) run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		kctx, cancel := context.WithTimeout(ctx, c.interval)
		err := c.caughtUp(kctx)
		cancel()
		if err != nil {
			c.logger.Debug("not collecting unreferenced code and images this time", "reason", err)
			continue
		}
		if _, err := c.code.Collect(c.keepCode(), c.grace); err != nil {
			c.logger.Warn("collecting unreferenced code", "error", err)
		}
		if _, _, err := c.images.CollectAfter(c.keepImages(), c.grace, time.Now()); err != nil {
			c.logger.Warn("collecting unreferenced images", "error", err)
		}
	}
}
