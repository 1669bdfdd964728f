package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
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
	if in, diffs := configChanges(current(), block()); len(diffs) != 0 || !reflect.DeepEqual(in, &lambda.UpdateFunctionConfigurationInput{}) {
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
			[]string{"environment ~A -B +C"},
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
			in, diffs := configChanges(current(), fn)
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
	if _, diffs := configChanges(bare, fn); !reflect.DeepEqual(diffs, []string{"ephemeral_storage_mb 0 -> 512"}) {
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
	got := planNew(fn, &codepkg.Package{Size: 3 << 20})
	want := "to create (3.0 MB to upload); reserved_concurrency none -> 3; version 1 to publish; alias live to create (-> 1 + 10% to 2); provisioned_concurrency live none -> 2; URL to create"
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
