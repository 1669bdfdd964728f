package integration

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNet is a bridge in the test's network namespace with one network namespace per node
// behind a veth pair, so a node can be cut off from the others and joined again. The test's
// cleanup removes all of it.
type testNet struct {
	t      *testing.T
	bridge string
	prefix string // 10.77.N
	tag    string
	nodes  []string // netns names
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newTestNet(t *testing.T, n int) *testNet {
	t.Helper()
	tag := fmt.Sprintf("%04x", rand.Intn(1<<16))
	tn := &testNet{t: t, bridge: "gwbr" + tag, prefix: fmt.Sprintf("10.77.%d", 1+rand.Intn(250)), tag: tag}
	t.Cleanup(tn.remove)
	ipCmd(t, "link", "add", tn.bridge, "type", "bridge")
	ipCmd(t, "addr", "add", tn.prefix+".1/24", "dev", tn.bridge)
	ipCmd(t, "link", "set", tn.bridge, "up")
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("gwns%s-%d", tag, i)
		host, peer := fmt.Sprintf("gwh%s%d", tag, i), fmt.Sprintf("gwc%s%d", tag, i)
		ipCmd(t, "netns", "add", ns)
		tn.nodes = append(tn.nodes, ns)
		ipCmd(t, "link", "add", host, "type", "veth", "peer", "name", peer)
		ipCmd(t, "link", "set", peer, "netns", ns)
		ipCmd(t, "link", "set", host, "master", tn.bridge)
		ipCmd(t, "link", "set", host, "up")
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		ipCmd(t, "-n", ns, "addr", "add", tn.ip(i)+"/24", "dev", peer)
		ipCmd(t, "-n", ns, "link", "set", peer, "up")
	}
	return tn
}

func (tn *testNet) ip(i int) string { return fmt.Sprintf("%s.%d", tn.prefix, 10+i) }

// cut separates node i from the other nodes, or (up) joins them again: blackhole routes in
// both directions, more specific than the bridge's subnet. The test itself still reaches every
// node through the bridge's own address.
func (tn *testNet) cut(i int, up bool) {
	op := "add"
	if up {
		op = "del"
	}
	for j := range tn.nodes {
		if j == i {
			continue
		}
		ipCmd(tn.t, "-n", tn.nodes[i], "route", op, "blackhole", tn.ip(j)+"/32")
		ipCmd(tn.t, "-n", tn.nodes[j], "route", op, "blackhole", tn.ip(i)+"/32")
	}
}

func (tn *testNet) remove() {
	for _, ns := range tn.nodes {
		_ = exec.Command("ip", "netns", "del", ns).Run() // its veth pair goes with it
	}
	_ = exec.Command("ip", "link", "del", tn.bridge).Run()
}

// TestClusterPartition: a node cut off from the other two stops taking writes (with an error,
// after the forward's bound) but goes on serving invocations from its own state; the majority
// keeps a leader and takes writes; once the network is back the node catches up.
func TestClusterPartition(t *testing.T) {
	needRoot(t)
	tn := newTestNet(t, 3)
	var join []string
	ports := []int{freePort(t), freePort(t), freePort(t)}
	for i := range ports {
		join = append(join, fmt.Sprintf("%q", fmt.Sprintf("%s:%d", tn.ip(i), ports[i])))
	}
	var nodes []*agentProc
	for i := range ports {
		nodes = append(nodes, newAgent(t, agentOptions{node: fmt.Sprintf("pt%d", i+1), raftPort: ports[i], netns: tn.nodes[i], ip: tn.ip(i),
			cluster: fmt.Sprintf("bootstrap_expect = 3\n  join = [%s]", strings.Join(join, ", "))}))
	}
	for _, a := range nodes {
		a.waitHealthy()
	}
	var leader string
	waitFor(t, "a leader", 15*time.Second, func() bool { _, leader = members(t, nodes[0]); return leader != "" })
	if out, errOut, code := nodes[0].cli("apply", "-address", nodes[0].addr, writeFunctions(t, partitionHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	// Cut off a follower once it serves the function from its own environment.
	cutIdx := 0
	for i, a := range nodes {
		if a.name != leader {
			cutIdx = i
			break
		}
	}
	cutNode := nodes[cutIdx]
	waitFor(t, "count on the node to cut off", 10*time.Second, func() bool { return cutNode.invoke("count", `{}`, nil).status == 200 })
	// It leases two of burst's three reserved slots: two calls at once.
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := cutNode.invoke("burst", `{"mode":"sleep","ms":300}`, nil); r.status != 200 {
				t.Errorf("burst on %s before the cut: %d %s", cutNode.name, r.status, r.body)
			}
		}()
	}
	wg.Wait()
	tn.cut(cutIdx, false)
	// Calls on all three nodes for longer than a lease lives, while the rest of the test goes on.
	load := startBurstLoad(nodes, burstLoad)

	// The cut-off node still runs the function it knows.
	for i := 0; i < 5; i++ {
		if r := cutNode.invoke("count", `{}`, nil); r.status != 200 {
			t.Fatalf("invocation on the cut-off node: %d %s", r.status, r.body)
		}
	}
	// It takes no writes: the forward to the leader fails, with an error, within its bound.
	start := time.Now()
	out, _, code := cutNode.cli("functions", "-address", cutNode.addr)
	if code != 0 || !strings.Contains(out, "count") {
		t.Errorf("reads on the cut-off node: exited %d\n%s", code, out)
	}
	_, errOut, code := cutNode.cli("apply", "-address", cutNode.addr, writeFunctions(t, strings.Replace(partitionHCL(), `timeout      = "10s"`, `timeout      = "11s"`, 1)))
	// Either it finds no leader, or a kept-alive connection to the old one stays unanswered.
	if code == 0 || !(strings.Contains(errOut, "no cluster leader is reachable from this node") || strings.Contains(errOut, "did not answer in time")) {
		t.Fatalf("a write on the cut-off node: exited %d: %s", code, errOut)
	}
	t.Logf("the write on the cut-off node failed after %v: %s", time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(errOut))
	// The majority takes writes (electing a new leader if the cut-off node led).
	var majority *agentProc
	for i, a := range nodes {
		if i != cutIdx {
			majority = a
			break
		}
	}
	if out, errOut, code := majority.cli("apply", "-address", majority.addr, writeFunctions(t, strings.Replace(partitionHCL(), `timeout      = "10s"`, `timeout      = "12s"`, 1))); code != 0 {
		t.Fatalf("a write on the majority exited %d:\n%s\n%s", code, out, errOut)
	}
	checkPartitionedReservation(t, nodes, cutIdx, load())

	// Healed: the node catches up with the write it missed.
	tn.cut(cutIdx, true)
	waitFor(t, "the healed node to catch up", 20*time.Second, func() bool {
		out, _, code := cutNode.cli("plan", "-address", cutNode.addr, writeFunctions(t, strings.Replace(partitionHCL(), `timeout      = "10s"`, `timeout      = "12s"`, 1)))
		return code == 0 && strings.Contains(out, "0 to change")
	})
	for _, a := range nodes {
		a.stop()
		checkNothingLeft(t, a)
	}
}

// burst's reservation in the partition test: the cut-off node leases two of its slots before the
// cut; the majority may grant them again only once that lease has ended plus burst's timeout.
const (
	burstReserved = 3
	burstLoad     = 15 * time.Second // longer than a lease (10 s) plus the function's timeout
)

func partitionHCL() string {
	return clusterFunctionsHCL() + fmt.Sprintf(`
function "burst" {
  runtime              = "provided.al2023"
  code                 = %q
  timeout              = "3s"
  reserved_concurrency = %d
}
`, fnDir, burstReserved)
}

type burstCall struct {
	node   int
	at     time.Duration // when the call was sent, from the start of the load
	status int
	body   []byte
	span   span
}

// startBurstLoad keeps two callers per node invoking burst until d has passed; the returned
// function waits for them and returns every call.
func startBurstLoad(nodes []*agentProc, d time.Duration) func() []burstCall {
	var mu sync.Mutex
	var calls []burstCall
	var wg sync.WaitGroup
	start := time.Now()
	for i, a := range nodes {
		for j := 0; j < 2; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < d {
					at := time.Since(start)
					r := a.invokeWithin(20*time.Second, "burst", `{"mode":"sleep","ms":400}`, nil)
					c := burstCall{node: i, at: at, status: r.status, body: r.body}
					if r.status == 200 {
						var s struct{ Start, End int64 }
						_ = json.Unmarshal(r.body, &s)
						c.span = span{s.Start, s.End}
					} else {
						time.Sleep(50 * time.Millisecond)
					}
					mu.Lock()
					calls = append(calls, c)
					mu.Unlock()
				}
			}()
		}
	}
	return func() []burstCall { wg.Wait(); return calls }
}

// checkPartitionedReservation: across both sides of the partition, never more of burst ran at
// once than its reservation; the cut-off node ran calls while its lease lasted and throttled
// every call after it ended (it cannot renew without the leader); the majority ran calls too.
func checkPartitionedReservation(t *testing.T, nodes []*agentProc, cutIdx int, calls []burstCall) {
	t.Helper()
	var spans []span
	ok := make([]int, len(nodes))
	lateOnCut, lateRanOnCut := 0, 0
	for _, c := range calls {
		switch {
		case c.status == 200:
			if c.span.start == 0 {
				t.Errorf("burst on %s answered %s", nodes[c.node].name, c.body)
				continue
			}
			spans = append(spans, c.span)
			ok[c.node]++
		case c.status == 429 && strings.Contains(string(c.body), "ReservedFunctionConcurrentInvocationLimitExceeded"):
		default:
			t.Errorf("burst on %s: %d %s", nodes[c.node].name, c.status, c.body)
		}
		// A lease lives 10 s from its last renewal, which came before the cut.
		if c.node == cutIdx && c.at > 10*time.Second {
			lateOnCut++
			if c.status == 200 {
				lateRanOnCut++
			}
		}
	}
	most := mostAtOnce(spans)
	t.Logf("burst under the partition: %d calls, ran per node %v, at most %d at once; the cut-off node ran %d of its %d calls after its lease",
		len(calls), ok, most, lateRanOnCut, lateOnCut)
	if most > burstReserved {
		t.Errorf("%d calls of burst ran at once across the partition; its reservation is %d", most, burstReserved)
	}
	if ok[cutIdx] == 0 {
		t.Errorf("the cut-off node ran no call of burst within its lease")
	}
	if lateOnCut == 0 || lateRanOnCut != 0 {
		t.Errorf("the cut-off node ran %d of %d calls after its lease ended", lateRanOnCut, lateOnCut)
	}
	majority := 0
	for i, n := range ok {
		if i != cutIdx {
			majority += n
		}
	}
	if majority == 0 {
		t.Errorf("the majority ran no call of burst")
	}
}
