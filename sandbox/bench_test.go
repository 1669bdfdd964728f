package sandbox_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// BenchmarkWarmInvoke measures a warm invocation through the manager and the Runtime API with
// a real aws-lambda-go runtime, per driver, the environment kept thawed between calls.
func BenchmarkWarmInvoke(b *testing.B) {
	if d := os.Getenv("BENCH_CODE"); d != "" {
		codeDir = d
	}
	for _, dc := range drivers() {
		b.Run(dc.name, func(b *testing.B) {
			h := newHarness(b, dc.new(b), nil)
			delay := time.Second
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

// BenchmarkWarmInvokeParallel runs 4 callers at once (one environment each once warm).
func BenchmarkWarmInvokeParallel(b *testing.B) {
	for _, dc := range drivers() {
		b.Run(dc.name, func(b *testing.B) {
			h := newHarness(b, dc.new(b), nil)
			delay := time.Second
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
