// Package integration holds the end-to-end tests: they build the real gateway binary and a real
// aws-lambda-go function once, start real agent processes, and check behaviour through the
// agent's HTTP API, its CLI and the AWS SDK, with real sandboxes.
package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/lambdagw/gateway/internal/testfixtures/testfunction/testbuild"
)

var (
	gatewayBin string // the real bin/gateway, built with cgo
	fnDir      string // the test function's code folder (bootstrap)
	helloDir   string // the example hello function's code folder
	rawDir     string // internal/testfixtures/streamruntime's code folder: a custom runtime with no library
	repoRoot   string
	// pluginBins are the plugin binaries by name: the built-in triggers (queue, ...) and
	// "test" (internal/testfixtures/testplugin, a trigger and extension).
	pluginBins = map[string]string{}
)

func TestMain(m *testing.M) {
	code, err := buildAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code(m))
}

func buildAll() (func(*testing.M) int, error) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Join(filepath.Dir(file), "..")
	// The binary must not live under a libcontainer state root (see DESIGN.md 4.3).
	dir, err := os.MkdirTemp("", "gateway-it-bin-")
	if err != nil {
		return nil, err
	}
	// Some tests run the binary as an unprivileged user.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	builds := []struct {
		out, pkg string
		cgo      string
	}{
		{filepath.Join(dir, "gateway"), "./cmd/gateway", "1"},
		{filepath.Join(dir, "hello", "bootstrap"), "./examples/functions/hello", "0"},
		{filepath.Join(dir, "gateway-trigger-queue"), "./plugins/queue", "0"},
		{filepath.Join(dir, "testplugin"), "./internal/testfixtures/testplugin", "0"},
		{filepath.Join(dir, "gateway-trigger-stream"), "./plugins/stream", "0"},
		{filepath.Join(dir, "gateway-trigger-s3"), "./plugins/s3", "0"},
		{filepath.Join(dir, "rawfn", "bootstrap"), "./internal/testfixtures/streamruntime", "0"},
	}
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	if fnDir, err = testbuild.Build(filepath.Join(dir, "fn")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	gatewayBin = builds[0].out
	helloDir = filepath.Dir(builds[1].out)
	pluginBins["queue"] = builds[2].out
	pluginBins["test"] = builds[3].out
	pluginBins["stream"] = builds[4].out
	pluginBins["s3"] = builds[5].out
	rawDir = filepath.Dir(builds[6].out)
	return func(m *testing.M) int {
		defer os.RemoveAll(dir)
		return m.Run()
	}, nil
}

// needRoot skips tests that need the libcontainer driver where it cannot run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root and cgroups for the libcontainer driver; CI runs as root")
	}
}

// syncBuffer collects an agent's output for the test log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type agentProc struct {
	t        *testing.T
	name     string
	dataDir  string
	confPath string
	addr     string // http://host:port
	raftAddr string // its cluster address
	netns    string // the network namespace it runs in, if not the test's
	admin    *testKey
	// client reaches the agent's HTTP API (trusting caFile when it serves HTTPS).
	client  *http.Client
	caFile  string
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	exitErr error
}

type agentOptions struct {
	driver  string // default libcontainer
	extra   string // more HCL for the sandbox block
	dataDir string // reuse a data dir (restart tests)
	node    string
	top     string // more top-level HCL
	// keys become access_key blocks; the first admin key signs the harness's own API calls
	// (cli, sdk, invoke), as an operator's configured CLI would.
	keys []testKey
	// raftPort is the cluster port (default: a free one); cluster replaces the body of the
	// cluster block after its address (default: bootstrap = true).
	raftPort int
	cluster  string
	// netns runs the agent in that network namespace, listening on ip (partition tests).
	netns, ip string
	// httpExtra is more HCL for the http block; with caFile (the PEM CA of its tls block's
	// certificate) the agent serves HTTPS and the harness's clients trust that CA.
	httpExtra, caFile string
}

// testKey is one access_key block.
type testKey struct{ name, id, secret, policy string }

// freePort returns a loopback port nothing listens on.
//
// It picks from below the kernel's ephemeral range (32768-60999 by default), where a port found
// by listening on :0 lies: between this check and the agent's bind, such a port can be handed to
// an outgoing connection of any process on the machine ("address already in use").
//
// A port is handed out once per test binary: two calls of one test (an agent's HTTP and NATS
// ports) would otherwise both find the same port free before either binds it.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 200; i++ {
		p := 20000 + rand.IntN(12000)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			portsGiven[p] = true
			return p
		}
	}
	t.Fatal("no free port between 20000 and 32000")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// startAgent starts a real agent process with its own ports and data dir, waits until it serves,
// and registers its stop (and the leftover check) as a cleanup.
func startAgent(t *testing.T, o agentOptions) *agentProc {
	t.Helper()
	a := newAgent(t, o)
	a.waitHealthy()
	return a
}

// newAgent starts a real agent process like startAgent but returns at once: nodes that form a
// cluster together only serve once all of them run.
func newAgent(t *testing.T, o agentOptions) *agentProc {
	t.Helper()
	if o.driver == "" {
		o.driver = "libcontainer"
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	if o.node == "" {
		o.node = "it"
	}
	httpPort, raftPort := freePort(t), o.raftPort
	if raftPort == 0 {
		raftPort = freePort(t)
	}
	if o.cluster == "" {
		o.cluster = "bootstrap = true"
	}
	host := "127.0.0.1"
	if o.ip != "" {
		host = o.ip
	}
	conf := fmt.Sprintf(`
node_name = %[1]q
data_dir  = %[2]q
log_level = "debug"
http    {
  address = "%[7]s:%[3]d"
  %[10]s
}
cluster {
  address = "%[7]s:%[4]d"
  %[5]s
}
sandbox {
  driver = %[6]q
  %[8]s
}
%[9]s
`, o.node, o.dataDir, httpPort, raftPort, o.cluster, o.driver, host, o.extra, o.top, o.httpExtra)
	var admin *testKey
	for i, k := range o.keys {
		conf += fmt.Sprintf("access_key %q {\n  id     = %q\n  secret = %q\n  policy = %q\n}\n", k.name, k.id, k.secret, k.policy)
		if k.policy == "admin" && admin == nil {
			admin = &o.keys[i]
		}
	}
	confPath := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	scheme, client := "http", http.DefaultClient
	if o.caFile != "" {
		scheme, client = "https", caClient(t, o.caFile)
	}
	a := &agentProc{t: t, name: o.node, dataDir: o.dataDir, confPath: confPath, admin: admin, client: client, caFile: o.caFile,
		addr: fmt.Sprintf("%s://%s:%d", scheme, host, httpPort), out: &syncBuffer{}, exited: make(chan struct{}),
		raftAddr: fmt.Sprintf("%s:%d", host, raftPort), netns: o.netns}
	a.launch()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() || os.Getenv("GATEWAY_IT_LOGS") != "" {
			t.Logf("agent %s output:\n%s", a.name, a.out.String())
		}
	})
	return a
}

// start starts the agent process (again) and waits until it serves.
func (a *agentProc) start() {
	a.t.Helper()
	a.launch()
	a.waitHealthy()
}

// launch starts the agent process.
func (a *agentProc) launch() {
	t := a.t
	t.Helper()
	a.exited = make(chan struct{})
	a.cmd = exec.Command(gatewayBin, "agent", "-config", a.confPath)
	if a.netns != "" {
		// nsenter enters only the network namespace and execs the agent (the process is the
		// agent); ip netns exec would also remount /sys, hiding the cgroup hierarchy.
		a.cmd = exec.Command("nsenter", "--net=/run/netns/"+a.netns, gatewayBin, "agent", "-config", a.confPath)
	}
	a.cmd.Stdout = a.out
	a.cmd.Stderr = a.out
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exitErr = a.cmd.Wait(); close(a.exited) }()
}

// waitHealthy waits until the agent answers /v1/health: 200, or 503 when a check fails (a
// cluster node without its quorum yet; TestHealth asserts the checks).
func (a *agentProc) waitHealthy() {
	t := a.t
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := a.client.Get(a.addr + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 503 && resp.Header.Get("Content-Type") == "application/json" {
				return
			}
		}
		select {
		case <-a.exited:
			t.Fatalf("agent exited at start: %v\n%s", a.exitErr, a.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not become healthy:\n%s", a.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the drain; SIGKILL after a bound.
func (a *agentProc) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(60 * time.Second):
		a.t.Errorf("agent %s did not stop within 60s of SIGTERM; killing it", a.name)
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

// cli runs the real gateway binary against this agent and returns stdout, stderr and the exit code.
func (a *agentProc) cli(args ...string) (string, string, int) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewayBin, args...)
	cmd.Env = append(os.Environ(), "GATEWAY_ADDR="+a.addr, "GATEWAY_CACERT="+a.caFile)
	if a.admin != nil {
		cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID="+a.admin.id, "AWS_SECRET_ACCESS_KEY="+a.admin.secret)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		a.t.Fatalf("running gateway %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// apply runs `gateway apply` of the function file hcl against this agent, failing the test
// when it fails.
func (a *agentProc) apply(hcl string) {
	a.t.Helper()
	if out, errOut, code := a.cli("apply", writeFunctions(a.t, hcl)); code != 0 {
		a.t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
}

// sdk is an AWS SDK for Go v2 Lambda client for this agent. opts adjust it (retries, HTTP client).
func (a *agentProc) sdk(opts ...func(*awslambda.Options)) *awslambda.Client {
	o := awslambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(a.addr), Credentials: aws.AnonymousCredentials{}}
	var rt http.RoundTripper = awshttp.NewBuildableClient().GetTransport()
	if a.caFile != "" {
		rt = a.client.Transport
	}
	o.HTTPClient = &http.Client{Transport: inMemoryBodies{rt}}
	if a.admin != nil {
		creds := aws.Credentials{AccessKeyID: a.admin.id, SecretAccessKey: a.admin.secret}
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	}
	for _, f := range opts {
		f(&o)
	}
	return awslambda.New(o)
}

// inMemoryBodies hands net/http each request body as a bytes.Reader. It works around a race
// in the SDK's HTTP layer (smithy-go 1.28.9, the newest): smithy closes the request body as
// soon as the response headers arrive, and a closed body's WriteTo answers io.EOF; net/http
// flushes the headers before a body it does not know to be in memory and, after copying the
// body, reads it once more to check its length. When the gateway answers before the
// transport's writer goroutine gets to that read (a warm function on a loaded machine), the
// writer sees io.EOF and closes the connection under the response: a streamed invocation
// fails with "use of closed network connection". With a bytes.Reader, net/http writes the
// whole request in one flush after its last read, so nothing can answer earlier.
// TestFunctionURLs/SDKRequestBodyRace shows the race with the SDK's own transport.
type inMemoryBodies struct{ next http.RoundTripper }

func (t inMemoryBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
	}
	return t.next.RoundTrip(r)
}

// caClient is an HTTP client that trusts the PEM CA certificates in caFile.
func caClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Transport: tr}
}

// sign signs an API request with the agent's admin key, if it has one.
func (a *agentProc) sign(req *http.Request, body []byte) {
	a.t.Helper()
	if a.admin == nil {
		return
	}
	sum := sha256.Sum256(body)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: a.admin.id, SecretAccessKey: a.admin.secret},
		req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now())
	if err != nil {
		a.t.Fatal(err)
	}
}

// envInfo is an environment in /v1/status.
type envInfo struct {
	ID          string `json:"id"`
	Function    string `json:"function"`
	Version     string `json:"version"`
	State       string `json:"state"`
	Provisioned bool   `json:"provisioned"`
}

// environments lists the agent's idle, frozen and standby environments (/v1/status).
func (a *agentProc) environments() []envInfo {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.addr+"/v1/status", nil)
	a.sign(req, nil)
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Environments []envInfo `json:"environments"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		a.t.Fatalf("reading /v1/status: %d %v", resp.StatusCode, err)
	}
	return st.Environments
}

// invokeResult is a raw Invoke API answer.
type invokeResult struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

func (a *agentProc) invoke(name, payload string, headers map[string]string) invokeResult {
	a.t.Helper()
	return a.invokeWithin(90*time.Second, name, payload, headers)
}

// invokeWithin is invoke bounded by d, so that a call the gateway never answers fails the test
// (with the agents' logs) rather than hanging it.
func (a *agentProc) invokeWithin(d time.Duration, name, payload string, headers map[string]string) invokeResult {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", a.addr+"/2015-03-31/functions/"+name+"/invocations", strings.NewReader(payload))
	if err != nil {
		a.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	a.sign(req, []byte(payload))
	start := time.Now()
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("invoking %s: %v", name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return invokeResult{status: resp.StatusCode, header: resp.Header, body: body, elapsed: time.Since(start)}
}

// writeFunctions writes an HCL function file and returns its path.
func writeFunctions(t *testing.T, hcl string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "functions.hcl")
	if err := os.WriteFile(p, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
