package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/internal/codepkg"
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
	// A function created without storage or options reads as the defaults.
	bare := current()
	bare.EphemeralStorage, bare.GatewayOptions = nil, nil
	fn := block()
	fn.FreezeDelay = nil
	if _, diffs := configChanges(bare, fn, false); !reflect.DeepEqual(diffs, []string{"ephemeral_storage_mb 0 -> 512"}) {
		t.Errorf("a bare configuration: %q", diffs)
	}
}

func TestPlanNew(t *testing.T) {
	n := 3
	fn := block()
	fn.Publish, fn.ReservedConcurrency = true, &n
	fn.Aliases = []*config.Alias{{Name: "live", Version: "1", Routing: map[string]float64{"2": 0.1}}}
	fn.Provisioned = []*config.Provisioned{{Qualifier: "live", Count: 2}}
	fn.URL = &config.FunctionURL{AuthType: "NONE"}
	orders := trigger("orders", "orders")
	orders.Qualifier = "live"
	fn.Triggers = []*config.Trigger{orders}
	got := planNew(fn, &codepkg.Package{Size: 3 << 20})
	want := "to create (3.0 MB zip to upload); reserved_concurrency none -> 3; version 1 to publish; alias live to create (-> 1 + 10% to 2); " +
		"provisioned_concurrency live none -> 2; URL to create; trigger orders to create (queue: orders -> live)"
	if got != want {
		t.Errorf("planNew:\n%s\nwant\n%s", got, want)
	}
}

func TestEnvDiffAndRouting(t *testing.T) {
	if got := envDiff(map[string]string{"A": "1", "B": "2"}, map[string]string{"B": "3", "C": "4"}); got != "-A ~B +C" {
		t.Errorf("envDiff: %q", got)
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

func TestTriggerChanges(t *testing.T) {
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
			if got := triggerChanges(&old, &want); !reflect.DeepEqual(got, c.diffs) {
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
	if got := triggerChanges(&a, &b); len(got) != 0 {
		t.Errorf("nil and empty options: %q", got)
	}
}

// triggerAgent serves the /v1 trigger routes from a map, as an agent would, and counts writes.
type triggerAgent struct {
	mu       sync.Mutex
	triggers map[string]*structs.Trigger // by name; every one of function fn
	writes   []string
}

func (g *triggerAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	const prefix = "/v1/functions/fn/triggers"
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, prefix), "/")
	switch {
	case r.Method == "GET" && r.URL.Path == prefix:
		out := struct{ Triggers []*structs.Trigger }{Triggers: []*structs.Trigger{}}
		for _, t := range g.triggers {
			out.Triggers = append(out.Triggers, t)
		}
		sort.Slice(out.Triggers, func(i, j int) bool { return out.Triggers[i].Name < out.Triggers[j].Name })
		_ = json.NewEncoder(w).Encode(out)
	case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, prefix+"/"):
		var t structs.Trigger
		if err := json.NewDecoder(r.Body).Decode(&t); err != nil {
			w.WriteHeader(400)
			return
		}
		t.Function, t.Name, t.UUID, t.LastModified = "fn", name, "uuid-"+name, time.Now()
		g.triggers[name] = &t
		g.writes = append(g.writes, "put "+name)
		_ = json.NewEncoder(w).Encode(&t)
	case r.Method == "DELETE" && strings.HasPrefix(r.URL.Path, prefix+"/"):
		delete(g.triggers, name)
		g.writes = append(g.writes, "delete "+name)
		w.WriteHeader(204)
	default:
		w.Header().Set("X-Amzn-ErrorType", "UnknownOperationException")
		w.WriteHeader(404)
	}
}

// TestApplyTriggers: plan reports the trigger blocks' differences with the agent without
// writing; apply creates, updates and deletes until a second pass finds nothing to do.
func TestApplyTriggers(t *testing.T) {
	kept, changed, gone := trigger("kept", "k"), trigger("changed", "c"), trigger("gone", "g")
	agent := &triggerAgent{triggers: map[string]*structs.Trigger{}}
	for _, tr := range []*config.Trigger{kept, changed, gone} {
		stored := tr.Trigger
		stored.UUID, stored.LastModified = "uuid-"+tr.Name, time.Now()
		agent.triggers[tr.Name] = &stored
	}
	srv := httptest.NewServer(agent)
	t.Cleanup(srv.Close)
	client, err := api.New(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	fn := block()
	newer := trigger("changed", "c")
	newer.BatchSize, newer.Qualifier = 20, "live"
	added := trigger("added", "orders")
	added.Enabled = false
	fn.Triggers = []*config.Trigger{kept, newer, added}

	plan, err := applyTriggers(ctx, client, fn, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"trigger changed to update (qualifier none -> live, batch_size default -> 20)",
		"trigger added to create (queue: orders, disabled)", "trigger gone to delete"}
	if !reflect.DeepEqual(plan, want) || len(agent.writes) != 0 {
		t.Fatalf("plan %q (writes %q), want %q", plan, agent.writes, want)
	}

	done, err := applyTriggers(ctx, client, fn, false)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"trigger changed updated (qualifier none -> live, batch_size default -> 20)",
		"trigger added created (queue: orders, disabled)", "trigger gone deleted"}
	if !reflect.DeepEqual(done, want) || !reflect.DeepEqual(agent.writes, []string{"put changed", "put added", "delete gone"}) {
		t.Fatalf("apply %q (writes %q), want %q", done, agent.writes, want)
	}
	if agent.triggers["changed"].UUID != "uuid-changed" || agent.triggers["changed"].BatchSize != 20 {
		t.Fatalf("the updated trigger: %+v", agent.triggers["changed"])
	}

	if again, err := applyTriggers(ctx, client, fn, true); err != nil || len(again) != 0 {
		t.Fatalf("a plan after apply: %q, %v", again, err)
	}
}

// TestFunctionsListsTriggers: gateway functions shows each function's triggers, "-" for none.
func TestFunctionsListsTriggers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/2015-03-31/functions/":
			_, _ = w.Write([]byte(`{"Functions":[{"FunctionName":"idle","Runtime":"provided.al2023"},{"FunctionName":"worker","Runtime":"provided.al2023"}]}`))
		case "/v1/triggers":
			_, _ = w.Write([]byte(`{"Triggers":[{"function":"worker","name":"orders","plugin":"queue","source":"orders","qualifier":"live","enabled":true},` +
				`{"function":"worker","name":"audit","plugin":"stream","source":"events","enabled":false}]}`))
		default:
			_, _ = w.Write([]byte(`{"FunctionUrlConfigs":[]}`))
		}
	}))
	t.Cleanup(srv.Close)
	ui := cli.NewMockUi()
	if code := (&functionsCommand{ui: ui}).Run([]string{"-address", srv.URL}); code != 0 {
		t.Fatalf("exit %d: %s", code, ui.ErrorWriter.String())
	}
	lines := strings.Split(strings.TrimSpace(ui.OutputWriter.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "TRIGGERS") || !strings.HasSuffix(lines[1], "-") ||
		!strings.HasSuffix(lines[2], "orders (queue: orders -> live), audit (stream: events, disabled)") {
		t.Fatalf("listing:\n%s", ui.OutputWriter.String())
	}
}
