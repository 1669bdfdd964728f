package integration

// The adversarial suite (docs/security.md): what a hostile function or client would try, against
// a real agent with real sandboxes. Each test fails on a gateway without the defence it names.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/lambdagw/gateway/plugins/host"
	"github.com/lambdagw/gateway/plugins/sdk/natsq"
)

// TestAdversarialCodeZips uploads zips built to write outside the code folder, as the AWS SDK
// would, and checks that each is refused with Lambda's error naming the entry, that nothing
// appeared outside, and that the agent keeps serving.
func TestAdversarialCodeZips(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-zip"})
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	// The chain climbs from the unpack folder to the file system's root (more links than
	// folders above it), then names a file in a folder every host has.
	marker := fmt.Sprintf("lambdagw-escape-%d", os.Getpid())
	chain := []zipEntry{{"a", fs.ModeSymlink | 0o777, "."}}
	prefix := "a"
	for i := 0; i < 40; i++ {
		up := strings.Repeat("../", i+1)
		chain = append(chain, zipEntry{prefix + fmt.Sprintf("/l%d", i), fs.ModeSymlink | 0o777, strings.TrimSuffix(up, "/")})
		prefix += fmt.Sprintf("/l%d", i)
	}
	chain = append(chain, zipEntry{prefix + "/var/tmp/" + marker, 0o644, "escaped"})
	cases := map[string]struct {
		entries []zipEntry
		want    string
	}{
		"symlink chain":   {chain, "lies below the symlink"},
		"absolute path":   {[]zipEntry{{"/var/tmp/" + marker, 0o644, "escaped"}}, "absolute path"},
		"dot-dot path":    {[]zipEntry{{"../../../../../../var/tmp/" + marker, 0o644, "escaped"}}, "`..`"},
		"link to host":    {[]zipEntry{{"etc", fs.ModeSymlink | 0o777, "/etc"}, {"etc/" + marker, 0o644, "x"}}, "outside /var/task and /opt"},
		"file over link":  {[]zipEntry{{"x", fs.ModeSymlink | 0o777, "/var/task/y"}, {"x", 0o644, "escaped"}}, "appears twice"},
		"device":          {[]zipEntry{{"mem", fs.ModeDevice | fs.ModeCharDevice | 0o666, ""}}, "not a regular file"},
		"climbing link":   {[]zipEntry{{"d/l", fs.ModeSymlink | 0o777, ".."}, {"x", fs.ModeSymlink | 0o777, "d/l/../.."}}, "climb"},
		"link above code": {[]zipEntry{{"l", fs.ModeSymlink | 0o777, "../../../var/tmp"}}, "outside the archive's folder"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			fn := "zip-" + strings.ReplaceAll(name, " ", "-")
			_, err := client.CreateFunction(context.Background(), createFunctionInput(fn, buildCodeZip(t, c.entries...), nil))
			var ipe *types.InvalidParameterValueException
			if !errors.As(err, &ipe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CreateFunction answered %v; want InvalidParameterValueException saying %q", err, c.want)
			}
			if _, err := os.Lstat("/var/tmp/" + marker); err == nil {
				os.Remove("/var/tmp/" + marker)
				t.Fatal("the zip wrote /var/tmp on the host")
			}
		})
	}
	// The agent still serves a plain function.
	createFunction(t, client, "plain", codeZip(t, nil), nil)
	r := a.invoke("plain", `{"name":"after"}`, nil)
	if r.status != 200 || !strings.Contains(string(r.body), "Hello, after!") {
		t.Fatalf("after the hostile zips: %d %s", r.status, r.body)
	}
	if out, err := client.GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String("zip-symlink-chain")}); err == nil {
		t.Fatalf("a refused function exists: %+v", out.Configuration)
	}
}

// applyProbe deploys the test function as "probe", for a test to drive with its modes.
func applyProbe(t *testing.T, a *agentProc) {
	t.Helper()
	fnFile := writeFunctions(t, fmt.Sprintf(`
function "probe" {
  runtime = "provided.al2023"
  code    = %q
  timeout = "5s"
}
`, fnDir))
	if out, errOut, code := a.cli("apply", "-address", a.addr, fnFile); code != 0 {
		t.Fatalf("apply: %s %s", out, errOut)
	}
}

// TestAdversarialSyscalls: a function calls what the default seccomp filter refuses; each call
// must fail with EPERM, where an unfiltered unprivileged process succeeds with several of them
// (io_uring_setup, unshare(CLONE_NEWUSER), keyctl, add_key, perf_event_open).
func TestAdversarialSyscalls(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-sys"})
	applyProbe(t, a)
	r := a.invoke("probe", `{"mode":"syscalls"}`, nil)
	if r.status != 200 {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
	got := decodeJSON(t, r.body)
	for _, name := range []string{"io_uring_setup", "bpf", "userfaultfd", "keyctl", "add_key", "perf_event_open",
		"unshare(CLONE_NEWUSER)", "unshare(CLONE_NEWUSER|CLONE_NEWNS)", "setns", "mount", "kexec_load"} {
		if got[name] != "EPERM" {
			t.Errorf("%s: %v, want EPERM (refused by the filter)", name, got[name])
		}
	}
	// The function itself keeps working after its refused calls.
	if r := a.invoke("probe", `{"name":"still"}`, nil); r.status != 200 || !strings.Contains(string(r.body), "Hello, still!") {
		t.Fatalf("after the probes: %d %s", r.status, r.body)
	}
}

// TestAdversarialHostPorts: a function dials the agent's HTTP API, its cluster port and NATS on
// 127.0.0.1, as they are on the host (each checked to be listening there first: a plugin makes
// the agent run its embedded NATS); inside its network namespace none of them is there.
func TestAdversarialHostPorts(t *testing.T) {
	needRoot(t)
	natsHCL, natsURL := natsBlock(t)
	a := startAgent(t, agentOptions{node: "adv-net", top: pluginBlock(t, "queue", pluginBins["queue"], "") + natsHCL})
	applyProbe(t, a)
	httpHost := strings.TrimPrefix(a.addr, "http://")
	for what, addr := range map[string]string{"HTTP API": httpHost, "cluster port": a.raftAddr, "NATS": strings.TrimPrefix(natsURL, "nats://")} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("the %s does not listen at %s on the host: %v", what, addr, err)
		}
		c.Close()
		r := a.invoke("probe", fmt.Sprintf(`{"mode":"dial","addr":%q}`, addr), nil)
		e, _ := decodeJSON(t, r.body)["error"].(string)
		if r.status != 200 || !strings.Contains(e, "connection refused") {
			t.Errorf("dialing the %s at %s from a function: %d %q, want connection refused", what, addr, r.status, e)
		}
	}
}

// TestAdversarialBrowserRequests: a web page the operator visits tries the API on 127.0.0.1: a
// cross-site "simple" POST (text/plain, no preflight) of a CreateFunction, and DNS rebinding
// (its own name resolving to 127.0.0.1, so the Host is its name). Both are refused, before any
// effect; a same-origin browser request and clients without Origin keep working.
func TestAdversarialBrowserRequests(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-web"})
	body := `{"FunctionName":"planted","Runtime":"provided.al2023","Role":"r","Handler":"bootstrap","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}`
	send := func(host string, headers map[string]string) (int, string, string) {
		req, _ := http.NewRequest("POST", a.addr+"/2015-03-31/functions", strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), string(b)
	}
	port := a.addr[strings.LastIndexByte(a.addr, ':')+1:]
	for name, c := range map[string]struct {
		host    string
		headers map[string]string
	}{
		"cross-site fetch": {"", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
		"cross-site form":  {"", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"}},
		"same-site page":   {"", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.lambda-url.localhost:" + port, "Sec-Fetch-Site": "same-site"}},
		"dns rebinding":    {"rebind.evil.example:" + port, map[string]string{"Content-Type": "text/plain"}},
	} {
		status, errType, resp := send(c.host, c.headers)
		if status != http.StatusForbidden || errType != "AccessDeniedException" {
			t.Errorf("%s: %d %s %s; want 403 AccessDeniedException", name, status, errType, resp)
		}
	}
	if r := a.invoke("planted", `{}`, nil); r.status != http.StatusNotFound {
		t.Fatalf("a refused request created a function: %d %s", r.status, r.body)
	}
	// A page of the API's own origin, and curl-like clients, get through: the first creates the
	// function, the others find it there.
	for i, c := range []struct {
		name    string
		host    string
		headers map[string]string
	}{
		{"same origin", "", map[string]string{"Origin": a.addr, "Sec-Fetch-Site": "same-origin"}},
		{"no origin", "", map[string]string{"Content-Type": "text/plain"}},
		{"Host localhost", "localhost:" + port, nil},
	} {
		want := http.StatusConflict
		if i == 0 {
			want = http.StatusCreated
		}
		if status, errType, resp := send(c.host, c.headers); status != want {
			t.Errorf("%s: %d %s %s; want %d", c.name, status, errType, resp, want)
		}
	}
}

// TestAdversarialClusterPort: a lone node with access keys keeps its cluster port shut to anyone
// without a certificate of its own private CA: a plain connection speaking the node RPC, a TLS
// client without a certificate and one with a node certificate of another CA get no answer. A
// node without keys says loudly that its cluster port is open.
func TestAdversarialClusterPort(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-peer", keys: []testKey{{"ops", authAdminID, authAdminSecret, "admin"}}})
	other := testCA(t, t.TempDir(), "rogue")
	var rogue tls.Certificate
	for _, line := range strings.Split(other["rogue"], "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " = "); ok && k == "cert" {
			cert := strings.Trim(v, `"`)
			var err error
			if rogue, err = tls.LoadX509KeyPair(cert, strings.TrimSuffix(cert, ".pem")+"-key.pem"); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply := "POST /v1/rpc/apply HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
	attempt := func(conf *tls.Config) string {
		c, err := net.DialTimeout("tcp", a.raftAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		if conf != nil {
			tc := tls.Client(c, conf)
			if err := tc.Handshake(); err != nil {
				return "handshake: " + err.Error()
			}
			c = tc
		}
		_, _ = io.WriteString(c, "P"+apply)
		b, _ := io.ReadAll(c)
		return string(b)
	}
	for name, conf := range map[string]*tls.Config{
		"plain node RPC":                nil,
		"TLS without a certificate":     {InsecureSkipVerify: true},
		"another CA's node certificate": {InsecureSkipVerify: true, Certificates: []tls.Certificate{rogue}},
	} {
		if out := attempt(conf); strings.Contains(out, "HTTP/1.1") {
			t.Errorf("%s got an answer from the node RPC:\n%s", name, out)
		}
	}
	if !strings.Contains(a.out.String(), "refused a cluster connection: TLS handshake failed") {
		t.Errorf("the agent did not log refusing the connections:\n%s", a.out.String())
	}
	a.waitHealthy()

	open := startAgent(t, agentOptions{node: "adv-open"})
	if !strings.Contains(open.out.String(), "the cluster port is open") {
		t.Errorf("a node without keys does not warn that its cluster port is open:\n%s", open.out.String())
	}
}

// TestAdversarialAgentKilled: kill -9 of the agent mid-invocation leaves no function process
// behind: neither the runtime that was running, nor a frozen environment, nor the children a
// function left running; and the node's cgroups and namespace mounts are gone too, before any
// restart.
func TestAdversarialAgentKilled(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-kill"})
	a.apply(functionsHCL())
	// fn: an environment that left three children running and was frozen after its invocation.
	if r := a.invoke("fn", `{"mode":"spawn","n":3,"value":"keep"}`, nil); r.status != 200 || !strings.Contains(string(r.body), `"started":3`) {
		t.Fatalf("spawn: %d %s", r.status, r.body)
	}
	waitUntil(t, "fn's environment frozen", 10*time.Second, func() bool {
		for _, d := range envCgroupDirs(t, a.name) {
			if freezerState(d) == "FROZEN" {
				return true
			}
		}
		return false
	})
	// roomy: an invocation running when the agent dies.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", a.addr+"/2015-03-31/functions/roomy/invocations", strings.NewReader(`{"mode":"sleep","ms":20000}`))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil { // fails: the agent dies
			resp.Body.Close()
		}
	}()
	waitUntil(t, "roomy running", 10*time.Second, func() bool { return len(envCgroupDirs(t, a.name)) >= 2 })
	before := liveProcesses(a.name)
	if len(before) < 5 { // fn's runtime and its three children, roomy's runtime
		t.Fatalf("expected at least 5 function processes before the kill, found:\n%s", strings.Join(before, "\n"))
	}

	// Should the reaper fail, the orphans must not outlive the test (and fail the next run).
	t.Cleanup(func() { sweepNode(a.name) })
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	waitUntil(t, "no function process left", 10*time.Second, func() bool { return len(liveProcesses(a.name)) == 0 })
	if left := envCgroupDirs(t, a.name); len(left) > 0 {
		t.Errorf("cgroups left after the agent died: %v", left)
	}
	checkNothingLeft(t, a)
	if !strings.Contains(a.out.String(), "the agent died: removed its environments") {
		t.Errorf("the reaper did not report its work:\n%s", a.out.String())
	}
}

// TestAdversarialNodeLimits: a function whose own limits are generous (10 GB of memory, 1,024
// processes) still cannot take the node: a 10 GB allocation and a fork bomb stop at the limits
// of all environments together (sandbox { total_memory, total_pids }), the kernel acts inside
// the environments' parent cgroup, and the agent and another function keep answering.
func TestAdversarialNodeLimits(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-limits", extra: "total_memory = \"1GiB\"\n  total_pids = 300\n  pids_limit = 4096"})
	if !strings.Contains(a.out.String(), "memory_mb=1024 pids=300") {
		t.Errorf("the agent does not state the node's limits:\n%s", a.out.String())
	}
	fns := fmt.Sprintf(`
function "hog" {
  runtime   = "provided.al2023"
  code      = %[1]q
  memory_mb = 10240
  timeout   = "60s"
}

function "bomb" {
  runtime   = "provided.al2023"
  code      = %[1]q
  memory_mb = 512
  timeout   = "60s"
}

function "quiet" {
  runtime = "provided.al2023"
  code    = %[1]q
}
`, fnDir)
	a.apply(fns)
	if r := a.invoke("quiet", `{"name":"before"}`, nil); r.status != 200 || !strings.Contains(string(r.body), "Hello, before!") {
		t.Fatalf("quiet before: %d %s", r.status, r.body)
	}
	parent := func(controller string) string {
		for _, d := range agentCgroupDirs(t, a.name) {
			if strings.Contains(d, "/"+controller+"/") {
				return d
			}
		}
		t.Fatalf("no %s cgroup for the node", controller)
		return ""
	}
	readInt := func(path string) int64 {
		b, _ := os.ReadFile(path)
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n
	}

	// 10 GB in a function allowed 10 GB: stopped at the node's 1 GiB.
	r := a.invokeWithin(90*time.Second, "hog", `{"mode":"oom","n":10240}`, nil)
	if r.header.Get("X-Amz-Function-Error") == "" {
		t.Fatalf("allocating 10 GB under a 1 GiB node limit succeeded: %d %s", r.status, r.body)
	}
	if et := decodeJSON(t, r.body)["errorType"]; et != "Runtime.OutOfMemory" && et != "Runtime.ExitError" {
		t.Errorf("the 10 GB allocation ended with %v, want the runtime killed", et)
	}
	// The environments together used up to the node's limit, and no more.
	if peak := readInt(filepath.Join(parent("memory"), "memory.max_usage_in_bytes")); peak < 900<<20 || peak > 1<<30+(16<<20) {
		t.Errorf("the environments' peak memory together was %d MiB, want the node's 1,024 MiB", peak>>20)
	}

	// A fork bomb in a function allowed 1,024 tasks: stopped at the node's 300.
	r = a.invokeWithin(90*time.Second, "bomb", `{"mode":"spawn","n":5000}`, nil)
	body := decodeJSON(t, r.body)
	switch started, _ := body["started"].(float64); {
	case r.header.Get("X-Amz-Function-Error") != "" && body["errorType"] == "Runtime.ExitError":
		// The function's own Go runtime needed a thread at the limit, could not get one and
		// died (exit status 2): stopped all the same.
	case started < 150 && strings.Contains(fmt.Sprint(body["error"]), "resource temporarily unavailable"):
		// Each copy is a Go program of a few threads: 300 tasks hold about 100 of them.
	default:
		t.Fatalf("fork bomb: %s", r.body)
	}
	// Either way the node's limit is the one in force (the kernel counts the refusals in the
	// forking environment's cgroup, gone with it).
	if max := readInt(filepath.Join(parent("pids"), "pids.max")); max != 300 {
		t.Errorf("the node's pids.max is %d, want 300", max)
	}
	if r := a.invoke("quiet", `{"name":"after"}`, nil); r.status != 200 || !strings.Contains(string(r.body), "Hello, after!") {
		t.Fatalf("quiet after: %d %s", r.status, r.body)
	}
	a.waitHealthy()
}

// TestAdversarialNeighbours: two functions on one node cannot see each other's processes or
// files, and, with user namespaces (the default where the machine allows them), their runtimes
// run as different host uids, neither the host's 993, while each sees itself as uid 993.
func TestAdversarialNeighbours(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-neigh"})
	if !strings.Contains(a.out.String(), "each environment has its own user namespace") {
		t.Fatalf("the agent did not turn user namespaces on:\n%s", a.out.String())
	}
	fns := fmt.Sprintf(`
function "alice" {
  runtime = "provided.al2023"
  code    = %[1]q
}

function "bob" {
  runtime = "provided.al2023"
  code    = %[1]q
}
`, fnDir)
	a.apply(fns)
	if r := a.invoke("alice", `{"mode":"writefile","path":"/tmp/alice-secret","value":"s3cr3t"}`, nil); !strings.Contains(string(r.body), `"error":""`) {
		t.Fatalf("alice writing her file: %s", r.body)
	}
	// alice keeps a child running, which bob must not see either.
	if r := a.invoke("alice", `{"mode":"spawn","n":1,"value":"keep"}`, nil); !strings.Contains(string(r.body), `"started":1`) {
		t.Fatalf("alice spawning: %s", r.body)
	}
	type procs struct {
		Procs    []string `json:"procs"`
		UID, GID int
	}
	look := func(fn string) procs {
		var p procs
		r := a.invoke(fn, `{"mode":"procs"}`, nil)
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("%s procs: %v: %s", fn, err, r.body)
		}
		return p
	}
	alice, bob := look("alice"), look("bob")
	if alice.UID != 993 || bob.UID != 993 || alice.GID != 990 || bob.GID != 990 {
		t.Errorf("inside, the runtimes must be uid 993 gid 990: alice %d/%d, bob %d/%d", alice.UID, alice.GID, bob.UID, bob.GID)
	}
	if len(alice.Procs) != 2 || len(bob.Procs) != 1 {
		t.Errorf("each function must see only its own processes (alice: runtime and child; bob: runtime):\nalice %q\nbob %q", alice.Procs, bob.Procs)
	}
	for _, path := range []string{"/tmp/alice-secret", "/proc/1/root/tmp/alice-secret", "/proc/2/root/tmp/alice-secret"} {
		r := a.invoke("bob", fmt.Sprintf(`{"mode":"readfile","path":%q}`, path), nil)
		if strings.Contains(string(r.body), "s3cr3t") || !strings.Contains(string(r.body), "no such file") {
			t.Errorf("bob reading %s: %s", path, r.body)
		}
	}

	// From the host: every process of an environment runs as that environment's own uid. (runc's
	// set-up processes of an environment being prepared run as root outside its namespace for a
	// moment: wait until none is left.)
	var uids map[string]string // host uid -> environment
	waitUntil(t, "every environment process in its user namespace", 10*time.Second, func() bool {
		uids = map[string]string{}
		for _, dir := range envCgroupDirs(t, a.name) {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, pid := range strings.Fields(string(b)) {
				status, err := os.ReadFile("/proc/" + pid + "/status")
				if err != nil {
					continue
				}
				var uid string
				for _, line := range strings.Split(string(status), "\n") {
					if v, ok := strings.CutPrefix(line, "Uid:"); ok {
						uid = strings.Fields(v)[0] // real uid
					}
				}
				if uid == "0" {
					return false
				}
				env := filepath.Base(dir)
				if uid == "993" {
					t.Fatalf("process %s of %s runs as the host's uid 993", pid, env)
				}
				if other, ok := uids[uid]; ok && other != env {
					t.Fatalf("environments %s and %s share host uid %s", other, env, uid)
				}
				uids[uid] = env
			}
		}
		return true
	})
	if len(uids) < 2 {
		t.Errorf("expected the two environments' processes under two host uids, found %v", uids)
	}
}

// bodyFlood is one request announcing a large body, sent over its own connection as fast as the
// agent takes it.
type bodyFlood struct {
	status  int
	errType string
	// sentAtAnswer is how much of the body had been written when the answer's head arrived.
	sentAtAnswer int64
	err          error
}

// floodOne sends head (a request line and headers, without the blank line) with a body of size
// bytes, and reads the answer while the body is still being written.
func floodOne(addr, head string, size int64) bodyFlood {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return bodyFlood{err: err}
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "%sContent-Length: %d\r\n\r\n", head, size); err != nil {
		return bodyFlood{err: err}
	}
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		for sent.Load() < size {
			n, err := c.Write(chunk[:min(int64(len(chunk)), size-sent.Load())])
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	at := sent.Load()
	c.Close() // stops the writer
	<-done
	if err != nil {
		return bodyFlood{err: err, sentAtAnswer: at}
	}
	resp.Body.Close()
	return bodyFlood{status: resp.StatusCode, errType: resp.Header.Get("X-Amzn-ErrorType"), sentAtAnswer: at}
}

// TestAdversarialUnsignedBodies: with access keys configured, 50 clients at once each announce a
// 70 MB body to Invoke or CreateFunction without a signature. The agent must refuse each
// (403 MissingAuthenticationTokenException) on its headers: every client gets its answer with
// most of its body still unsent, and the agent's memory grows by far less than the bodies
// (bound: 200 MB, against 3.5 GB if it buffered them). A request signed with a key the agent
// does not have is refused the same way.
func TestAdversarialUnsignedBodies(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-body", keys: []testKey{{"ops", authAdminID, authAdminSecret, "admin"}}})
	hostport := strings.TrimPrefix(a.addr, "http://")
	const size = 70 << 20
	const clients = 50
	pid := a.cmd.Process.Pid
	before, err := vmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if rss, err := vmRSS(pid); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	heads := map[string]string{
		"invoke": "POST /2015-03-31/functions/fn/invocations HTTP/1.1\r\nHost: " + hostport + "\r\nContent-Type: application/json\r\n",
		"create": "POST /2015-03-31/functions HTTP/1.1\r\nHost: " + hostport + "\r\nContent-Type: application/json\r\n",
	}
	results := make([]bodyFlood, clients)
	routes := make([]string, clients)
	var wg sync.WaitGroup
	for i := range clients {
		routes[i] = []string{"invoke", "create"}[i%2]
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = floodOne(hostport, heads[routes[i]], size) }()
	}
	wg.Wait()
	close(stopSampling)
	<-sampled
	var maxSent int64
	for i, r := range results {
		if r.err != nil || r.status != http.StatusForbidden || r.errType != "MissingAuthenticationTokenException" {
			t.Errorf("client %d (%s): %d %s %v; want 403 MissingAuthenticationTokenException", i, routes[i], r.status, r.errType, r.err)
		}
		// The kernel's socket buffers take a few MB the agent never reads.
		if r.sentAtAnswer > size/4 {
			t.Errorf("client %d (%s) had sent %d MB of its 70 MB body when the answer came: the agent read the body first", i, routes[i], r.sentAtAnswer>>20)
		}
		maxSent = max(maxSent, r.sentAtAnswer)
	}
	growth := peak.Load() - before
	t.Logf("RSS %d MB before, peak %d MB; at most %d MB of a body sent before its answer", before>>20, peak.Load()>>20, maxSent>>20)
	if growth > 200<<20 {
		t.Errorf("the agent's RSS grew by %d MB for %d unsigned 70 MB bodies; want under 200 MB", growth>>20, clients)
	}

	// A key the agent does not have, with the same large body.
	req, _ := http.NewRequest("POST", a.addr+"/2015-03-31/functions", nil)
	req.ContentLength = size
	sum := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAUNKNOWNKEY000001", SecretAccessKey: "s"},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	var head strings.Builder
	head.WriteString("POST /2015-03-31/functions HTTP/1.1\r\nHost: " + hostport + "\r\n")
	_ = req.Header.Write(&head)
	r := floodOne(hostport, head.String(), size)
	if r.err != nil || r.status != http.StatusForbidden || r.errType != "UnrecognizedClientException" || r.sentAtAnswer > size/4 {
		t.Errorf("unknown key: %d %s %v after %d MB of the body; want 403 UnrecognizedClientException before most of it",
			r.status, r.errType, r.err, r.sentAtAnswer>>20)
	}
	// The agent still serves a signed request.
	if r := a.invoke("fn", `{}`, nil); r.status != http.StatusNotFound {
		t.Errorf("a signed request after the flood: %d %s", r.status, r.body)
	}
}

// TestAdversarialSlowHeaders: a client that sends its request head one byte a second (slowloris)
// is cut off by the agent (its 10 s header deadline) long before the head is complete: the
// connection is closed, after at most a 400 (net/http's answer to a head it timed out on).
func TestAdversarialSlowHeaders(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-slow"})
	hostport := strings.TrimPrefix(a.addr, "http://")
	head := "POST /2015-03-31/functions HTTP/1.1\r\nHost: " + hostport + "\r\nContent-Type: application/json\r\nX-Padding: " +
		strings.Repeat("x", 60) + "\r\nContent-Length: 2\r\n\r\n{}"
	c, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c) // until the agent closes the connection
		answer <- string(b)
	}()
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sent := 0; sent < len(head); sent++ {
		if _, err := c.Write([]byte{head[sent]}); err != nil {
			t.Logf("cut off after %s, %d of %d bytes of the head sent: %v", time.Since(start).Round(time.Second), sent, len(head), err)
			return
		}
		select {
		case got := <-answer:
			if got != "" && !strings.HasPrefix(got, "HTTP/1.1 400 ") {
				t.Fatalf("the agent answered a head it had not received whole: %q", got)
			}
			t.Logf("cut off after %s, %d of %d bytes of the head sent; answer %q", time.Since(start).Round(time.Second), sent+1, len(head), got)
			return
		case <-tick.C:
		}
	}
	t.Fatalf("the agent took the whole head at one byte a second (%d bytes in %s) without cutting the client off", len(head), time.Since(start).Round(time.Second))
}

// TestAdversarialDevOnTheNetwork: `agent -dev` (plugins trusted as found, a process-driver
// fallback) with an HTTP address other machines reach and no access key refuses to start,
// naming the address and both fixes; the same file with an access_key block starts.
func TestAdversarialDevOnTheNetwork(t *testing.T) {
	needRoot(t)
	httpAddr := fmt.Sprintf("0.0.0.0:%d", freePort(t))
	natsHCL, _ := natsBlock(t)
	file := fmt.Sprintf("node_name = \"adv-dev\"\nlog_level = \"debug\"\nhttp {\n  address = %q\n}\ncluster {\n  address = \"127.0.0.1:%d\"\n}\n%s",
		httpAddr, freePort(t), natsHCL)
	dir := t.TempDir()
	run := func(conf string) (*exec.Cmd, *syncBuffer) {
		p := filepath.Join(dir, "agent.hcl")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out := &syncBuffer{}
		cmd := exec.Command(gatewayBin, "agent", "-dev", "-config", p, "-data-dir", filepath.Join(dir, "data"))
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, out
	}

	cmd, out := run(file)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("-dev on %s without keys kept running:\n%s", httpAddr, out.String())
	}
	msg := out.String()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(msg, httpAddr) || !strings.Contains(msg, "access_key") || !strings.Contains(msg, `"127.0.0.1:`) {
		t.Fatalf("-dev on %s without keys exited %d; want 1 with a message naming the address, access_key and 127.0.0.1:\n%s",
			httpAddr, cmd.ProcessState.ExitCode(), msg)
	}
	if strings.Contains(msg, "gateway agent started") {
		t.Fatalf("the refused agent served first:\n%s", msg)
	}

	cmd, out = run(file + fmt.Sprintf("access_key \"ops\" {\n  id     = %q\n  secret = %q\n  policy = \"admin\"\n}\n", authAdminID, authAdminSecret))
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	health := "http://127.0.0.1:" + httpAddr[strings.LastIndexByte(httpAddr, ':')+1:] + "/v1/health"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("-dev on %s with an access key did not serve:\n%s", httpAddr, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAdversarialNATSCredentials: the agent's embedded NATS admits only the NKeys the agent
// made. A client on the host without credentials, or signing with a key of its own, is refused;
// the port is not open on the host's other addresses; the queue plugin, signing in with the key
// the agent gave it, still delivers what `gateway queue send` and a producer holding data_dir's
// client key publish; and no NKey seed shows in the agent's log, `gateway plugins`, the status
// API or the plugin's command line and environment.
func TestAdversarialNATSCredentials(t *testing.T) {
	needRoot(t)
	natsHCL, natsURL := natsBlock(t)
	a := startAgent(t, agentOptions{node: "adv-nats", top: pluginBlock(t, "queue", pluginBins["queue"], "") + natsHCL})
	hostPort := strings.TrimPrefix(natsURL, "nats://")
	if c, err := net.DialTimeout("tcp", hostPort, time.Second); err != nil {
		t.Fatalf("NATS does not listen at %s: %v", hostPort, err)
	} else {
		c.Close()
	}
	stranger, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	strangerPub, _ := stranger.PublicKey()
	for what, opts := range map[string][]nats.Option{
		"without credentials":   nil,
		"with a key of its own": {nats.Nkey(strangerPub, stranger.Sign)},
	} {
		nc, err := nats.Connect(natsURL, append(opts, nats.Timeout(5*time.Second))...)
		if err == nil {
			nc.Close()
			t.Errorf("a client %s got into the agent's NATS", what)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("a client %s: %v, want an authorization violation", what, err)
		}
	}
	// Listening on 127.0.0.1 only: the port is closed on the host's other addresses.
	_, port, _ := net.SplitHostPort(hostPort)
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil {
				continue
			}
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), port), time.Second); err == nil {
				c.Close()
				t.Errorf("NATS answers on %s, not only on loopback", ipn.IP)
			}
		}
	}

	fns := fmt.Sprintf(`
function "worker" {
  runtime = "provided.al2023"
  code    = %q
  trigger "jobs" {
    plugin = "queue"
    source = "jobs"
  }
}
`, fnDir)
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, fns)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	for i := 1; i <= 5; i++ {
		if out, errOut, code := a.cli("queue", "send", "-address", a.addr, "jobs", fmt.Sprintf(`{"id":%d}`, i)); code != 0 {
			t.Fatalf("gateway queue send: %d %s %s", code, out, errOut)
		}
	}
	js := jetStream(t, natsURL, a.natsCreds())
	for i := 6; i <= 10; i++ {
		if err := natsq.Publish(context.Background(), js, "jobs", []byte(fmt.Sprintf(`{"id":%d}`, i)), nil); err != nil {
			t.Fatalf("publishing with the client key: %v", err)
		}
	}
	waitFor(t, "every job processed by the plugin", 30*time.Second, func() bool { return len(processed(a.functionLogs("worker"))) == 10 })

	// Seeds of user NKeys ("SU" and 56 base32 characters): the client key's, which the test
	// knows, and the plugins' and the agent's, which it must not find anywhere.
	seedRE := regexp.MustCompile(`SU[A-Z2-7]{56}`)
	clientSeed, err := os.ReadFile(filepath.Join(a.dataDir, "nats-client.nk"))
	if err != nil || !seedRE.Match(clientSeed) {
		t.Fatalf("data_dir's client key: %v %q", err, clientSeed)
	}
	if fi, err := os.Stat(filepath.Join(a.dataDir, "nats-client.nk")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the client key: %v, want mode 0600 (%v)", fi, err)
	}
	st := a.pluginStatus()
	if len(st) != 1 || st[0].State != host.StateRunning || st[0].PID == 0 {
		t.Fatalf("plugin status: %+v", st)
	}
	plugins, _, _ := a.cli("plugins", "-address", a.addr)
	req, _ := http.NewRequest("GET", a.addr+"/v1/status", nil)
	a.sign(req, nil)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	status, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st[0].PID))
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", st[0].PID))
	if err != nil {
		t.Fatalf("the plugin's environment: %v", err)
	}
	for what, text := range map[string]string{"the agent's log": a.out.String(), "gateway plugins": plugins,
		"/v1/status": string(status), "the plugin's command line": string(cmdline), "the plugin's environment": string(environ)} {
		if seedRE.MatchString(text) {
			t.Errorf("%s shows an NKey seed", what)
		}
	}
}

// TestAdversarialRuntimeAPIFlood: a function opens 10,000 connections to the Runtime API, 500
// at a time with half a request each. The agent's open files and memory stay bounded (the API
// holds at most sandbox.MaxRuntimeConns connections of an environment), and the agent and the
// function keep answering.
func TestAdversarialRuntimeAPIFlood(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "adv-rtflood"})
	fns := fmt.Sprintf(`
function "flood" {
  runtime = "provided.al2023"
  code    = %q
  timeout = "120s"
}
`, fnDir)
	a.apply(fns)
	if r := a.invoke("flood", `{"mode":"counter"}`, nil); r.status != 200 {
		t.Fatalf("warm-up: %d %s", r.status, r.body)
	}
	pid := a.cmd.Process.Pid
	fds := func() int {
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	rss := func() int64 {
		n, err := vmRSS(pid)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	fd0, rss0 := fds(), rss()
	done := make(chan invokeResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", a.addr+"/2015-03-31/functions/flood/invocations",
			strings.NewReader(`{"mode":"flood","n":10000,"size":500}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- invokeResult{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- invokeResult{status: resp.StatusCode, body: b}
	}()
	maxFD, maxRSS := fd0, rss0
	var r invokeResult
sample:
	for {
		select {
		case r = <-done:
			break sample
		case <-time.After(20 * time.Millisecond):
			maxFD, maxRSS = max(maxFD, fds()), max(maxRSS, rss())
		}
	}
	if r.status != 200 || r.header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("flood: %d %s", r.status, r.body)
	}
	var got struct {
		Dialed  int `json:"dialed"`
		HeldMax int `json:"held_max"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || got.Dialed != 10000 {
		t.Fatalf("the function did not dial 10,000 connections: %s", r.body)
	}
	// 32 connections of the flood at most, plus a few of the agent's own.
	if maxFD-fd0 > 64 {
		t.Errorf("the agent's open files went from %d to %d during the flood", fd0, maxFD)
	}
	if maxRSS-rss0 > 64<<20 {
		t.Errorf("the agent's memory grew by %d MB during the flood", (maxRSS-rss0)>>20)
	}
	t.Logf("agent during the flood: open files %d -> max %d, RSS %d MB -> max %d MB; the API held at most %d connections",
		fd0, maxFD, rss0>>20, maxRSS>>20, got.HeldMax)
	if r := a.invoke("flood", `{"mode":"counter"}`, nil); r.status != 200 || r.header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("after the flood: %d %s", r.status, r.body)
	}
}
