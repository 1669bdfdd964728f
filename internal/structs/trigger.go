package structs

import (
	"fmt"
	"reflect"
	"time"
)

// Trigger is an event source mapping: a trigger block of a function, run by a trigger plugin
// that reads Source and delivers batches to the function (at Qualifier).
type Trigger struct {
	// UUID is given when the trigger is created and kept while it exists (Lambda's mapping UUID).
	UUID      string `json:"uuid"`
	Function  string `json:"function"`
	Name      string `json:"name"`
	Plugin    string `json:"plugin"`
	Source    string `json:"source"`
	Qualifier string `json:"qualifier,omitempty"`
	// BatchSize 0 lets the plugin choose its source's default (10 for queues, 100 for streams).
	BatchSize                 int           `json:"batch_size,omitempty"`
	BatchWindow               time.Duration `json:"batch_window,omitempty"`
	StartingPosition          string        `json:"starting_position,omitempty"`
	StartingPositionTimestamp time.Time     `json:"starting_position_timestamp,omitempty"`
	// MaximumRetryAttempts -1 retries until the record expires.
	MaximumRetryAttempts int `json:"maximum_retry_attempts"`
	// MaximumRecordAge 0 keeps records until they succeed.
	MaximumRecordAge           time.Duration     `json:"maximum_record_age,omitempty"`
	BisectBatchOnFunctionError bool              `json:"bisect_batch_on_function_error,omitempty"`
	ReportBatchItemFailures    bool              `json:"report_batch_item_failures,omitempty"`
	OnFailure                  string            `json:"on_failure,omitempty"`
	Enabled                    bool              `json:"enabled"`
	Options                    map[string]string `json:"options,omitempty"`
	LastModified               time.Time         `json:"last_modified"`
}

// Limits of a trigger's settings (Lambda's, where it has them).
const (
	MaxTriggerBatchSize     = 10000
	MaxTriggerBatchWindow   = 300 * time.Second
	MaxTriggerRetryAttempts = 10000
	MinTriggerRecordAge     = 60 * time.Second
	MaxTriggerRecordAge     = 7 * 24 * time.Hour
)

// Starting positions.
const (
	TrimHorizon = "TRIM_HORIZON"
	Latest      = "LATEST"
	AtTimestamp = "AT_TIMESTAMP"
)

// Validate checks a trigger's settings; the error names the trigger and the first setting
// that breaks a rule (Check lists them all).
func (t *Trigger) Validate() error {
	if errs := t.Check(); len(errs) > 0 {
		return fmt.Errorf("trigger %q: %s %s", t.Name, errs[0].Field, errs[0].Message)
	}
	return nil
}

// Check lists the rules a trigger's settings break. Field is the setting's name in triggers'
// JSON and HCL (batch_size): the Lambda API's event source mappings are converted to a Trigger
// before they are checked.
func (t *Trigger) Check() []FieldError {
	var errs []FieldError
	add := func(field, summary, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Summary: summary, Message: fmt.Sprintf(format, a...)})
	}
	if !ValidName(t.Name) {
		add("name", "Invalid trigger name", "%q: a trigger name has 1 to 64 letters, digits, '-' and '_'", t.Name)
	}
	if t.Plugin == "" {
		add("plugin", "", "a trigger names the plugin that runs it")
	}
	if t.Source == "" {
		add("source", "", "a trigger names its source (a queue, stream or bucket)")
	}
	if t.BatchSize < 0 || t.BatchSize > MaxTriggerBatchSize {
		add("batch_size", "", "%d: a batch holds 1 to %d records (0: the plugin's default)", t.BatchSize, MaxTriggerBatchSize)
	}
	if t.BatchWindow < 0 || t.BatchWindow > MaxTriggerBatchWindow {
		add("batch_window", "", "%s is out of range: it must be between 0s and %s", t.BatchWindow, MaxTriggerBatchWindow)
	}
	if t.MaximumRetryAttempts < -1 || t.MaximumRetryAttempts > MaxTriggerRetryAttempts {
		add("maximum_retry_attempts", "", "%d: use -1 (retry until the record expires) or 0 to %d", t.MaximumRetryAttempts, MaxTriggerRetryAttempts)
	}
	if a := t.MaximumRecordAge; a != 0 && (a < MinTriggerRecordAge || a > MaxTriggerRecordAge) {
		add("maximum_record_age", "", "%s is out of range: it must be between %s and %s", a, MinTriggerRecordAge, MaxTriggerRecordAge)
	}
	switch t.StartingPosition {
	case "", TrimHorizon, Latest:
	case AtTimestamp:
		if t.StartingPositionTimestamp.IsZero() {
			add("starting_position", "Missing starting_position_timestamp", "AT_TIMESTAMP needs starting_position_timestamp (RFC 3339)")
		}
	default:
		add("starting_position", "", "%q: use TRIM_HORIZON, LATEST or AT_TIMESTAMP", t.StartingPosition)
	}
	if d := t.OnFailure; d != "" && !ValidDestination(d) {
		add("on_failure", "Invalid on_failure destination", "%q: use %s", d, DestinationForms)
	}
	return errs
}

// ValidName says whether s names a trigger or plugin: letters, digits, '-' and '_', 1 to 64 of them.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// SameSettings says whether two triggers are configured alike (the UUID and times aside).
func (t *Trigger) SameSettings(o *Trigger) bool {
	a, b := *t, *o
	a.UUID, b.UUID = "", ""
	a.LastModified, b.LastModified = time.Time{}, time.Time{}
	if !a.StartingPositionTimestamp.Equal(b.StartingPositionTimestamp) {
		return false
	}
	a.StartingPositionTimestamp, b.StartingPositionTimestamp = time.Time{}, time.Time{}
	if len(a.Options) != len(b.Options) {
		return false
	}
	for k, v := range a.Options {
		if b.Options[k] != v {
			return false
		}
	}
	a.Options, b.Options = nil, nil
	return reflect.DeepEqual(a, b)
}
