package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
	"github.com/lambdagw/gateway/sandbox/cni"
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

// BenchmarkIsolation is what the syscall filter, user namespaces and a private network cost,
// side by side: a cold start with no standby environment (libseccomp compiles the filter in each
// environment's init, the user namespace is made and mapped there, and CNI ADD runs then, all of
// which a standby has already done), and a warm invocation frozen after every call. Run the
// settings alternately, e.g. -count 3, and compare like with like.
func BenchmarkIsolation(b *testing.B) {
	for _, c := range []struct {
		name    string
		seccomp string
		userns  bool
		network bool
	}{
		{"none", libcontainer.SeccompUnconfined, false, false},
		{"seccomp", libcontainer.SeccompDefault, false, false},
		{"seccomp+userns", libcontainer.SeccompDefault, true, false},
		{"seccomp+userns+network", libcontainer.SeccompDefault, true, true},
	} {
		driver := func(b *testing.B) sandbox.Driver {
			if !c.network {
				return newLibcontainer(b, c.seccomp, c.userns)
			}
			return newLibcontainerWith(b, c.seccomp, c.userns, benchNetwork(b))
		}
		onNet := func(f *structs.Function) {
			if c.network {
				f.Network = &structs.FunctionNetwork{Name: "bench"}
			}
		}
		b.Run("cold/"+c.name, func(b *testing.B) {
			h := newHarness(b, driver(b), nil)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A new revision each time: no warm or standby environment can serve it.
				fn := testFunction("cold", func(f *structs.Function) { f.RevisionID = fmt.Sprint("rev-", i); onNet(f) })
				if _, err := h.m.Invoke(ctx, fn, request(`{}`)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("warm/"+c.name, func(b *testing.B) { benchWarm(b, driver(b), 0, onNet) })
	}
}

// benchNetwork is a private network "bench" (a bridge of the agent's kind, 10.253.0.0/24, any
// egress) for the benchmarks, removed when b ends.
func benchNetwork(b *testing.B) libcontainer.Networks {
	_, subnet, _ := net.ParseCIDR("10.253.0.0/24")
	work := b.TempDir()
	n := &cni.Network{Name: "bench", Bridge: cni.BridgeName("bench"), Subnet: subnet, AllowAll: true,
		ConfList: cni.BridgeConfList("bench", subnet, filepath.Join(work, "ipam"))}
	m, err := cni.New(context.Background(), cni.Config{WorkDir: work, Networks: []*cni.Network{n}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// benchWarm times warm invocations of one environment of d, with the freeze delay given, after
// a first call that starts it.
func benchWarm(b *testing.B, d sandbox.Driver, delay time.Duration, mods ...func(*structs.Function)) {
	h := newHarness(b, d, nil)
	fn := testFunction("bench", func(f *structs.Function) {
		f.FreezeDelay = &delay
		for _, m := range mods {
			m(f)
		}
	})
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

// BenchmarkExtensions is what extensions cost a warm invocation (frozen after each call), side
// by side: none; an internal and an external extension registered for INVOKE that do nothing
// with it; and a function writing lines with an external extension that subscribes to
// the Telemetry API for them (tap) or does not (idle), BENCH_LINES lines a call (default 2). It reports the median call ("p50-µs"), the
// lines written a second, and for tap what its subscriber received or was told was dropped
// ("lost" counts what is neither). Run the cases alternately and compare like with like.
func BenchmarkExtensions(b *testing.B) {
	if d := os.Getenv("BENCH_CODE"); d != "" {
		codeDir = d
	}
	lines := 2 // a call; BENCH_LINES sets it
	if n, err := strconv.Atoi(os.Getenv("BENCH_LINES")); err == nil && n > 0 {
		lines = n
	}
	for _, c := range []struct {
		name    string
		exts    []string
		env     map[string]string
		payload string
	}{
		{"invoke/none", nil, nil, `{}`},
		{"invoke/internal", nil, map[string]string{"TEST_EXTENSION": "quiet"}, `{}`},
		{"invoke/external", []string{"quiet"}, nil, `{}`},
		{"logs/idle", []string{"idle"}, nil, `{"mode":"lines","n":LINES}`},
		{"logs/tap", []string{"tap"}, nil, `{"mode":"lines","n":LINES}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			sha := func(ch byte) string { return strings.Repeat(string(ch), 64) }
			code := shaCode{sha('c'): codeDir, sha('x'): extensionLayer(b, c.exts...)}
			h := newHarness(b, drivers()[0].new(b), func(mc *sandbox.ManagerConfig) { mc.Code = code })
			delay := time.Duration(0)
			if os.Getenv("BENCH_FREEZE_DELAY") != "" {
				delay, _ = time.ParseDuration(os.Getenv("BENCH_FREEZE_DELAY"))
			}
			fn := testFunction("benchext", func(f *structs.Function) {
				f.FreezeDelay = &delay
				f.CodeSha256 = sha('c')
				f.Environment = c.env
				if len(c.exts) > 0 {
					f.Layers = []structs.FunctionLayer{{Name: "exts", Version: 1, CodeSha256: sha('x')}}
				}
			})
			ctx := context.Background()
			if _, err := h.m.Invoke(ctx, fn, request(`{}`)); err != nil {
				b.Fatal(err)
			}
			payload := []byte(strings.Replace(c.payload, "LINES", strconv.Itoa(lines), 1))
			times := make([]time.Duration, 0, b.N)
			var ru0, ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				resp, err := h.m.Invoke(ctx, fn, &invoke.Request{RequestID: "r", Payload: payload})
				if err != nil || resp.FunctionError {
					b.Fatal(err, resp)
				}
				times = append(times, time.Since(t0))
			}
			elapsed := time.Since(start)
			b.StopTimer()
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
			b.ReportMetric(float64(cpu)/1e3/float64(b.N), "agent-cpu-µs")
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2])/1e3, "p50-µs")
			if strings.HasPrefix(c.name, "logs/") {
				b.ReportMetric(float64(lines*b.N)/elapsed.Seconds(), "lines/s")
			}
			if c.name == "logs/tap" {
				// Every line reaches the subscriber or is counted dropped (the 100 ms buffer
				// delivers the rest, while the environment runs).
				var got map[string]int
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(150 * time.Millisecond) {
					resp, err := h.m.Invoke(ctx, fn, request(`{"mode":"fetch","path":"http://sandbox.localdomain:4246/counts"}`))
					if err != nil {
						b.Fatal(err)
					}
					var out struct{ Body string }
					_ = json.Unmarshal(resp.Payload, &out)
					_ = json.Unmarshal([]byte(out.Body), &got)
					if got["function"]+got["dropped"] >= lines*b.N {
						break
					}
				}
				b.ReportMetric(float64(got["dropped"]), "dropped")
				b.ReportMetric(float64(lines*b.N-got["function"]-got["dropped"]), "lost")
			}
		})
	}
}
