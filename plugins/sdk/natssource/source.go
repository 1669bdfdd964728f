package natssource

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// Env is what a NATS trigger's runner is made with: the host to deliver to and the connection.
type Env struct {
	Host sdk.Host
	Conn *Conn
}

// SourceConfig says what a NATS trigger reads and how it runs a mapping.
type SourceConfig[R sdk.Runner] struct {
	// Trigger names the trigger ("queue"): its connection is "lambdagw <Trigger> trigger" in the
	// server's monitoring.
	Trigger string
	// What is what it reads, in the plural ("queues"), for its schema and diagnostics.
	What   string
	Logger hclog.Logger
	// SetupTimeout bounds the first attempt at setting each mapping up, within SetMappings.
	SetupTimeout time.Duration
	// NewRunner makes the runner of a mapping. It is called under the source's lock.
	NewRunner func(Env, sdk.Mapping) R
}

// Source is a NATS trigger's sdk.TriggerSource but for its runners: a trigger.Source whose
// connection is made from the configuration block (Connect) and flushed and closed when
// replaced or closed, and the block's Schema. A plugin's source embeds it and serves it.
type Source[R sdk.Runner] struct {
	*trigger.Source[*Conn, R]
	what string
}

var _ sdk.TriggerSource = (*Source[sdk.Runner])(nil)

// NewSource returns the source of cfg, not configured yet.
func NewSource[R sdk.Runner](cfg SourceConfig[R]) *Source[R] {
	return &Source[R]{what: cfg.What, Source: trigger.NewSource(trigger.SourceConfig[*Conn, R]{
		Name: cfg.Trigger,
		Connect: func(_ context.Context, req sdk.ConfigureRequest) (*Conn, []sdk.Diagnostic, error) {
			return Connect(req, "lambdagw "+cfg.Trigger+" trigger", cfg.What, cfg.Logger)
		},
		// On Close, what the runners published last (acks, checkpoints) is flushed first; a
		// Configure does not wait on a server that may be down.
		Disconnect: func(c *Conn, closing bool) {
			if closing {
				_ = c.NC.FlushTimeout(5 * time.Second)
			}
			c.NC.Close()
		},
		SetupTimeout: cfg.SetupTimeout,
		NewRunner: func(host sdk.Host, conn *Conn, m sdk.Mapping) R {
			return cfg.NewRunner(Env{Host: host, Conn: conn}, m)
		},
	})}
}

// Schema is the configuration block: url and credentials_file.
func (s *Source[R]) Schema() sdk.Schema { return Schema(s.what) }
