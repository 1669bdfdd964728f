package gateway

import (
	"math"
	"sync"
	"testing"

	"github.com/lambdagw/gateway/internal/structs"
)

// TestRouteWeights: a weighted alias sends its second version exactly its share of any run of
// calls (within one call), also under concurrent callers, and a new revision starts afresh.
func TestRouteWeights(t *testing.T) {
	for _, w := range []float64{0, 0.01, 0.1, 1.0 / 3, 0.5, 0.9, 0.999} {
		g := &Gateway{}
		a := &structs.Alias{Function: "fn", Name: "live", FunctionVersion: "3", AdditionalVersionWeights: map[string]float64{"4": w}, RevisionID: "r1"}
		got := 0
		for k := 1; k <= 2000; k++ {
			switch v := g.route(a); v {
			case "4":
				got++
			case "3":
			default:
				t.Fatalf("weight %v: routed to %q", w, v)
			}
			if want := math.Floor(float64(k) * w); math.Abs(float64(got)-want) > 1 {
				t.Fatalf("weight %v: %d of the first %d calls to version 4, want %v", w, got, k, want)
			}
		}
	}

	g := &Gateway{}
	a := &structs.Alias{Function: "fn", Name: "live", FunctionVersion: "3", AdditionalVersionWeights: map[string]float64{"4": 0.25}, RevisionID: "r1"}
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				v := g.route(a)
				mu.Lock()
				counts[v]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counts["4"] != 1000 || counts["3"] != 3000 {
		t.Errorf("4000 concurrent calls at 25%%: %v", counts)
	}
	// Without weights every call goes to the alias's version.
	plain := &structs.Alias{Function: "fn", Name: "stable", FunctionVersion: "2"}
	for i := 0; i < 10; i++ {
		if v := g.route(plain); v != "2" {
			t.Fatalf("an unweighted alias routed to %q", v)
		}
	}
}
