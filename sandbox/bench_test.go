package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// BenchmarkWarmInvoke measures a warm invocation through the manager and the Runtime API with
// a real aws-lambda-go runtime, per driver, the environment frozen after every call (and thawed
// by the next) or kept thawed between calls.
func BenchmarkWarmInvoke(b *testing.B) {
	if d := os.Getenv("BENCH_CODE"); d != "" {
		codeDir = d
	}
	for _, dc := range drivers() {
		for _, delay := range []time.Duration{0, time.Second} {
			b.Run(fmt.Sprintf("%s/freeze_delay=%s", dc.name, delay), func(b *testing.B) {
				h := newHarness(b, dc.new(b), nil)
				fn := testFunction("bench", func(f *structs.Function) { f.FreezeDelay = &delay })
				ctx := context.Background()
				if _, err := h.m.Invoke(ctx, fn, request(`{}`)); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := h.m.Invoke(ctx, fn, &sandbox.Request{RequestID: "r", Payload: []byte(`{}`)}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkWarmInvokeParallel runs 4 callers at once (one environment each once warm).
func BenchmarkWarmInvokeParallel(b *testing.B) {
	for _, dc := range drivers() {
		for _, delay := range []time.Duration{0, time.Second} {
			b.Run(fmt.Sprintf("%s/freeze_delay=%s", dc.name, delay), func(b *testing.B) {
				h := newHarness(b, dc.new(b), nil)
				fn := testFunction("benchp", func(f *structs.Function) { f.FreezeDelay = &delay })
				ctx := context.Background()
				b.SetParallelism(2) // 2 x GOMAXPROCS(2) = 4 callers
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := h.m.Invoke(ctx, fn, &sandbox.Request{RequestID: "r", Payload: []byte(`{}`)}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(h.m.Stats().Environments), "envs")
			})
		}
	}
}
