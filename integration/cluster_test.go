package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// startCluster starts n agents that form a cluster with bootstrap_expect, each told the
// others' cluster addresses, and waits until all serve.
func startCluster(t *testing.T, prefix string, n int) []*agentProc {
	t.Helper()
	ports := make([]int, n)
	var join []string
	for i := range ports {
		ports[i] = freePort(t)
		join = append(join, fmt.Sprintf("%q", fmt.Sprintf("127.0.0.1:%d", ports[i])))
	}
	nodes := make([]*agentProc, n)
	for i := range nodes {
		nodes[i] = newAgent(t, agentOptions{node: fmt.Sprintf("%s%d", prefix, i+1), raftPort: ports[i],
			cluster: fmt.Sprintf("bootstrap_expect = %d\n  join = [%s]", n, strings.Join(join, ", "))})
	}
	for _, a := range nodes {
		a.waitHealthy()
	}
	return nodes
}

// members runs `gateway cluster members` against a and returns its lines, and the leader's ID.
func members(t *testing.T, a *agentProc) (lines []string, leader string) {
	t.Helper()
	out, errOut, code := a.cli("cluster", "members", "-address", a.addr)
	if code != 0 {
		t.Fatalf("cluster members on %s exited %d: %s", a.name, code, errOut)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		lines = append(lines, l)
		if f := strings.Fields(l); len(f) >= 3 && f[2] == "leader" {
			leader = f[0]
		}
	}
	return lines, leader
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterFormsAndServes: three nodes form a cluster on their own (bootstrap_expect), a
// write made on a follower is forwarded to the leader and readable at once where it was made,
// every node runs the function (fetching its code from the node it was uploaded to), and a
// fourth node joins with `gateway cluster join` and leaves with `gateway cluster leave`.
func TestClusterFormsAndServes(t *testing.T) {
	needRoot(t)
	nodes := startCluster(t, "cl", 3)
	var leader string
	waitFor(t, "a leader known to every node", 15*time.Second, func() bool {
		ids := map[string]bool{}
		for _, a := range nodes {
			lines, l := members(t, a)
			if len(lines) != 3 || l == "" {
				return false
			}
			ids[l] = true
			leader = l
		}
		return len(ids) == 1
	})
	var follower *agentProc
	for _, a := range nodes {
		if a.name != leader {
			follower = a
			break
		}
	}

	// apply on a follower: forwarded to the leader, visible on the follower when apply returns.
	out, errOut, code := follower.cli("apply", "-address", follower.addr, writeFunctions(t, functionsHCL()))
	if code != 0 {
		t.Fatalf("apply on follower %s exited %d:\n%s\n%s", follower.name, code, out, errOut)
	}
	if out, _, code := follower.cli("plan", "-address", follower.addr, writeFunctions(t, functionsHCL())); code != 0 {
		t.Fatalf("plan on the same follower right after apply exited %d (the write is not visible there):\n%s", code, out)
	}

	// Every node invokes it; those without the code fetch it from the follower.
	for _, a := range nodes {
		a := a
		waitFor(t, "fn on "+a.name, 10*time.Second, func() bool {
			r := a.invoke("fn", `{"name":"`+a.name+`"}`, nil)
			return r.status == 200 && strings.Contains(string(r.body), "Hello, "+a.name+"!")
		})
	}
	fetched := 0
	for _, a := range nodes {
		if strings.Contains(a.out.String(), "fetched code from a peer") {
			fetched++
		}
	}
	if fetched != 2 {
		t.Errorf("%d nodes fetched the code from a peer, want the 2 it was not uploaded to", fetched)
	}

	// A fourth node, started without join, joins by the CLI and leaves again.
	extra := startAgent(t, agentOptions{node: "cl4", cluster: "bootstrap = false"})
	if out, errOut, code := extra.cli("cluster", "join", "-address", extra.addr, nodes[0].raftAddr); code != 0 {
		t.Fatalf("cluster join exited %d:\n%s\n%s", code, out, errOut)
	}
	waitFor(t, "cl4 to serve fn", 15*time.Second, func() bool {
		r := extra.invoke("fn", `{"name":"four"}`, nil)
		return r.status == 200 && strings.Contains(string(r.body), "Hello, four!")
	})
	if lines, _ := members(t, nodes[0]); len(lines) != 4 {
		t.Fatalf("members after the join:\n%s", strings.Join(lines, "\n"))
	}
	if out, errOut, code := extra.cli("cluster", "leave", "-address", extra.addr); code != 0 {
		t.Fatalf("cluster leave exited %d:\n%s\n%s", code, out, errOut)
	}
	select {
	case <-extra.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("the agent that left did not stop")
	}
	if lines, _ := members(t, nodes[0]); len(lines) != 3 {
		t.Fatalf("members after the leave:\n%s", strings.Join(lines, "\n"))
	}
	for _, a := range nodes {
		a.stop()
		checkNothingLeft(t, a)
	}
}
