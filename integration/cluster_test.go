package integration

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// startCluster starts n agents that form a cluster with bootstrap_expect, each told the
// others' cluster addresses, and waits until all serve.
func startCluster(t *testing.T, prefix string, n int) []*agentProc {
	t.Helper()
	return startClusterWith(t, prefix, n, agentOptions{})
}

// startClusterWith is startCluster with every node's options based on base (driver, top-level
// HCL); the name, cluster port and cluster block are the cluster's. each, when given, adjusts
// node i's options (its own top-level HCL).
func startClusterWith(t *testing.T, prefix string, n int, base agentOptions, each ...func(i int, o *agentOptions)) []*agentProc {
	t.Helper()
	ports := make([]int, n)
	var join []string
	for i := range ports {
		ports[i] = freePort(t)
		join = append(join, fmt.Sprintf("%q", fmt.Sprintf("127.0.0.1:%d", ports[i])))
	}
	nodes := make([]*agentProc, n)
	for i := range nodes {
		o := base
		o.node, o.raftPort = fmt.Sprintf("%s%d", prefix, i+1), ports[i]
		o.cluster = fmt.Sprintf("bootstrap_expect = %d\n  join = [%s]", n, strings.Join(join, ", "))
		for _, f := range each {
			f(i, &o)
		}
		nodes[i] = newAgent(t, o)
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

	// gateway runtimes asks every node for its runtime blocks (none here) over the node RPC.
	out, errOut, code = follower.cli("runtimes", "-address", follower.addr)
	if code != 0 {
		t.Fatalf("gateway runtimes exited %d:\n%s\n%s", code, out, errOut)
	}
	for _, a := range nodes {
		if !regexp.MustCompile(`(?m)^-\s+` + a.name + `\s+no runtime blocks`).MatchString(out) {
			t.Errorf("gateway runtimes does not list %s:\n%s", a.name, out)
		}
	}

	// A layer published on the follower is replicated like code: every node mounts it at /opt,
	// those without its zip fetching it from a peer, verified by its hash.
	ctx := context.Background()
	sdk := follower.sdk()
	layer, err := sdk.PublishLayerVersion(ctx, &awslambda.PublishLayerVersionInput{LayerName: aws.String("shared"),
		Content: &types.LayerVersionContentInput{ZipFile: zipOf(t, map[string]string{"conf/greeting.txt": "from the cluster's layer"})}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("layered"), Role: aws.String(apiRole),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: codeZip(t, map[string]string{"marker": "layered"})},
		Layers: []string{aws.ToString(layer.LayerVersionArn)}}); err != nil {
		t.Fatal(err)
	}
	layerSha := strings.TrimPrefix(aws.ToString(layer.Content.Location), "gateway://code/")
	for _, a := range nodes {
		a := a
		waitFor(t, "the layer on "+a.name, 10*time.Second, func() bool {
			r := a.invoke("layered", `{"mode":"readfile","path":"/opt/conf/greeting.txt"}`, nil)
			return r.status == 200 && strings.Contains(string(r.body), "from the cluster's layer")
		})
		if a != follower && !strings.Contains(a.out.String(), "fetched code from a peer: sha256="+layerSha) {
			t.Errorf("%s did not fetch the layer's zip from a peer", a.name)
		}
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

// testCA makes a CA in dir and, for each name, a node certificate it signs, with the real
// `gateway tls` commands; it returns the tls block for each name.
func testCA(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	run := func(args ...string) string {
		cmd := exec.Command(gatewayBin, append(args, "-dir", dir)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gateway %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	run("tls", "ca", "create")
	out := map[string]string{}
	for i, name := range names {
		saved := run("tls", "cert", "create", "-node", "-ca", filepath.Join(dir, "gateway-agent-ca.pem"),
			"-key", filepath.Join(dir, "gateway-agent-ca-key.pem"))
		cert := filepath.Join(dir, fmt.Sprintf("gateway-node-%d.pem", i))
		if !strings.Contains(saved, cert) {
			t.Fatalf("tls cert create for %s did not save %s:\n%s", name, cert, saved)
		}
		out[name] = fmt.Sprintf("tls {\n    ca   = %q\n    cert = %q\n    key  = %q\n  }",
			filepath.Join(dir, "gateway-agent-ca.pem"), cert, strings.TrimSuffix(cert, ".pem")+"-key.pem")
	}
	return out
}

// TestClusterMutualTLS: nodes with certificates of the cluster's CA form a cluster and replicate;
// a node with a certificate of another CA, and one without TLS, are refused.
func TestClusterMutualTLS(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	good := testCA(t, filepath.Join(dir, "cluster"), "tls1", "tls2")
	rogue := testCA(t, filepath.Join(dir, "other"), "rogue")
	p1, p2 := freePort(t), freePort(t)
	join := fmt.Sprintf("join = [%q, %q]", fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2))
	n1 := newAgent(t, agentOptions{node: "tls1", raftPort: p1, cluster: "bootstrap_expect = 2\n  " + join + "\n  " + good["tls1"]})
	n2 := newAgent(t, agentOptions{node: "tls2", raftPort: p2, cluster: "bootstrap_expect = 2\n  " + join + "\n  " + good["tls2"]})
	n1.waitHealthy()
	n2.waitHealthy()
	waitFor(t, "a two-node cluster", 15*time.Second, func() bool {
		lines, leader := members(t, n1)
		return len(lines) == 2 && leader != ""
	})
	if out, errOut, code := n2.cli("apply", "-address", n2.addr, writeFunctions(t, functionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	waitFor(t, "fn on tls1", 10*time.Second, func() bool {
		r := n1.invoke("fn", `{"name":"tls"}`, nil)
		return r.status == 200 && strings.Contains(string(r.body), "Hello, tls!")
	})

	// Another CA's certificate, and no TLS at all: both refused, neither joins.
	bad := startAgent(t, agentOptions{node: "rogue", cluster: join + "\n  " + rogue["rogue"]})
	plain := startAgent(t, agentOptions{node: "plain", cluster: join})
	time.Sleep(3 * time.Second) // three join attempts each
	if lines, _ := members(t, n1); len(lines) != 2 {
		t.Fatalf("members with the rogue nodes around:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(n1.out.String()+n2.out.String(), "refused a cluster connection: TLS handshake failed") {
		t.Error("the cluster's nodes did not log refusing the handshakes")
	}
	for _, a := range []*agentProc{bad, plain} {
		if !strings.Contains(a.out.String(), "not in a cluster yet") {
			t.Errorf("%s does not say it is not in a cluster:\n%s", a.name, a.out.String())
		}
	}

	// A certificate the cluster's own CA issued to an API client is not a node's: refused.
	caDir := filepath.Join(dir, "cluster")
	if out, err := exec.Command(gatewayBin, "tls", "cert", "create", "-client", "-dir", caDir,
		"-ca", filepath.Join(caDir, "gateway-agent-ca.pem"), "-key", filepath.Join(caDir, "gateway-agent-ca-key.pem")).CombinedOutput(); err != nil {
		t.Fatalf("tls cert create -client: %v\n%s", err, out)
	}
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(caDir, "gateway-client-0.pem"), filepath.Join(caDir, "gateway-client-0-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n1.raftAddr,
		&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{clientCert}})
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "PGET /v1/rpc/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		if strings.Contains(string(b), "HTTP/1.1") {
			t.Fatalf("an API client's certificate reached the node RPC:\n%s", b)
		}
	}
}

// TestNATSRoutesMutualTLS: with cluster { tls }, the routes of the nodes' embedded NATS servers
// are mutual TLS with the same certificates. Two nodes form one NATS cluster (each serves only
// once the events' stream has its two replicas, one on each server), without the warning of
// plain routes; a certificate the cluster's CA issued to an API client is refused at a route
// port, the node logging why.
func TestNATSRoutesMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	certs := testCA(t, caDir, "nr1", "nr2")
	ports := []int{freePort(t), freePort(t)}
	routes := fmt.Sprintf("[%q, %q]", fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]))
	nodes := startClusterWith(t, "nr", 2, agentOptions{driver: "process"}, func(i int, o *agentOptions) {
		o.cluster += "\n  " + certs[o.node]
		o.top = fmt.Sprintf("nats {\n  cluster_listen = \"127.0.0.1:%d\"\n  routes = %s\n}\n", ports[i], routes)
	})
	for _, a := range nodes {
		if out := a.out.String(); !strings.Contains(out, "route_tls=true") || strings.Contains(out, "NATS routes without TLS") {
			t.Errorf("%s did not start its NATS routes with TLS:\n%s", a.name, out)
		}
	}

	if out, err := exec.Command(gatewayBin, "tls", "cert", "create", "-client", "-dir", caDir,
		"-ca", filepath.Join(caDir, "gateway-agent-ca.pem"), "-key", filepath.Join(caDir, "gateway-agent-ca-key.pem")).CombinedOutput(); err != nil {
		t.Fatalf("tls cert create -client: %v\n%s", err, out)
	}
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(caDir, "gateway-client-0.pem"), filepath.Join(caDir, "gateway-client-0-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{clientCert}}) //nolint:gosec // the attacker does not care who the server is
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 512)
		n, rerr := c.Read(b)
		c.Close()
		if rerr == nil || strings.Contains(string(b[:n]), "INFO") {
			t.Fatalf("a route connection with an API client's certificate got %q", b[:n])
		}
	}
	waitFor(t, "the refusal in the log", 5*time.Second, func() bool {
		return strings.Contains(nodes[0].out.String(), "TLS route handshake error: the peer's certificate is not a node's")
	})
}

func clusterFunctionsHCL() string {
	return fmt.Sprintf(`
function "count" {
  runtime      = "provided.al2023"
  code         = %[1]q
  timeout      = "10s"
  freeze_delay = "100ms"
}

function "live" {
  runtime = "provided.al2023"
  code    = %[1]q
  timeout = "30s"
  url {
    invoke_mode = "RESPONSE_STREAM"
  }
}
`, fnDir)
}

// TestClusterForwarding: a node without an idle environment of a function forwards the call to
// the peer that has one (the same environment answers, its counter going on), whole responses,
// errors, streams (piece by piece through the hop) and InvokeWithResponseStream alike.
func TestClusterForwarding(t *testing.T) {
	needRoot(t)
	nodes := startCluster(t, "fw", 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, clusterFunctionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	count := func(n *agentProc) int {
		t.Helper()
		r := n.invoke("count", `{"mode":"counter"}`, nil)
		var out struct{ Count int }
		if r.status != 200 || json.Unmarshal(r.body, &out) != nil {
			t.Fatalf("count on %s: %d %s", n.name, r.status, r.body)
		}
		return out.Count
	}
	// Warm on a: its environment counts 1, 2, 3.
	for i := 1; i <= 3; i++ {
		if got := count(a); got != i {
			t.Fatalf("call %d on %s counted %d", i, a.name, got)
		}
	}
	time.Sleep(4 * gatewayReportInterval) // a's report of its idle environment reaches b and c
	// b and c have none idle: they forward to a, whose environment goes on counting.
	if got := count(b); got != 4 {
		t.Errorf("the call on %s counted %d, want 4 (forwarded to the warm environment on %s)", b.name, got, a.name)
	}
	if got := count(c); got != 5 {
		t.Errorf("the call on %s counted %d, want 5", c.name, got)
	}
	for _, n := range []*agentProc{b, c} {
		for _, e := range n.environments() {
			if e.Function == "count" && e.State != "standby" { // a standby is prepared for every deployed function
				t.Errorf("%s started an environment of count instead of forwarding: %+v", n.name, e)
			}
		}
	}
	// A function error comes back through the hop as from a single node.
	r := b.invoke("count", `{"mode":"error"}`, map[string]string{"X-Amz-Log-Type": "Tail"})
	if r.status != 200 || r.header.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(string(r.body), "something went wrong") ||
		r.header.Get("X-Amz-Log-Result") == "" {
		t.Errorf("a forwarded function error: %d %v %s", r.status, r.header, r.body)
	}

	// Streams: warm the URL function on a, then call it on b.
	get := func(n *agentProc, q string) *http.Response {
		t.Helper()
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(n.addr + "/fn/live/" + q)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get(a, "?mode=stream&n=1")
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	time.Sleep(4 * gatewayReportInterval)
	resp = get(b, "?mode=stream&n=4&ms=400&url=true")
	var arrivals []time.Time
	var lines []string
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		arrivals = append(arrivals, time.Now())
		lines = append(lines, line)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Streamed") != "yes" || strings.Join(lines, "") != "chunk 0\nchunk 1\nchunk 2\nchunk 3\n" {
		t.Fatalf("a forwarded stream: %d %v %q", resp.StatusCode, resp.Header, lines)
	}
	if spread := arrivals[3].Sub(arrivals[0]); spread < 800*time.Millisecond {
		t.Errorf("the chunks arrived within %v: the forward hop buffered the stream", spread)
	}
	for _, e := range b.environments() {
		if e.Function == "live" && e.State != "standby" {
			t.Errorf("%s ran the stream itself: %+v", b.name, e)
		}
	}
	// An error after the first byte still cuts the response off.
	if out, err := exec.Command("curl", "-sN", c.addr+"/fn/live/?mode=stream&n=2&fail=true").CombinedOutput(); err == nil {
		t.Errorf("curl read a forwarded stream that failed midway to its end: %q", out)
	}
	// InvokeWithResponseStream through the hop, with the SDK.
	out, err := c.sdk().InvokeWithResponseStream(context.Background(), &awslambda.InvokeWithResponseStreamInput{
		FunctionName: aws.String("live"), Payload: []byte(`{"mode":"stream","n":3}`), LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	var complete *types.InvokeWithResponseStreamCompleteEvent
	for ev := range out.GetStream().Events() {
		switch v := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			got.Write(v.Value.Payload)
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			complete = &v.Value
		}
	}
	out.GetStream().Close()
	if got.String() != "chunk 0\nchunk 1\nchunk 2\n" || complete == nil || aws.ToString(complete.ErrorCode) != "" || aws.ToString(complete.LogResult) == "" {
		t.Errorf("InvokeWithResponseStream through the hop: %q %+v", got.String(), complete)
	}
}

// gatewayReportInterval is gateway.ReportInterval (how often nodes report their idle
// environments to each other).
const gatewayReportInterval = 250 * time.Millisecond

// TestClusterLeaderFailover: kill -9 the leader while the other two serve a steady stream of
// invocations and writes. The survivors elect a new leader and keep serving every invocation;
// every write acknowledged to a client is there afterwards, on the survivors and on the old
// leader once it restarts and catches up (its leftovers swept).
func TestClusterLeaderFailover(t *testing.T) {
	needRoot(t)
	nodes := startCluster(t, "fo", 3)
	var leader string
	waitFor(t, "a leader", 15*time.Second, func() bool { _, leader = members(t, nodes[0]); return leader != "" })
	var old *agentProc
	var survivors []*agentProc
	for _, a := range nodes {
		if a.name == leader {
			old = a
		} else {
			survivors = append(survivors, a)
		}
	}
	if out, errOut, code := survivors[0].cli("apply", "-address", survivors[0].addr, writeFunctions(t, clusterFunctionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	// Each survivor serves from its own warm environment.
	for _, a := range survivors {
		if r := a.invoke("count", `{}`, nil); r.status != 200 {
			t.Fatalf("warming %s: %d %s", a.name, r.status, r.body)
		}
	}

	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls, failed := 0, 0
	var failures []string
	for _, a := range survivors {
		wg.Add(1)
		go func(a *agentProc) {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post(a.addr+"/2015-03-31/functions/count/invocations", "application/json", strings.NewReader(`{}`))
				ok := err == nil && resp.StatusCode == 200
				if resp != nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				calls++
				if !ok {
					failed++
					failures = append(failures, fmt.Sprintf("%s: %v %v", a.name, err, resp))
				}
				mu.Unlock()
			}
		}(a)
	}
	// Writes through a survivor: an alias each; the acknowledged ones must all survive.
	var acked []string
	var killedAt, firstAfter time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := survivors[0].sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("w%d", i)
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := client.CreateAlias(wctx, &awslambda.CreateAliasInput{FunctionName: aws.String("count"), Name: aws.String(name), FunctionVersion: aws.String("$LATEST")})
			cancel()
			if err == nil {
				mu.Lock()
				acked = append(acked, name)
				if !killedAt.IsZero() && firstAfter.IsZero() {
					firstAfter = time.Now()
				}
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	if err := old.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-old.exited
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()

	if failed > 0 {
		t.Errorf("%d of %d invocations on the survivors failed across the leader's loss: %v", failed, calls, failures)
	}
	if firstAfter.IsZero() {
		t.Fatal("no write succeeded after the leader was killed")
	}
	t.Logf("%d invocations on the survivors, %d failed; %d writes acknowledged; first write %v after the kill",
		calls, failed, len(acked), firstAfter.Sub(killedAt).Round(time.Millisecond))
	haveAll := func(a *agentProc) bool {
		out, err := a.sdk().ListAliases(ctx, &awslambda.ListAliasesInput{FunctionName: aws.String("count"), MaxItems: aws.Int32(10000)})
		if err != nil {
			return false
		}
		have := map[string]bool{}
		for _, al := range out.Aliases {
			have[aws.ToString(al.Name)] = true
		}
		for _, name := range acked {
			if !have[name] {
				return false
			}
		}
		return true
	}
	for _, a := range survivors {
		waitFor(t, "every acknowledged write on "+a.name, 10*time.Second, func() bool { return haveAll(a) })
	}
	// The old leader comes back as a follower, catches up, and serves.
	old.start()
	waitFor(t, "every acknowledged write on the restarted "+old.name, 20*time.Second, func() bool { return haveAll(old) })
	if r := old.invoke("count", `{}`, nil); r.status != 200 {
		t.Errorf("the restarted node: %d %s", r.status, r.body)
	}
	for _, a := range nodes {
		a.stop()
		checkNothingLeft(t, a)
	}
}

// TestClusterSnapshotSaveRestore: `gateway cluster snapshot save` archives the state and every
// code zip it runs; restoring the archive into a new node brings the functions back, runnable;
// a damaged archive is refused and changes nothing.
func TestClusterSnapshotSaveRestore(t *testing.T) {
	needRoot(t)
	keys := []testKey{{"ops", authAdminID, authAdminSecret, "admin"}}
	src := startAgent(t, agentOptions{node: "snapsrc", keys: keys})
	hcl := strings.Replace(functionsHCL(), `environment  = { GREETING = "hi" }`, `environment  = { GREETING = "hi" }
  publish      = true
  alias "live" {
    version = 1
  }`, 1)
	if out, errOut, code := src.cli("apply", writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	archive := filepath.Join(t.TempDir(), "backup.tar.gz")
	if out, errOut, code := src.cli("cluster", "snapshot", "save", archive); code != 0 {
		t.Fatalf("snapshot save exited %d:\n%s\n%s", code, out, errOut)
	}
	// The archive holds the state, the code and the sums.
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	f.Close()
	if len(names) != 4 || names[0] != "meta.json" || names[1] != "state.json" || !strings.HasPrefix(names[2], "code/") || names[3] != "SHA256SUMS" {
		t.Fatalf("archive entries: %v", names)
	}

	dst := startAgent(t, agentOptions{node: "snapdst", keys: keys})
	// A damaged archive (cut short) is refused; nothing changes.
	b, _ := os.ReadFile(archive)
	cut := filepath.Join(t.TempDir(), "cut.tar.gz")
	_ = os.WriteFile(cut, b[:len(b)/2], 0o600)
	if out, errOut, code := dst.cli("cluster", "snapshot", "restore", cut); code == 0 {
		t.Fatalf("restoring a truncated archive exited 0:\n%s\n%s", out, errOut)
	}
	if out, _, _ := dst.cli("functions"); strings.Contains(out, "fn") {
		t.Fatalf("the refused archive changed the state:\n%s", out)
	}
	if out, errOut, code := dst.cli("cluster", "snapshot", "restore", archive); code != 0 {
		t.Fatalf("snapshot restore exited %d:\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	client := dst.sdk()
	out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn"), Qualifier: aws.String("live"), Payload: []byte(`{"mode":"env"}`)})
	if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), `"GREETING":"hi"`) || aws.ToString(out.ExecutedVersion) != "1" {
		t.Fatalf("fn:live on the restored node: %v %s", err, out.Payload)
	}
	if r := dst.invoke("roomy", `{}`, nil); r.status != 200 {
		t.Errorf("another restored function: %d %s", r.status, r.body)
	}
	src.stop()
	dst.stop()
	checkNothingLeft(t, src)
	checkNothingLeft(t, dst)
}

// TestClusterDeadServerCleanup: with dead_server_cleanup, the leader removes a node killed with
// kill -9 once it has been unreachable that long; when the node comes back it rejoins.
func TestClusterDeadServerCleanup(t *testing.T) {
	needRoot(t)
	ports := []int{freePort(t), freePort(t), freePort(t)}
	join := fmt.Sprintf("join = [%q, %q, %q]", fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[2]))
	var nodes []*agentProc
	for i, p := range ports {
		nodes = append(nodes, newAgent(t, agentOptions{node: fmt.Sprintf("dc%d", i+1), raftPort: p,
			cluster: "bootstrap_expect = 3\n  dead_server_cleanup = \"2s\"\n  " + join}))
	}
	for _, a := range nodes {
		a.waitHealthy()
	}
	var leader string
	waitFor(t, "a cluster of three", 15*time.Second, func() bool {
		lines, l := members(t, nodes[0])
		leader = l
		return len(lines) == 3 && l != ""
	})
	var victim, other *agentProc
	for _, a := range nodes {
		switch {
		case a.name != leader && victim == nil:
			victim = a
		case a.name != leader:
			other = a
		}
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	waitFor(t, "the dead server's removal", 20*time.Second, func() bool {
		lines, _ := members(t, other)
		return len(lines) == 2
	})
	if !strings.Contains(strings.Join([]string{nodes[0].out.String(), nodes[1].out.String(), nodes[2].out.String()}, ""), "removing a dead server") {
		t.Error("no node logged the removal")
	}
	// Back again: it asks to be added and catches up.
	victim.start()
	waitFor(t, "the node's return", 20*time.Second, func() bool {
		lines, _ := members(t, other)
		return len(lines) == 3
	})
	for _, a := range nodes {
		a.stop()
		checkNothingLeft(t, a)
	}
}

// TestClusterProvisionedSpread: provisioned environments are spread over the nodes (apply
// waits until the cluster as a whole has them), and when a node goes away the others take its
// part over.
func TestClusterProvisionedSpread(t *testing.T) {
	needRoot(t)
	nodes := startCluster(t, "pv", 3)
	waitFor(t, "a leader", 15*time.Second, func() bool { _, l := members(t, nodes[0]); return l != "" })
	time.Sleep(4 * gatewayReportInterval) // every node hears from the others
	out, errOut, code := nodes[1].cli("apply", "-address", nodes[1].addr, writeFunctions(t, provisionedHCL(3)))
	if code != 0 || !strings.Contains(out, "provisioned environments ready") {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	count := func(a *agentProc) (n int) {
		for _, e := range a.environments() {
			if e.Provisioned {
				n++
			}
		}
		return n
	}
	waitFor(t, "one provisioned environment on each node", 20*time.Second, func() bool {
		return count(nodes[0]) == 1 && count(nodes[1]) == 1 && count(nodes[2]) == 1
	})
	// Every node sums the others' readiness from their periodic reports, so a node other than
	// the one apply polled may say IN_PROGRESS for one report interval more.
	var pc *awslambda.GetProvisionedConcurrencyConfigOutput
	var err error
	ready := func() bool {
		pc, err = nodes[0].sdk().GetProvisionedConcurrencyConfig(context.Background(), &awslambda.GetProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("pc"), Qualifier: aws.String("live")})
		return err == nil && pc.Status == types.ProvisionedConcurrencyStatusEnumReady && aws.ToInt32(pc.AvailableProvisionedConcurrentExecutions) == 3
	}
	deadline := time.Now().Add(8 * gatewayReportInterval)
	for !ready() {
		if time.Now().After(deadline) {
			t.Fatalf("the cluster's status on %s: %v %+v", nodes[0].name, err, pc)
		}
		time.Sleep(gatewayReportInterval / 5)
	}
	nodes[2].stop()
	waitFor(t, "the two others to take over the third environment", 20*time.Second, func() bool {
		return count(nodes[0])+count(nodes[1]) == 3
	})
	for _, a := range nodes {
		a.stop()
		checkNothingLeft(t, a)
	}
}

// TestClusterReservedConcurrency: a reservation holds across the cluster: with calls arriving at
// all three nodes at once, never more run together than the reservation (measured inside the
// function), and the rest are throttled.
func TestClusterReservedConcurrency(t *testing.T) {
	needRoot(t)
	nodes := startCluster(t, "rc", 3)
	waitFor(t, "a leader", 15*time.Second, func() bool { _, l := members(t, nodes[0]); return l != "" })
	const limit = 4
	hcl := fmt.Sprintf(`
function "burst" {
  runtime              = "provided.al2023"
  code                 = %q
  timeout              = "10s"
  reserved_concurrency = %d
}
`, fnDir, limit)
	if out, errOut, code := nodes[0].cli("apply", "-address", nodes[0].addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	// The reservation holds from when a node has it (each reads its own copy of the state).
	for _, a := range nodes {
		a := a
		waitFor(t, "the reservation on "+a.name, 10*time.Second, func() bool {
			out, err := a.sdk().GetFunctionConcurrency(context.Background(), &awslambda.GetFunctionConcurrencyInput{FunctionName: aws.String("burst")})
			return err == nil && aws.ToInt32(out.ReservedConcurrentExecutions) == limit
		})
	}
	spans, throttled := burstCalls(t, 60, func(i int) *agentProc { return nodes[i%3] }, "burst", "ReservedFunctionConcurrentInvocationLimitExceeded")
	most := mostAtOnce(spans)
	t.Logf("%d ran, at most %d at once (limit %d); %d throttled", len(spans), most, limit, throttled)
	if most > limit || len(spans) < limit || throttled == 0 || len(spans)+throttled != 60 {
		t.Errorf("%d ran (at most %d at once, limit %d), %d throttled", len(spans), most, limit, throttled)
	}

	// One call at a time, round robin over the nodes: nothing runs when a call arrives, so none
	// is throttled, whatever the reservation (a node that leased a slot for an earlier call gives
	// it back when another node needs it).
	seq := ""
	for n := 1; n <= 3; n++ {
		seq += fmt.Sprintf("function \"seq%d\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  reserved_concurrency = %d\n}\n", n, fnDir, n)
	}
	if out, errOut, code := nodes[0].cli("apply", "-address", nodes[0].addr, writeFunctions(t, seq)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	for n := 1; n <= 3; n++ {
		fn := fmt.Sprintf("seq%d", n)
		for _, a := range nodes {
			waitFor(t, "the reservation of "+fn+" on "+a.name, 10*time.Second, func() bool {
				out, err := a.sdk().GetFunctionConcurrency(context.Background(), &awslambda.GetFunctionConcurrencyInput{FunctionName: aws.String(fn)})
				return err == nil && aws.ToInt32(out.ReservedConcurrentExecutions) == int32(n)
			})
		}
		for i := range 12 {
			a := nodes[i%3]
			if r := a.invoke(fn, `{"mode":"hello","name":"x"}`, nil); r.status != 200 {
				t.Errorf("%s, call %d on %s (one at a time): %d %s", fn, i, a.name, r.status, r.body)
			}
		}
	}
}

// burstCalls makes n calls of fn at once (a sleep of 1.5 s each), the i-th to node(i), and
// returns the spans of those that ran (from the function's own clock) and how many were
// throttled with reason; any other answer fails the test.
func burstCalls(t *testing.T, n int, node func(i int) *agentProc, fn, reason string) (ran []span, throttled int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		a := node(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a.invoke(fn, `{"mode":"sleep","ms":1500}`, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.status == 429 && strings.Contains(string(r.body), reason):
				throttled++
			case r.status == 200:
				var s struct{ Start, End int64 }
				if json.Unmarshal(r.body, &s) != nil || s.Start == 0 {
					t.Errorf("payload %s", r.body)
					return
				}
				ran = append(ran, span{s.Start, s.End})
			default:
				t.Errorf("%s: %d %s", a.name, r.status, r.body)
			}
		}()
	}
	wg.Wait()
	return ran, throttled
}

// TestClusterUnreservedPool: a function without a reservation is throttled only when every
// node's share of max_concurrency is taken, not when the node a call came to is full: calls
// beyond its share run on peers with room (each counting them against its own share).
func TestClusterUnreservedPool(t *testing.T) {
	nodes := startClusterWith(t, "up", 3, agentOptions{driver: "process", extra: "max_concurrency = 2"})
	waitFor(t, "a leader", 15*time.Second, func() bool { _, l := members(t, nodes[0]); return l != "" })
	hcl := fmt.Sprintf("function \"pool\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  timeout = \"10s\"\n}\n", fnDir)
	if out, errOut, code := nodes[0].cli("apply", "-address", nodes[0].addr, writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	for _, a := range nodes {
		waitFor(t, "the function on "+a.name, 15*time.Second, func() bool { return a.invoke("pool", `{}`, nil).status == 200 })
	}
	time.Sleep(time.Second) // the nodes' reports of their room are fresh
	burst := func(n int) ([]span, int) {
		return burstCalls(t, n, func(int) *agentProc { return nodes[0] }, "pool", "ConcurrentInvocationLimitExceeded")
	}
	if ran, throttled := burst(6); len(ran) != 6 || throttled != 0 {
		t.Errorf("6 calls at once to one node of three with 2 each: %d ran, %d throttled; want all to run", len(ran), throttled)
	}
	time.Sleep(time.Second)
	ran, throttled := burst(9)
	t.Logf("9 calls at once: %d ran (at most %d at once), %d throttled", len(ran), mostAtOnce(ran), throttled)
	if len(ran) != 6 || throttled != 3 || mostAtOnce(ran) > 6 {
		t.Errorf("9 calls at once to one node of three with 2 each: %d ran (at most %d at once), %d throttled; want 6 and 3",
			len(ran), mostAtOnce(ran), throttled)
	}
}
