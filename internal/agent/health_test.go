package agent

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/gateway/httpapi"
	"github.com/lambdagw/gateway/plugins/host"
)

type fakeRaft struct {
	leader          string
	applied, commit string
}

func (f fakeRaft) Leader() (string, string) { return f.leader, "" }
func (f fakeRaft) Stats() map[string]string {
	return map[string]string{"applied_index": f.applied, "commit_index": f.commit}
}

func checksByName(cs []httpapi.HealthCheck) map[string]httpapi.HealthCheck {
	m := map[string]httpapi.HealthCheck{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

// TestHealthChecks: each check fails for what it watches, and Ready follows the node, raft and
// store checks.
func TestHealthChecks(t *testing.T) {
	dir := t.TempDir()
	h := &health{raft: fakeRaft{leader: "n2", applied: "100", commit: "120"}, dataDir: dir, sandboxDir: dir}
	h.started.Store(true)
	h.checkSystem()
	got := checksByName(h.Checks())
	for _, name := range []string{"raft", "store", "sandbox", "disk", "plugins", "node"} {
		if !got[name].OK {
			t.Errorf("%s: failing on a healthy node: %q", name, got[name].Detail)
		}
	}
	if got["raft"].Detail != "leader n2" || got["store"].Detail != "applied 100 of 120 committed entries" {
		t.Errorf("details: raft %q store %q", got["raft"].Detail, got["store"].Detail)
	}
	if ok, why := h.Ready(); !ok {
		t.Errorf("not ready: %s", why)
	}

	// A store far behind the commit index.
	h.raft = fakeRaft{leader: "n2", applied: "10", commit: "1000"}
	if c := checksByName(h.Checks())["store"]; c.OK {
		t.Errorf("store 990 entries behind counted as caught up: %q", c.Detail)
	}
	if ok, _ := h.Ready(); ok {
		t.Error("ready with its store 990 entries behind")
	}
	// No leader: raft and store fail, not ready.
	h.raft = fakeRaft{applied: "10", commit: "10"}
	got = checksByName(h.Checks())
	if got["raft"].OK || got["store"].OK || !strings.Contains(got["raft"].Detail, "no raft leader") {
		t.Errorf("without a leader: raft %+v store %+v", got["raft"], got["store"])
	}
	if ok, why := h.Ready(); ok || !strings.Contains(why, "no raft leader") {
		t.Errorf("ready without a leader (%q)", why)
	}
	h.raft = fakeRaft{leader: "n1", applied: "5", commit: "5"}

	// A plugin that is not running.
	h.plugins = func() []host.Status {
		return []host.Status{{Name: "queue", State: host.StateRunning}, {Name: "s3", State: host.StateFailed, Restarts: 3}}
	}
	if c := checksByName(h.Checks())["plugins"]; c.OK || !strings.Contains(c.Detail, "s3 is failed (3 restarts)") {
		t.Errorf("a failed plugin: %+v", c)
	}
	h.plugins = nil

	// A sandbox folder that is not writable (gone), named without its path.
	h.sandboxDir = filepath.Join(dir, "gone")
	h.checkSystem()
	if c := checksByName(h.Checks())["sandbox"]; c.OK || strings.Contains(c.Detail, dir) {
		t.Errorf("a missing sandbox folder: %+v", c)
	}
	// An unreadable cgroup hierarchy.
	h.sandboxDir, h.cgroupRoot = dir, filepath.Join(dir, "no-cgroups")
	h.checkSystem()
	if c := checksByName(h.Checks())["sandbox"]; c.OK || !strings.Contains(c.Detail, "cgroup") {
		t.Errorf("a missing cgroup hierarchy: %+v", c)
	}

	// Draining: the node check fails and the node is not ready.
	h.draining.Store(true)
	if c := checksByName(h.Checks())["node"]; c.OK || !strings.Contains(c.Detail, "draining") {
		t.Errorf("draining: %+v", c)
	}
	if ok, why := h.Ready(); ok || !strings.Contains(why, "draining") {
		t.Errorf("ready while draining (%q)", why)
	}
}

// TestDiskCheck reads the real file system of a folder: it fails when the minimum is above
// the free space, and passes below it.
func TestDiskCheck(t *testing.T) {
	dir := t.TempDir()
	if c := diskCheck(dir, 1, 0.0000001); !c.OK {
		t.Fatalf("1 byte minimum: %+v", c)
	}
	c := diskCheck(dir, 1<<62, 1)
	if c.OK || !strings.Contains(c.Detail, "below the") || strings.Contains(c.Detail, dir) {
		t.Fatalf("an impossible minimum: %+v", c)
	}
	if c := diskCheck(filepath.Join(dir, "missing"), 1, 0.01); c.OK {
		t.Fatalf("a missing folder: %+v", c)
	}
}
