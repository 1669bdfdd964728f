package reconcile

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/structs"
)

// triggerChanges makes the function's triggers match its trigger blocks: it creates the
// missing ones, replaces those whose settings differ, and deletes those the file no longer has.
func triggerChanges(fn *config.Function, cur []*structs.Trigger) []Change {
	have := map[string]*structs.Trigger{}
	for _, t := range cur {
		have[t.Name] = t
	}
	var out []Change
	for _, blk := range fn.Triggers {
		want := blk.Trigger
		want.Function = fn.Name
		old, exists := have[want.Name]
		delete(have, want.Name)
		if exists && old.SameSettings(&want) {
			continue
		}
		action, did, would, detail := "creating", "created", "to create", TriggerText(&want)
		if exists {
			action, did, would, detail = "updating", "updated", "to update", strings.Join(triggerDiffs(old, &want), ", ")
		}
		prefix := "trigger " + want.Name + " "
		out = append(out, Change{Function: fn.Name, Kind: Trigger, Text: prefix + would + " (" + detail + ")",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if _, err := a.PutTrigger(ctx, &want); err != nil {
					return "", fmt.Errorf("%s trigger %s: %w", action, want.Name, err)
				}
				return prefix + did + " (" + detail + ")", nil
			}})
	}
	gone := make([]string, 0, len(have))
	for name := range have {
		gone = append(gone, name)
	}
	sort.Strings(gone)
	for _, name := range gone {
		out = append(out, Change{Function: fn.Name, Kind: Trigger, Text: "trigger " + name + " to delete",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.DeleteTrigger(ctx, fn.Name, name); err != nil {
					return "", fmt.Errorf("deleting trigger %s: %w", name, err)
				}
				return "trigger " + name + " deleted", nil
			}})
	}
	return out
}

// TriggerText sums a trigger up: its plugin and source, the qualifier it delivers to, and
// whether it is disabled, e.g. "queue: orders -> live".
func TriggerText(t *structs.Trigger) string {
	s := t.Plugin + ": " + t.Source
	if t.Qualifier != "" {
		s += " -> " + t.Qualifier
	}
	if !t.Enabled {
		s += ", disabled"
	}
	return s
}

// triggerDiffs lists the settings that differ between two triggers, one "attribute old -> new"
// per difference, by the trigger block's attribute names.
func triggerDiffs(old, new *structs.Trigger) []string {
	var diffs []string
	diff := func(attr, o, n string) {
		if o != n {
			diffs = append(diffs, fmt.Sprintf("%s %s -> %s", attr, o, n))
		}
	}
	or := func(s, empty string) string {
		if s == "" {
			return empty
		}
		return s
	}
	batch := func(n int) string {
		if n == 0 {
			return "default"
		}
		return strconv.Itoa(n)
	}
	age := func(d time.Duration) string {
		if d == 0 {
			return "none"
		}
		return d.String()
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "none"
		}
		return t.UTC().Format(time.RFC3339)
	}
	diff("plugin", old.Plugin, new.Plugin)
	diff("source", old.Source, new.Source)
	diff("qualifier", or(old.Qualifier, "none"), or(new.Qualifier, "none"))
	diff("batch_size", batch(old.BatchSize), batch(new.BatchSize))
	diff("batch_window", old.BatchWindow.String(), new.BatchWindow.String())
	diff("starting_position", or(old.StartingPosition, "default"), or(new.StartingPosition, "default"))
	diff("starting_position_timestamp", stamp(old.StartingPositionTimestamp), stamp(new.StartingPositionTimestamp))
	diff("maximum_retry_attempts", strconv.Itoa(old.MaximumRetryAttempts), strconv.Itoa(new.MaximumRetryAttempts))
	diff("maximum_record_age", age(old.MaximumRecordAge), age(new.MaximumRecordAge))
	diff("bisect_batch_on_function_error", strconv.FormatBool(old.BisectBatchOnFunctionError), strconv.FormatBool(new.BisectBatchOnFunctionError))
	diff("report_batch_item_failures", strconv.FormatBool(old.ReportBatchItemFailures), strconv.FormatBool(new.ReportBatchItemFailures))
	diff("enabled", strconv.FormatBool(old.Enabled), strconv.FormatBool(new.Enabled))
	if !reflect.DeepEqual(nonNil(old.Options), nonNil(new.Options)) {
		diffs = append(diffs, "options "+keyDiff(old.Options, new.Options))
	}
	diff("on_failure", or(old.OnFailure, "none"), or(new.OnFailure, "none"))
	if len(diffs) == 0 && !old.SameSettings(new) {
		diffs = append(diffs, "settings")
	}
	return diffs
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
