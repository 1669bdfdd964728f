package reconcile

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// current is the agent's view of a function equal to block().
func current() lambda.FunctionConfiguration {
	ms := int64(100)
	return lambda.FunctionConfiguration{
		FunctionName: "fn", Runtime: "provided.al2023", Handler: "bootstrap", Description: "d", MemorySize: 128, Timeout: 3,
		EphemeralStorage: &lambda.EphemeralStorage{Size: 512},
		Environment:      &lambda.Environment{Variables: map[string]string{"A": "1", "B": "2"}},
		GatewayOptions:   &lambda.GatewayOptions{FreezeDelayMs: &ms},
	}
}

func block() *config.Function {
	d := 100 * time.Millisecond
	return &config.Function{Name: "fn", Runtime: "provided.al2023", Handler: "bootstrap", Description: "d", MemoryMB: 128,
		Timeout: 3 * time.Second, EphemeralStorageMB: 512, Environment: map[string]string{"A": "1", "B": "2"}, FreezeDelay: &d}
}

func TestConfigChanges(t *testing.T) {
	if in, diffs := configChanges(current(), block(), false); len(diffs) != 0 || !reflect.DeepEqual(in, &lambda.UpdateFunctionConfigurationInput{}) {
		t.Fatalf("an unchanged function: %v %+v", diffs, in)
	}
	cases := []struct {
		name  string
		edit  func(*config.Function)
		diffs []string
		check func(*lambda.UpdateFunctionConfigurationInput) bool
	}{
		{"memory", func(f *config.Function) { f.MemoryMB = 256 }, []string{"memory_mb 128 -> 256"},
			func(in *lambda.UpdateFunctionConfigurationInput) bool {
				return in.MemorySize != nil && *in.MemorySize == 256
			}},
		{"timeout and runtime", func(f *config.Function) { f.Timeout = 30 * time.Second; f.Runtime = "provided.al2" },
			[]string{"runtime provided.al2023 -> provided.al2", "timeout 3 -> 30"},
			func(in *lambda.UpdateFunctionConfigurationInput) bool {
				return in.Timeout != nil && *in.Timeout == 30 && in.Runtime != nil && in.MemorySize == nil
			}},
		{"environment", func(f *config.Function) { f.Environment = map[string]string{"A": "changed", "C": "3"} },
			[]string{"environment: ~ A, - B, + C (values hidden; -show-sensitive shows them)"},
			func(in *lambda.UpdateFunctionConfigurationInput) bool {
				return in.Environment != nil && in.Environment.Variables["C"] == "3" && len(in.Environment.Variables) == 2
			}},
		{"storage", func(f *config.Function) { f.EphemeralStorageMB = 1024 }, []string{"ephemeral_storage_mb 512 -> 1024"},
			func(in *lambda.UpdateFunctionConfigurationInput) bool {
				return in.EphemeralStorage != nil && in.EphemeralStorage.Size == 1024
			}},
		{"freeze_delay back to the default", func(f *config.Function) { f.FreezeDelay = nil }, []string{"freeze_delay 100ms -> default"},
			func(in *lambda.UpdateFunctionConfigurationInput) bool {
				return in.GatewayOptions != nil && in.GatewayOptions.FreezeDelayMs == nil
			}},
		{"logging_config", func(f *config.Function) {
			f.Logging = &structs.LoggingConfig{LogFormat: "JSON", SystemLogLevel: "WARN", LogGroup: "/custom"}
		}, []string{"logging_config Text -> JSON (application INFO, system WARN) to /custom"},
			func(in *lambda.UpdateFunctionConfigurationInput) bool {
				l := in.LoggingConfig
				return l != nil && l.LogFormat == "JSON" && l.ApplicationLogLevel == "INFO" && l.SystemLogLevel == "WARN" && l.LogGroup == "/custom"
			}},
		{"description", func(f *config.Function) { f.Description = "" }, []string{"description d -> "},
			func(in *lambda.UpdateFunctionConfigurationInput) bool {
				return in.Description != nil && *in.Description == ""
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fn := block()
			c.edit(fn)
			in, diffs := configChanges(current(), fn, false)
			if !reflect.DeepEqual(diffs, c.diffs) {
				t.Errorf("diffs %q, want %q", diffs, c.diffs)
			}
			if !c.check(in) {
				t.Errorf("update %+v", in)
			}
		})
	}
	// The agent's JSON logging, gone from the block, is set back to Text.
	cur := current()
	cur.LoggingConfig = &lambda.LoggingConfig{LogFormat: "JSON", LogGroup: "/aws/lambda/fn", ApplicationLogLevel: "DEBUG", SystemLogLevel: "INFO"}
	in, diffs := configChanges(cur, block(), false)
	if !reflect.DeepEqual(diffs, []string{"logging_config JSON (application DEBUG, system INFO) -> Text"}) || in.LoggingConfig == nil || in.LoggingConfig.LogFormat != "Text" {
		t.Errorf("logging back to Text: %q %+v", diffs, in.LoggingConfig)
	}
	// The default the agent answers is no change.
	cur.LoggingConfig = &lambda.LoggingConfig{LogFormat: "Text", LogGroup: "/aws/lambda/fn"}
	if _, diffs := configChanges(cur, block(), false); len(diffs) != 0 {
		t.Errorf("the default logging: %q", diffs)
	}
	// A function created without storage or options reads as the defaults.
	bare := current()
	bare.EphemeralStorage, bare.GatewayOptions = nil, nil
	fn := block()
	fn.FreezeDelay = nil
	if _, diffs := configChanges(bare, fn, false); !reflect.DeepEqual(diffs, []string{"ephemeral_storage_mb 0 -> 512"}) {
		t.Errorf("a bare configuration: %q", diffs)
	}
}

func TestKeyDiffAndRouting(t *testing.T) {
	if got := keyDiff(map[string]string{"A": "1", "B": "2"}, map[string]string{"B": "3", "C": "4"}); got != "-A ~B +C" {
		t.Errorf("keyDiff: %q", got)
	}
	if got := routingText(map[string]float64{"4": 0.1}); got != " + 10% to 4" {
		t.Errorf("routingText: %q", got)
	}
	if got := routingText(nil); got != "" {
		t.Errorf("routingText of none: %q", got)
	}
	if !strings.Contains(reservedText(nil), "none") || reservedText(&[]int{7}[0]) != "7" {
		t.Error("reservedText")
	}
}

// trigger is a trigger block of function fn as config decodes it (retries -1, enabled).
func trigger(name, source string) *config.Trigger {
	return &config.Trigger{Trigger: structs.Trigger{Function: "fn", Name: name, Plugin: "queue", Source: source,
		MaximumRetryAttempts: -1, Enabled: true}}
}

func TestTriggerDiffs(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	cases := []struct {
		name  string
		edit  func(*structs.Trigger)
		diffs []string
	}{
		{"unchanged", func(*structs.Trigger) {}, nil},
		{"batch", func(t *structs.Trigger) { t.BatchSize, t.BatchWindow = 50, 2*time.Second },
			[]string{"batch_size default -> 50", "batch_window 0s -> 2s"}},
		{"qualifier and source", func(t *structs.Trigger) { t.Qualifier, t.Source = "live", "orders-v2" },
			[]string{"source orders -> orders-v2", "qualifier none -> live"}},
		{"starting position", func(t *structs.Trigger) { t.StartingPosition, t.StartingPositionTimestamp = structs.AtTimestamp, at },
			[]string{"starting_position default -> AT_TIMESTAMP", "starting_position_timestamp none -> 2026-01-02T15:04:05Z"}},
		{"retries, age, flags", func(t *structs.Trigger) {
			t.MaximumRetryAttempts, t.MaximumRecordAge, t.BisectBatchOnFunctionError, t.ReportBatchItemFailures, t.Enabled = 3, time.Hour, true, true, false
		}, []string{"maximum_retry_attempts -1 -> 3", "maximum_record_age none -> 1h0m0s", "bisect_batch_on_function_error false -> true",
			"report_batch_item_failures false -> true", "enabled true -> false"}},
		{"options and destination", func(t *structs.Trigger) { t.Options, t.OnFailure = map[string]string{"k": "v"}, "queue:dlq" },
			[]string{"options +k", "on_failure none -> queue:dlq"}},
		{"plugin", func(t *structs.Trigger) { t.Plugin = "stream" }, []string{"plugin queue -> stream"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old := trigger("orders", "orders").Trigger
			old.UUID, old.LastModified = "u-1", time.Now()
			want := old
			want.UUID, want.LastModified = "", time.Time{}
			c.edit(&want)
			if got := triggerDiffs(&old, &want); !reflect.DeepEqual(got, c.diffs) {
				t.Errorf("diffs %q, want %q", got, c.diffs)
			}
			if same := old.SameSettings(&want); same != (len(c.diffs) == 0) {
				t.Errorf("SameSettings %v with diffs %q", same, c.diffs)
			}
		})
	}
	// An empty options map is no options.
	a, b := trigger("t", "s").Trigger, trigger("t", "s").Trigger
	b.Options = map[string]string{}
	if got := triggerDiffs(&a, &b); len(got) != 0 {
		t.Errorf("nil and empty options: %q", got)
	}
}
