package main

// The Redis Streams trigger source: configuration, the Redis connection settings and the set of
// mappings. Each enabled mapping is a *consumer (consumer.go) reading its stream through a
// consumer group; the event and on-failure record shapes are in event.go.
//
// Semantics:
//   - Each mapping reads its stream (the mapping's source, a stream key) through a consumer
//     group of its own, "gateway:<function>:<trigger name>" unless the mapping's "group" option
//     names another. The group is created (with MKSTREAM) the first time the mapping runs,
//     starting at the stream's end for LATEST, at its start for TRIM_HORIZON (the default), or
//     at the first entry added at or after the timestamp for AT_TIMESTAMP. A group that exists
//     keeps its position: the starting position matters only once.
//   - Every node that runs a mapping is a consumer of its group (named after the node), so the
//     nodes share the stream's entries. Records are not ordered per partition key, as they
//     would be with Kinesis: a consumer group hands entries out to whichever consumer asks.
//   - An entry is acknowledged (XACK) only once its outcome is known (at least once): after a
//     successful batch, after a partial batch for the records not in batchItemFailures, and
//     after its on-failure record was sent (or, with no destination, after it was logged and
//     dropped). Entries stay in the stream: trimming it is the producer's business.
//   - A failed entry stays pending in the group and is claimed again (XAUTOCLAIM) once it has
//     been idle for the mapping's retry delay, by this node or any other running the mapping:
//     a node that dies leaves its entries to the others. While a batch is with the function
//     its entries are kept fresh (XCLAIM JUSTID), so nobody claims them meanwhile.
//   - Redis counts deliveries (XPENDING's delivery count). A batch the gateway could not run
//     (RetryLater) or whose delivery failed (the host went away) does not use an attempt: the
//     plugin remembers those deliveries and takes them off Redis's count (a plugin that
//     restarts forgets them, and then counts them). When an entry has been invoked
//     MaximumRetryAttempts+1 times (when >= 0), or is older than MaximumRecordAge (when > 0, by
//     the time in its entry ID), it goes to the on-failure destination and is acknowledged.
//   - BisectBatchOnFunctionError is not supported (a failed batch's entries are retried as
//     they are claimed again, in batches of whatever is due).
//   - The plugin is also a destination (sdk.RecordAcceptor): a record for "<plugin>:<stream>"
//     (an asynchronous invocation's outcome, a dead-lettered event, a trigger's on-failure
//     record) is added to that stream (XADD) with the fields "key" (the invocation's request
//     id) and "data" (the record's JSON), so a trigger on that stream reads it back as it was.
//
// Mapping options (sdk.Mapping.Options):
//   - group: the consumer group's name.
//   - retry_delay: how long a failed entry waits before it is claimed again (a Go duration or
//     seconds; 1s by default, at least 100ms).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// Limits and defaults.
const (
	defaultBatchSize  = 10
	maxBatchSize      = 10000
	defaultRetryDelay = time.Second
	minRetryDelay     = 100 * time.Millisecond
	defaultRegion     = "us-east-1"
	defaultNodeName   = "gateway"
	optionGroup       = "group"
	optionRetryDelay  = "retry_delay"
	// probeTimeout bounds Configure's check of the connection.
	probeTimeout = 3 * time.Second
	// setupTimeout bounds setting a mapping's consumer group up in SetMappings.
	setupTimeout = 3 * time.Second
)

// config is the plugin's configuration block.
type config struct {
	Address  string       `json:"address"`
	Password string       `json:"password"`
	DB       *json.Number `json:"db"`
}

// source is the Redis Streams TriggerSource: the SDK's trigger.Source with a *consumer per
// mapping, on the server settings Configure checks.
type source struct {
	*trigger.Source[server, *consumer]
	logger hclog.Logger
}

// server is what Configure makes of the configuration block.
type server struct {
	opts   *redis.Options
	node   string // this node's consumer name
	region string
	// records adds the records the plugin is handed as a destination.
	records *redis.Client
}

var (
	_ sdk.TriggerSource  = (*source)(nil)
	_ sdk.RecordAcceptor = (*source)(nil)
)

func newSource(logger hclog.Logger) *source {
	s := &source{logger: logger.Named("redis-streams")}
	s.Source = trigger.NewSource(trigger.SourceConfig[server, *consumer]{
		Name: "Redis Streams", Connect: s.connect, SetupTimeout: setupTimeout, NewRunner: s.newConsumer,
		Disconnect: func(srv server, _ bool) { _ = srv.records.Close() },
	})
	return s
}

// AcceptRecord adds a record to the stream r.Target; it returns once Redis has it.
func (s *source) AcceptRecord(ctx context.Context, r sdk.Record) error {
	srv, ok := s.Conn()
	if !ok {
		return errors.New("the Redis Streams trigger is not configured")
	}
	if err := srv.records.XAdd(ctx, &redis.XAddArgs{Stream: r.Target, Values: []any{keyField, r.Key, dataField, r.Data}}).Err(); err != nil {
		return fmt.Errorf("adding a record to stream %s: %w", r.Target, err)
	}
	return nil
}

func (s *source) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "address", Type: sdk.TypeString, Required: true,
			Description: "host:port of the Redis server holding the streams."},
		{Name: "password", Type: sdk.TypeString,
			Description: "Password to authenticate with (AUTH), if the server wants one."},
		{Name: "db", Type: sdk.TypeNumber,
			Description: "Database number to select (0 by default)."},
	}}
}

// connect checks the configuration and the connection, for Configure. A Redis that is not
// reachable yet is no mistake in the configuration: the mappings retry until it is.
func (s *source) connect(ctx context.Context, req sdk.ConfigureRequest) (server, []sdk.Diagnostic, error) {
	var cfg config
	if err := req.DecodeConfig(&cfg); err != nil {
		return server{}, nil, err
	}
	var diags []sdk.Diagnostic
	if cfg.Address == "" {
		diags = append(diags, sdk.Diagnostic{Attribute: "address", Summary: "Missing Redis address",
			Detail: "Set address to the host:port of the Redis server, like \"127.0.0.1:6379\"."})
	} else if _, port, err := net.SplitHostPort(cfg.Address); err != nil || port == "" {
		diags = append(diags, sdk.Diagnostic{Attribute: "address", Summary: "Invalid Redis address",
			Detail: fmt.Sprintf("%q is not host:port, like \"127.0.0.1:6379\".", cfg.Address)})
	}
	db := 0
	if cfg.DB != nil {
		n, err := strconv.Atoi(cfg.DB.String())
		if err != nil || n < 0 {
			diags = append(diags, sdk.Diagnostic{Attribute: "db", Summary: "Invalid Redis database",
				Detail: fmt.Sprintf("%s is not a database number (0, 1, ...).", cfg.DB.String())})
		}
		db = n
	}
	if len(diags) > 0 {
		return server{}, diags, nil
	}
	opts := &redis.Options{
		Addr:       cfg.Address,
		Password:   cfg.Password,
		DB:         db,
		ClientName: "lambdagw-trigger-redis",
		// A mapping blocks on one connection and settles its entries on another.
		PoolSize:                 4,
		ContextTimeoutEnabled:    true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	logger := s.logger.With("address", cfg.Address, "db", db)
	probeOpts := *opts
	probeOpts.MaxRetries = -1 // one try: the mappings retry on their own
	probe := redis.NewClient(&probeOpts)
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	err := probe.Ping(pctx).Err()
	cancel()
	_ = probe.Close()
	switch attr := configErrorAttribute(err); {
	case err == nil:
		logger.Info("connected to Redis")
	case attr != "":
		return server{}, []sdk.Diagnostic{{Attribute: attr, Summary: "Redis refused the connection's settings", Detail: err.Error()}}, nil
	default:
		logger.Warn("Redis is not reachable yet; the mappings will retry", "error", err)
	}

	node := req.HostInfo["node_name"]
	if node == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			node = h
		} else {
			node = defaultNodeName
		}
	}
	region := req.HostInfo["region"]
	if region == "" {
		region = defaultRegion
	}
	return server{opts: opts, node: node, region: region, records: redis.NewClient(opts)}, nil, nil
}

// configErrorAttribute names the configuration attribute a Redis error is about (a wrong
// password, a database that does not exist), or "".
func configErrorAttribute(err error) string {
	var rerr redis.Error
	if err == nil || !errors.As(err, &rerr) {
		return ""
	}
	msg := rerr.Error()
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"), strings.Contains(msg, "AUTH"):
		return "password"
	case strings.Contains(msg, "DB index"):
		return "db"
	}
	return ""
}

// settings are a mapping's settings, checked, with defaults applied.
type settings struct {
	batchSize  int
	window     time.Duration
	retryDelay time.Duration
	group      string
	startID    string // where a new consumer group starts
}

// mappingSettings checks m and applies the defaults.
func mappingSettings(m sdk.Mapping) (settings, error) {
	st := settings{batchSize: m.BatchSize, window: max(m.BatchWindow, 0), retryDelay: defaultRetryDelay,
		group: "gateway:" + m.Function + ":" + m.Name}
	if m.Source == "" {
		return st, errors.New("the mapping names no stream (its source)")
	}
	if st.batchSize == 0 {
		st.batchSize = defaultBatchSize
	}
	if st.batchSize < 0 || st.batchSize > maxBatchSize {
		return st, fmt.Errorf("batch size %d is out of range (1 to %d)", m.BatchSize, maxBatchSize)
	}
	switch m.StartingPosition {
	case "", sdk.TrimHorizon:
		st.startID = "0"
	case sdk.Latest:
		st.startID = "$"
	case sdk.AtTimestamp:
		st.startID = timestampStartID(m.StartingPositionTimestamp)
	default:
		return st, fmt.Errorf("starting position %q is not supported (TRIM_HORIZON, LATEST or AT_TIMESTAMP)", m.StartingPosition)
	}
	for k, v := range m.Options {
		switch k {
		case optionGroup:
			if v == "" {
				return st, fmt.Errorf("option %s is empty", optionGroup)
			}
			st.group = v
		case optionRetryDelay:
			d, err := parseDuration(v)
			if err != nil || d < minRetryDelay {
				return st, fmt.Errorf("option %s: %q is no duration of at least %s", optionRetryDelay, v, minRetryDelay)
			}
			st.retryDelay = d
		default:
			return st, fmt.Errorf("unknown option %q (known: %s, %s)", k, optionGroup, optionRetryDelay)
		}
	}
	return st, nil
}

// timestampStartID is the last ID a consumer group starting at t has "read": the greatest ID of
// the millisecond before t, so the group delivers the entries added at t or later.
func timestampStartID(t time.Time) string {
	ms := t.UnixMilli()
	if ms <= 0 {
		return "0"
	}
	return strconv.FormatInt(ms-1, 10) + "-18446744073709551615"
}

// parseDuration reads a Go duration ("90s", "500ms") or a number of seconds.
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}
