package main

// Delivering records to the gateway, with Lambda's asynchronous-invocation semantics (S3 invokes
// its functions asynchronously): retries on function errors, waits without using attempts when
// the gateway cannot run the function now, and the on-failure destination for what is given up.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// Retry timing.
const (
	defaultRetryDelay = time.Second
	maxRetryDelay     = time.Minute
	laterDelay        = 500 * time.Millisecond // first wait after RetryLater or a failed Deliver
	maxLaterDelay     = 30 * time.Second
	failureDelay      = time.Second // between tries of SendOnFailure
)

// item is a record to deliver: its JSON, its id in the batch (its s3.object.sequencer), when the
// plugin got it and how often the function failed on it.
type item struct {
	id       string
	record   json.RawMessage
	received time.Time
	attempts int
}

// deliverer delivers one mapping's batches.
type deliverer struct {
	host   sdk.Host
	m      sdk.Mapping
	st     settings
	logger hclog.Logger
	now    func() time.Time
}

// deliver delivers items as one batch until each has succeeded or was given up on (sent to the
// on-failure destination, or dropped and logged without one). It returns an error only when ctx
// ends first; then the items' fate is unknown and they are to be delivered again.
func (d *deliverer) deliver(ctx context.Context, items []*item) error {
	later := laterDelay
	for len(items) > 0 {
		// Records past their age are given up on before each attempt.
		if d.st.maxAge > 0 {
			var old, young []*item
			for _, it := range items {
				if d.now().Sub(it.received) > d.st.maxAge {
					old = append(old, it)
				} else {
					young = append(young, it)
				}
			}
			if len(old) > 0 {
				if err := d.giveUp(ctx, old, trigger.ConditionEventAge, nil); err != nil {
					return err
				}
			}
			if items = young; len(items) == 0 {
				return nil
			}
		}

		batch, err := d.batch(items)
		if err != nil {
			return err
		}
		res, err := d.host.Deliver(ctx, batch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.logger.Warn("the gateway did not take the batch; delivering it again", "records", len(items), "error", err, "in", later)
			if !trigger.Sleep(ctx, later) {
				return ctx.Err()
			}
			later = min(2*later, maxLaterDelay)
			continue
		}

		var failed []*item
		switch res.Outcome {
		case sdk.Success:
			return nil
		case sdk.RetryLater:
			d.logger.Debug("the gateway cannot run the function now; waiting", "records", len(items), "in", later)
			if !trigger.Sleep(ctx, later) {
				return ctx.Err()
			}
			later = min(2*later, maxLaterDelay)
			continue
		case sdk.Partial:
			for _, it := range items {
				if slices.Contains(res.FailedItemIDs, it.id) {
					failed = append(failed, it)
				}
			}
			if len(failed) == 0 { // ids the batch did not hold: the batch failed
				failed = items
			}
		default: // FunctionError, or an outcome this plugin does not know
			failed = items
		}
		later = laterDelay

		var again, exhausted []*item
		maxAttempts := 0
		for _, it := range failed {
			it.attempts++
			if it.attempts > d.st.retries {
				exhausted = append(exhausted, it)
			} else {
				again = append(again, it)
				maxAttempts = max(maxAttempts, it.attempts)
			}
		}
		d.logger.Info("the function failed", "records", len(failed), "error_type", res.ErrorType, "error", res.ErrorMessage,
			"retrying", len(again), "giving_up", len(exhausted))
		if len(exhausted) > 0 {
			if err := d.giveUp(ctx, exhausted, trigger.ConditionAsyncRetries, &res); err != nil {
				return err
			}
		}
		if items = again; len(items) == 0 {
			return nil
		}
		if !trigger.Sleep(ctx, retryDelay(d.st.retryDelay, maxAttempts)) {
			return ctx.Err()
		}
	}
	return nil
}

// retryDelay is the wait before retry n (1, 2, ...): base doubled each time, capped.
func retryDelay(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

func (d *deliverer) batch(items []*item) (sdk.Batch, error) {
	ev := s3Event{Records: make([]json.RawMessage, len(items))}
	ids := make([]string, len(items))
	for i, it := range items {
		ev.Records[i], ids[i] = it.record, it.id
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return sdk.Batch{}, fmt.Errorf("encoding the event: %w", err)
	}
	return sdk.Batch{MappingUUID: d.m.UUID, Event: b, ItemIDs: ids}, nil
}

// giveUp sends items to the mapping's on-failure destination (trying until it is taken or ctx
// ends), or logs and drops them when it has none. res is the function's last answer, if any.
func (d *deliverer) giveUp(ctx context.Context, items []*item, condition string, res *sdk.BatchResult) error {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.id
	}
	if d.m.OnFailureDestination == "" {
		d.logger.Warn("giving up on records; the trigger has no on_failure destination", "condition", condition,
			"sequencers", keys)
		return nil
	}
	rec, err := d.failureRecord(items, condition, res)
	if err != nil {
		return err
	}
	for {
		err := d.host.SendOnFailure(ctx, d.m.UUID, rec)
		if err == nil {
			d.logger.Info("sent records to the on-failure destination", "condition", condition,
				"destination", d.m.OnFailureDestination, "sequencers", keys)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.logger.Warn("sending to the on-failure destination failed; trying again", "error", err)
		if !trigger.Sleep(ctx, failureDelay) {
			return ctx.Err()
		}
	}
}

func (d *deliverer) failureRecord(items []*item, condition string, res *sdk.BatchResult) ([]byte, error) {
	payload, err := d.batch(items)
	if err != nil {
		return nil, err
	}
	rec := invocationRecord{
		Version:         "1.0",
		Timestamp:       d.now().UTC().Format(eventTimeFormat),
		RequestContext:  trigger.NewRequestContext(d.m, condition, items[0].attempts),
		RequestPayload:  payload.Event,
		ResponseContext: trigger.ResponseContext{ExecutedVersion: trigger.ExecutedVersion(d.m)},
	}
	if res != nil {
		rec.ResponseContext.StatusCode = 200
		rec.ResponseContext.FunctionError = "Unhandled"
		if json.Valid(res.Response) {
			rec.ResponsePayload = res.Response
		} else {
			rec.ResponsePayload, _ = json.Marshal(map[string]string{"errorMessage": res.ErrorMessage, "errorType": res.ErrorType})
		}
	}
	return json.Marshal(rec)
}

// settings are a mapping's options and delivery settings, checked, with defaults applied.
type settings struct {
	mode         string
	filter       eventFilter
	batchSize    int
	window       time.Duration
	retries      int
	maxAge       time.Duration
	retryDelay   time.Duration
	pollInterval time.Duration
}

// Mapping options.
const (
	optionMode         = "mode"
	optionPrefix       = "prefix"
	optionSuffix       = "suffix"
	optionEvents       = "events"
	optionRetryDelay   = "retry_delay"
	optionPollInterval = "poll_interval"

	modeWebhook = "webhook"
	modePoll    = "poll"

	defaultEvents  = "s3:ObjectCreated:*"
	defaultRetries = 2             // Lambda's asynchronous invocation default
	defaultMaxAge  = 6 * time.Hour // likewise
	maxBatchSize   = 10000
)

// mappingSettings checks m and applies the defaults; pollInterval is the plugin's.
func mappingSettings(m sdk.Mapping, pollInterval time.Duration) (settings, error) {
	st := settings{mode: modeWebhook, batchSize: m.BatchSize, window: max(m.BatchWindow, 0), retries: m.MaximumRetryAttempts,
		maxAge: m.MaximumRecordAge, retryDelay: defaultRetryDelay, pollInterval: pollInterval}
	if m.Source == "" {
		return st, fmt.Errorf("the source (the bucket) is empty")
	}
	if m.UUID == "" || m.UUID == "." || m.UUID == ".." || strings.ContainsAny(m.UUID, `/\`) {
		return st, fmt.Errorf("mapping UUID %q cannot name a file", m.UUID)
	}
	for k := range m.Options {
		switch k {
		case optionMode, optionPrefix, optionSuffix, optionEvents, optionRetryDelay, optionPollInterval:
		default:
			return st, fmt.Errorf("unknown option %q (the s3 trigger knows mode, prefix, suffix, events, retry_delay and poll_interval)", k)
		}
	}
	if v, ok := m.Options[optionMode]; ok {
		if v != modeWebhook && v != modePoll {
			return st, fmt.Errorf("option mode: %q is neither %q nor %q", v, modeWebhook, modePoll)
		}
		st.mode = v
	}
	events := defaultEvents
	if v, ok := m.Options[optionEvents]; ok {
		events = v
	}
	evs, err := parseEvents(events)
	if err != nil {
		return st, fmt.Errorf("option events: %w", err)
	}
	st.filter = eventFilter{events: evs, prefix: m.Options[optionPrefix], suffix: m.Options[optionSuffix]}
	if st.batchSize == 0 {
		st.batchSize = 1 // Lambda invokes S3 triggers with one record per event
	}
	if st.batchSize < 0 || st.batchSize > maxBatchSize {
		return st, fmt.Errorf("batch size %d is out of range (1 to %d)", m.BatchSize, maxBatchSize)
	}
	if st.retries < 0 {
		st.retries = defaultRetries
	}
	if st.maxAge <= 0 {
		st.maxAge = defaultMaxAge
	}
	if v, ok := m.Options[optionRetryDelay]; ok {
		if st.retryDelay, err = parseDuration(v); err != nil {
			return st, fmt.Errorf("option %s: %w", optionRetryDelay, err)
		}
	}
	if v, ok := m.Options[optionPollInterval]; ok {
		if st.pollInterval, err = parseDuration(v); err != nil {
			return st, fmt.Errorf("option %s: %w", optionPollInterval, err)
		}
	}
	return st, nil
}

// parseDuration reads a positive Go duration ("10s") or a number of seconds.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseFloat(s, 64)
		if nerr != nil {
			return 0, fmt.Errorf("%q is no duration (like 10s or 1m30s)", s)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", s)
	}
	return d, nil
}
