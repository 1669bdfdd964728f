//go:build linux && cgo

package libcontainer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

func TestCPUSharesFollowMemory(t *testing.T) {
	for _, c := range []struct {
		mb   int
		want uint64
	}{{128, 1024}, {256, 2048}, {1769, 14152}, {10240, 81920}, {1, 8}, {100000, 262144}} {
		if got := cpuShares(c.mb); got != c.want {
			t.Errorf("cpuShares(%d) = %d, want %d", c.mb, got, c.want)
		}
	}
}

func TestCPUSetSpreadsByMemory(t *testing.T) {
	s := &cpuSet{cpus: []int{0, 1, 2, 3}, load: map[int]int{}}
	a, b := s.take(128), s.take(1769)
	if a != "0" || b != "1" {
		t.Fatalf("two small environments on %q and %q, want 0 and 1", a, b)
	}
	// 4,000 MB buys three CPUs, the least used first.
	c := s.take(4000)
	if c != "0,2,3" {
		t.Fatalf("4000 MB environment on %q, want 0,2,3", c)
	}
	s.release(a)
	s.release(b)
	s.release(c)
	for cpu, n := range s.load {
		if n != 0 {
			t.Fatalf("CPU %d still has %d environments after release", cpu, n)
		}
	}
	if all := s.take(10240); all != "0,1,2,3" {
		t.Fatalf("10,240 MB on %q, want every CPU", all)
	}
	if none := (&cpuSet{load: map[int]int{}}).take(128); none != "" {
		t.Fatalf("unknown CPUs gave %q, want no restriction", none)
	}
}

// needFreezerV1 skips where the v1 freezer cannot be driven; CI runs as root on cgroup v1.
func needFreezerV1(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups; CI runs as root")
	}
	if cgroups.IsCgroup2UnifiedMode() {
		t.Skip("the v1 freezer is driven directly only on cgroup v1; v2 uses libcontainer's Pause")
	}
	if _, err := os.Stat(freezerDir); err != nil {
		t.Skip("no v1 freezer hierarchy")
	}
}

func TestFreezeAndThawARunningTask(t *testing.T) {
	needFreezerV1(t)
	dir := filepath.Join(freezerDir, "lambdagw-test", fmt.Sprintf("freezer-%d", time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A busy task: the freezer has to stop it on a CPU, not just catch it asleep.
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		_ = os.Remove(dir)
		t.Fatal(err)
	}
	// One cleanup, in this order: a frozen task cannot die, and a cgroup with a task cannot go.
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.Remove(dir)
		_ = os.Remove(filepath.Dir(dir))
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	st, err := openCgroupFile(filepath.Join(dir, "freezer.state"), os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	fz := &freezer{state: st}
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := fz.freeze(ctx)
		cancel()
		if err != nil {
			t.Fatalf("freeze %d: %v", i, err)
		}
		if got := readState(t, dir); got != "FROZEN" {
			t.Fatalf("after freeze %d the cgroup is %s", i, got)
		}
		if !fz.frozen() {
			t.Fatal("frozen() is false on a frozen cgroup")
		}
		if err := fz.thaw(); err != nil {
			t.Fatal(err)
		}
		if got := readState(t, dir); got != "THAWED" {
			t.Fatalf("after thaw %d the cgroup is %s", i, got)
		}
	}
	// A freeze whose context ended before it began (an invocation took the environment back)
	// leaves the cgroup alone.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fz.freeze(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("freeze with a cancelled context: %v, want context.Canceled", err)
	}
	if got := readState(t, dir); got != "THAWED" {
		t.Fatalf("after a cancelled freeze the cgroup is %s", got)
	}
}

func TestDriverKeepsAFrozenAnchorUntilClose(t *testing.T) {
	needFreezerV1(t)
	parent := fmt.Sprintf("/lambdagw-test/anchor-%d", time.Now().UnixNano())
	d, err := New(Config{WorkDir: t.TempDir(), CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() }) // idempotent; removes the anchor if an assertion failed
	anchor := filepath.Join(freezerDir, parent, anchorName)
	if got := readState(t, anchor); got != "FROZEN" {
		t.Fatalf("anchor cgroup is %s, want FROZEN", got)
	}
	// A sweep after a crash keeps the anchor (it is not a leftover environment).
	if err := d.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readState(t, anchor); got != "FROZEN" {
		t.Fatalf("anchor cgroup after Sweep is %s, want FROZEN", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(anchor); !os.IsNotExist(err) {
		t.Fatalf("anchor cgroup left behind after Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(freezerDir, parent)); !os.IsNotExist(err) {
		t.Fatalf("cgroup parent left behind after Close: %v", err)
	}
}

func readState(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
