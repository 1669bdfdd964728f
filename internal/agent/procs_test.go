package agent

import (
	"runtime"
	"testing"
)

func TestGoMaxProcs(t *testing.T) {
	for _, c := range []struct{ configured, cpus, want int }{
		{0, 1, 1}, {0, 2, 1}, {0, 3, 1}, {0, 4, 2}, {0, 64, 32}, {3, 2, 3}, {1, 64, 1},
	} {
		if got := goMaxProcs(c.configured, c.cpus); got != c.want {
			t.Errorf("goMaxProcs(%d, %d CPUs) = %d, want %d", c.configured, c.cpus, got, c.want)
		}
	}
}

func TestSetGoMaxProcsLeavesTheEnvironmentsChoice(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(orig)

	t.Setenv("GOMAXPROCS", "")
	if n, set := setGoMaxProcs(3); !set || n != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("configured 3: %d %v (now %d)", n, set, runtime.GOMAXPROCS(0))
	}
	t.Setenv("GOMAXPROCS", "2")
	if n, set := setGoMaxProcs(1); set || n != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("with GOMAXPROCS in the environment: %d %v (now %d)", n, set, runtime.GOMAXPROCS(0))
	}
}
