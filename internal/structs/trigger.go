package structs

import (
	"fmt"
	"reflect"
	"strings"
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

// Validate checks a trigger's settings; the error names the setting.
func (t *Trigger) Validate() error {
	switch {
	case !ValidName(t.Name):
		return fmt.Errorf("trigger name %q: use letters, digits, '-' and '_' (at most 64)", t.Name)
	case t.Plugin == "":
		return fmt.Errorf("trigger %q: plugin is required", t.Name)
	case t.Source == "":
		return fmt.Errorf("trigger %q: source is required", t.Name)
	case t.BatchSize < 0 || t.BatchSize > MaxTriggerBatchSize:
		return fmt.Errorf("trigger %q: batch_size %d must be between 1 and %d", t.Name, t.BatchSize, MaxTriggerBatchSize)
	case t.BatchWindow < 0 || t.BatchWindow > MaxTriggerBatchWindow:
		return fmt.Errorf("trigger %q: batch_window %v must be between 0s and %v", t.Name, t.BatchWindow, MaxTriggerBatchWindow)
	case t.MaximumRetryAttempts < -1 || t.MaximumRetryAttempts > MaxTriggerRetryAttempts:
		return fmt.Errorf("trigger %q: maximum_retry_attempts %d must be -1 (until the record expires) or between 0 and %d", t.Name, t.MaximumRetryAttempts, MaxTriggerRetryAttempts)
	case t.MaximumRecordAge != 0 && (t.MaximumRecordAge < MinTriggerRecordAge || t.MaximumRecordAge > MaxTriggerRecordAge):
		return fmt.Errorf("trigger %q: maximum_record_age %v must be between %v and %v", t.Name, t.MaximumRecordAge, MinTriggerRecordAge, MaxTriggerRecordAge)
	}
	switch t.StartingPosition {
	case "", TrimHorizon, Latest:
	case AtTimestamp:
		if t.StartingPositionTimestamp.IsZero() {
			return fmt.Errorf("trigger %q: starting_position AT_TIMESTAMP needs starting_position_timestamp", t.Name)
		}
	default:
		return fmt.Errorf("trigger %q: starting_position %q must be TRIM_HORIZON, LATEST or AT_TIMESTAMP", t.Name, t.StartingPosition)
	}
	if d := t.OnFailure; d != "" {
		kind, name, ok := strings.Cut(d, ":")
		if !ok || (kind != "function" && kind != "queue") || name == "" {
			return fmt.Errorf("trigger %q: on_failure destination %q must be function:NAME or queue:NAME", t.Name, d)
		}
	}
	return nil
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
