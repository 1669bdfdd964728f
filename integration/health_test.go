package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// healthAnswer is /v1/health's body.
type healthAnswer struct {
	Status string `json:"status"`
	Checks map[string]struct {
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"checks"`
}

// getHealth reads path of a's API: its status and body.
func getHealth(t *testing.T, a *agentProc, path string) (int, []byte) {
	t.Helper()
	resp, err := a.client.Get(a.addr + path)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, a.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestHealth: on a real 3-node cluster every node answers 200 on /v1/health (each check ok,
// the leader named) and on /v1/health/ready; once two nodes are killed the survivor reports
// its raft check failing (503) and is not ready (503), while still answering at once.
func TestHealth(t *testing.T) {
	needRoot(t)
	nodes := startCluster(t, "h", 3)
	var leader string
	waitFor(t, "a leader", 30*time.Second, func() bool { _, leader = members(t, nodes[0]); return leader != "" })
	for _, a := range nodes {
		waitFor(t, a.name+" healthy", 30*time.Second, func() bool { s, _ := getHealth(t, a, "/v1/health"); return s == 200 })
		status, body := getHealth(t, a, "/v1/health")
		var h healthAnswer
		if err := json.Unmarshal(body, &h); err != nil || status != 200 || h.Status != "ok" {
			t.Fatalf("%s /v1/health: %d %s (%v)", a.name, status, body, err)
		}
		for _, name := range []string{"raft", "store", "sandbox", "disk", "plugins", "node"} {
			if c, ok := h.Checks[name]; !ok || c.Status != "ok" {
				t.Errorf("%s: check %s: %+v, want ok", a.name, name, c)
			}
		}
		if d := h.Checks["raft"].Detail; d != "leader "+leader {
			t.Errorf("%s: raft detail %q, want %q", a.name, d, "leader "+leader)
		}
		if strings.Contains(string(body), a.dataDir) {
			t.Errorf("%s: /v1/health names the data dir: %s", a.name, body)
		}
		if status, body := getHealth(t, a, "/v1/health/ready"); status != 200 || !strings.Contains(string(body), `"ready"`) {
			t.Errorf("%s /v1/health/ready: %d %s", a.name, status, body)
		}
	}

	// Kill two nodes (no leave): the survivor has no quorum.
	survivor := nodes[2]
	for _, a := range nodes[:2] {
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
	var h healthAnswer
	waitFor(t, "the survivor to report its raft check failing", 60*time.Second, func() bool {
		status, body := getHealth(t, survivor, "/v1/health")
		h = healthAnswer{}
		_ = json.Unmarshal(body, &h)
		return status == http.StatusServiceUnavailable && h.Status == "failing" && h.Checks["raft"].Status == "failing"
	})
	if d := h.Checks["raft"].Detail; !strings.Contains(d, "no raft leader") {
		t.Errorf("raft detail %q, want it to say no leader is known", d)
	}
	if c := h.Checks["disk"]; c.Status != "ok" {
		t.Errorf("the disk check failed with the raft one: %+v", c)
	}
	status, body := getHealth(t, survivor, "/v1/health/ready")
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "not ready") {
		t.Errorf("/v1/health/ready without a quorum: %d %s", status, body)
	}
}
