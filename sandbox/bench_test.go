package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
	"github.com/lambdagw/gateway/sandbox/libcontainer"
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
				benchWarm(b, dc.new(b), delay)
			})
		}
	}
}

// BenchmarkIsolation is what the syscall filter and user namespaces cost, side by side: a cold
// start with no standby environment (libseccomp compiles the filter in each environment's init,
// and the user namespace is made and mapped there, which a standby has already done), and a warm
// invocation frozen after every call. Run the settings alternately, e.g. -count 3, and compare
// like with like.
func BenchmarkIsolation(b *testing.B) {
	for _, c := range []struct {
		name    string
		seccomp string
		userns  bool
	}{
		{"none", libcontainer.SeccompUnconfined, false},
		{"seccomp", libcontainer.SeccompDefault, false},
		{"seccomp+userns", libcontainer.SeccompDefault, true},
	} {
		b.Run("cold/"+c.name, func(b *testing.B) {
			h := newHarness(b, newLibcontainer(b, c.seccomp, c.userns), nil)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A new revision each time: no warm or standby environment can serve it.
				fn := testFunction("cold", func(f *structs.Function) { f.RevisionID = fmt.Sprint("rev-", i) })
				if _, err := h.m.Invoke(ctx, fn, request(`{}`)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("warm/"+c.name, func(b *testing.B) { benchWarm(b, newLibcontainer(b, c.seccomp, c.userns), 0) })
	}
}

// benchWarm times warm invocations of one environment of d, with the freeze delay given, after
// a first call that starts it.
func benchWarm(b *testing.B, d sandbox.Driver, delay time.Duration) {
	h := newHarness(b, d, nil)
	fn := testFunction("bench", func(f *structs.Function) { f.FreezeDelay = &delay })
	ctx := context.Background()
	if _, err := h.m.Invoke(ctx, fn, request(`{}`)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.m.Invoke(ctx, fn, &invoke.Request{RequestID: "r", Payload: []byte(`{}`)}); err != nil {
			b.Fatal(err)
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
						if _, err := h.m.Invoke(ctx, fn, &invoke.Request{RequestID: "r", Payload: []byte(`{}`)}); err != nil {
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
