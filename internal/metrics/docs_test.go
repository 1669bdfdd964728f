package metrics

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// documented are the metric names docs/metrics.md lists (in backquotes).
func documented(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("`(lambdagw_[a-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = true
	}
	return out
}

// TestDashboard: the Grafana dashboard is valid JSON, and every metric its queries name is one
// docs/metrics.md lists (a histogram by its family, without _bucket, _sum, _count).
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../examples/grafana/lambdagw-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	docs := documented(t)
	name := regexp.MustCompile(`lambdagw_[a-z0-9_]+`)
	seen := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				seen++
				family := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if f, ok := strings.CutSuffix(m, suffix); ok && docs[f] {
						family = f
					}
				}
				if !docs[family] {
					t.Errorf("panel %q queries %s, which docs/metrics.md does not list", p.Title, m)
				}
			}
		}
	}
	if seen == 0 {
		t.Error("no query names a lambdagw_ metric")
	}
}

// TestDocumented: every metric family a registry with every part registered exposes is in
// docs/metrics.md (the integration test TestMetrics checks a real agent's, Raft's included).
func TestDocumented(t *testing.T) {
	r := New()
	r.Function("f", region+"f").End(1, 1, "Boom")
	r.Throttled("f", region+"f", ThrottleReserved)
	r.Thawed(1)
	r.Frozen(1)
	if err := r.SetNode(Node{
		Environments: func() map[string]int { return map[string]int{"frozen": 1} },
		Memory:       func() (uint64, uint64) { return 1, 1 },
		Provisioned:  func() []FunctionCount { return []FunctionCount{{"f", "1", 1}} },
		LogLines:     func() (int64, int64) { return 1, 1 },
		Plugins:      func() []PluginState { return []PluginState{{Name: "p", State: "running"}} },
		Async:        func() []AsyncCount { return []AsyncCount{{"f", "succeeded", 1}} },
		Waiting: func(context.Context) ([]AsyncWaiting, error) {
			return []AsyncWaiting{{Function: "f", Waiting: 2, InFlight: 1}}, nil
		},
		Streams: func(context.Context) ([]StreamDepth, error) { return []StreamDepth{{Stream: "S", Messages: 1}}, nil },
	}); err != nil {
		t.Fatal(err)
	}
	docs := documented(t)
	for name := range families(t, r) {
		if strings.HasPrefix(name, Namespace+"_") && !docs[name] {
			t.Errorf("%s is not in docs/metrics.md", name)
		}
	}
}
