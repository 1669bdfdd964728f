package main

// The stream trigger source: configuration, connection and the set of mappings. Each enabled
// mapping is a *mapping (mapping.go) running one worker per shard of its stream (shard.go); the
// Kinesis event and on-failure record shapes are in event.go.
//
// Semantics, as Lambda's Kinesis event source mapping has them:
//   - Per shard, records are delivered strictly in order, one batch in flight at a time. A batch
//     holds up to BatchSize records (100 by default) of one shard: those available as soon as
//     one is there, or those arriving within BatchWindow after the first one.
//   - The shard's checkpoint (plugins/sdk/natsstream, a key-value bucket) is the last sequence
//     whose record is done; it moves only once a record's outcome is known (at least once):
//     after a successful batch, up to just before the lowest failed record of a partial batch,
//     and after records given up on were sent to the on-failure destination (or logged and
//     dropped, with none). A restarted mapping, here or on another node, resumes after it.
//   - With no checkpoint, the mapping starts at StartingPosition: TRIM_HORIZON (the default,
//     the oldest record kept), LATEST (records arriving after the mapping started: the stream's
//     last sequence is checkpointed at once, so a restart neither skips nor replays) or
//     AT_TIMESTAMP (records stored at or after StartingPositionTimestamp).
//   - Attempts. A batch that fails (FunctionError, or Partial: the retry from the lowest failed
//     record) uses an attempt; once it has failed MaximumRetryAttempts+1 times (when >= 0) its
//     records go to the on-failure destination and the shard moves past them. RetryLater and
//     a failed delivery (the gateway went away) use no attempt. Retries of one batch wait 100 ms,
//     doubling up to 5 s.
//   - BisectBatchOnFunctionError: a batch of more than one record that fails with a function
//     error is split in two halves, delivered in order, each retried on its own. As Lambda's
//     documentation says, splitting does not consume the retry quota: the failed attempt that
//     caused the split is not counted, and each half starts with the attempts its batch had
//     used before (none, unless a partial failure had used some). A one-record batch cannot be
//     split: its failures use attempts. So a poison record ends up alone and goes to the
//     on-failure destination after its retries, and every other record of its batch succeeds.
//   - MaximumRecordAge (when > 0): records older than it are taken out of a batch before it is
//     delivered and go to the on-failure destination (condition RecordAgeExceeded).
//   - A record given up on never blocks the shard for good, but sending its on-failure record
//     is retried until it succeeds: the checkpoint does not pass it before.
//   - A mapping that stops (left out of SetMappings, changed, or the plugin closing) lets a batch
//     in flight finish for up to 5 s and checkpoints its outcome, so that whoever runs the
//     mapping next does not deliver it again; a batch that takes longer is delivered again later.
//
// Mapping options (sdk.Mapping.Options):
//   - shards: the shard count of the stream if the mapping has to create it (4 by default). An
//     existing stream keeps its own.

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natssource"
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
)

// Limits and defaults.
const (
	defaultBatchSize = 100
	maxBatchSize     = 10000
	maxBatchWindow   = 5 * time.Minute
	optionShards     = "shards"
)

// source is the stream TriggerSource: natssource's plumbing, with a mapping per mapping.
type source struct {
	*natssource.Source[*mapping]
}

var _ sdk.TriggerSource = (*source)(nil)

func newSource() *source {
	return newSourceWithLogger(sdk.Logger())
}

func newSourceWithLogger(logger hclog.Logger) *source {
	logger = logger.Named("stream")
	return &source{natssource.NewSource(natssource.SourceConfig[*mapping]{
		Trigger: "stream", What: "streams", Logger: logger, SetupTimeout: setupTimeout,
		NewRunner: func(env natssource.Env, m sdk.Mapping) *mapping { return newRunner(env, m, logger) },
	})}
}

// settings are a mapping's batching settings, with defaults applied.
type settings struct {
	batchSize int
	window    time.Duration
	position  string // sdk.TrimHorizon, sdk.Latest or sdk.AtTimestamp
	shards    int    // for a stream the mapping creates; 0: natsstream.DefaultShards
}

// mappingSettings checks m and applies the defaults.
func mappingSettings(m sdk.Mapping) (settings, error) {
	st := settings{batchSize: m.BatchSize, window: max(m.BatchWindow, 0), position: m.StartingPosition}
	if st.batchSize == 0 {
		st.batchSize = defaultBatchSize
	}
	if st.batchSize < 0 || st.batchSize > maxBatchSize {
		return st, fmt.Errorf("batch size %d is out of range (1 to %d)", m.BatchSize, maxBatchSize)
	}
	if st.window > maxBatchWindow {
		return st, fmt.Errorf("batch window %s is longer than %s", m.BatchWindow, maxBatchWindow)
	}
	switch st.position {
	case "":
		st.position = sdk.TrimHorizon
	case sdk.TrimHorizon, sdk.Latest:
	case sdk.AtTimestamp:
		if m.StartingPositionTimestamp.IsZero() {
			return st, errors.New("starting position AT_TIMESTAMP needs a starting position timestamp")
		}
	default:
		return st, fmt.Errorf("starting position %q is none of TRIM_HORIZON, LATEST and AT_TIMESTAMP", st.position)
	}
	if v, ok := m.Options[optionShards]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > natsstream.MaxShards {
			return st, fmt.Errorf("option %s: %q is not a number from 1 to %d", optionShards, v, natsstream.MaxShards)
		}
		st.shards = n
	}
	return st, nil
}
