package integration

// The adversarial suite (docs/security.md): what a hostile function or client would try, against
// a real agent with real sandboxes. Each test fails on a gateway without the defence it names.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
