// Command testfunction is an ordinary aws-lambda-go function whose behaviour the tests choose
// with the event, so the sandbox and the integration tests exercise a real, unmodified Lambda
// runtime client. Build it with CGO_ENABLED=0 as the code's bootstrap.
//
// Init behaviour comes from the function's environment: INIT_MODE=crash exits with status 4
// before the runtime starts, INIT_MODE=sleep sleeps INIT_SLEEP_MS first, INIT_MODE=hang never
// starts the runtime.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Event selects what one invocation does.
type Event struct {
	Mode  string `json:"mode"`
	Name  string `json:"name,omitempty"`
	MS    int    `json:"ms,omitempty"`
	N     int    `json:"n,omitempty"`
	Path  string `json:"path,omitempty"`
	Value string `json:"value,omitempty"`
	Addr  string `json:"addr,omitempty"`
	Size  int    `json:"size,omitempty"`
	Fail  bool   `json:"fail,omitempty"`
	// Stamp puts the wall-clock time of each chunk's write (Unix nanoseconds) in its label, so
	// a client on the same machine can tell how long the chunk took to reach it.
	Stamp bool `json:"stamp,omitempty"`
	URL   bool `json:"url,omitempty"`
}

// counter survives between invocations while the environment stays warm.
var counter int

// entry takes direct invocations (an Event) and function URL requests, whose Event comes from
// the query string ("?mode=stream&n=3&url=true"); a URL request without a mode gets its own
// event back (mode echo).
func entry(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		RequestContext struct {
			HTTP struct{ Method string } `json:"http"`
		} `json:"requestContext"`
	}
	_ = json.Unmarshal(raw, &probe)
	var records struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		}
	}
	if json.Unmarshal(raw, &records) == nil && len(records.Records) > 0 {
		switch records.Records[0].EventSource {
		case "aws:sqs":
			return sqsBatch(ctx, raw)
		case "aws:kinesis":
			return kinesisBatch(raw)
		case "aws:s3":
			return s3Records(raw)
		}
	}
	if addr := os.Getenv("RECORD_SINK"); addr != "" {
		// Every event this function gets goes to a server of the test's as it came (a
		// destination record, say), before it is handled.
		if resp, err := http.Post("http://"+addr+"/record", "application/json", bytes.NewReader(raw)); err == nil {
			resp.Body.Close()
		}
	}
	if probe.RequestContext.HTTP.Method == "" {
		var ev Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		return handle(ctx, ev)
	}
	var req events.LambdaFunctionURLRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, err
	}
	q := req.QueryStringParameters
	num := func(k string) int { n, _ := strconv.Atoi(q[k]); return n }
	ev := Event{Mode: q["mode"], Name: q["name"], MS: num("ms"), N: num("n"), Size: num("size"),
		Fail: q["fail"] == "true", URL: q["url"] == "true", Value: q["value"], Stamp: q["stamp"] == "true"}
	switch ev.Mode {
	case "", "echo":
		counter++
		return &events.LambdaFunctionURLResponse{
			StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json", "X-Echo": "yes"},
			Body: string(raw),
		}, nil
	case "respond":
		// A function URL response built from the query: status, one header, cookies, and a
		// body that is base64 on the wire when b64=true.
		counter++
		resp := &events.LambdaFunctionURLResponse{StatusCode: num("status"), Body: ev.Value,
			Headers: map[string]string{"X-Custom": q["header"]}}
		if q["cookies"] != "" {
			resp.Cookies = strings.Split(q["cookies"], "|")
		}
		if q["b64"] == "true" {
			resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(ev.Value)), true
			resp.Headers["Content-Type"] = "application/octet-stream"
		}
		return resp, nil
	}
	return handle(ctx, ev)
}

func handle(ctx context.Context, ev Event) (any, error) {
	counter++
	switch ev.Mode {
	case "", "hello":
		name := ev.Name
		if name == "" {
			name = "world"
		}
		return map[string]any{"message": "Hello, " + name + "!"}, nil
	case "counter":
		return map[string]int{"count": counter}, nil
	case "sleep":
		// start and end (Unix ns) let a test count how many invocations ran at once.
		start := time.Now().UnixNano()
		time.Sleep(time.Duration(ev.MS) * time.Millisecond)
		return map[string]any{"slept": strconv.Itoa(ev.MS), "start": start, "end": time.Now().UnixNano()}, nil
	case "log":
		for i := 0; i < ev.N; i++ {
			fmt.Printf("log line %d\n", i)
		}
		fmt.Fprint(os.Stderr, "no newline at the end")
		return map[string]int{"logged": ev.N}, nil
	case "event":
		// An asynchronous event: "event <name> start <attempt-request-id>", MS of work, then
		// "event <name> done" (or an error when Fail is set).
		lc, _ := lambdacontext.FromContext(ctx)
		id := ""
		if lc != nil {
			id = lc.AwsRequestID
		}
		fmt.Printf("event %s start %s\n", ev.Name, id)
		report := func(what string) {
			// With Addr, each step is reported to a server of the test's (the process driver
			// shares the host's network).
			if ev.Addr == "" {
				return
			}
			if resp, err := http.Get("http://" + ev.Addr + "/" + what + "/" + ev.Name); err == nil {
				resp.Body.Close()
			}
		}
		report("start")
		time.Sleep(time.Duration(ev.MS) * time.Millisecond)
		if ev.N > 0 && ev.Addr != "" {
			// Fails its first N tries: the test's server counts the starts.
			if resp, err := http.Get("http://" + ev.Addr + "/count/start/" + ev.Name); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if n, _ := strconv.Atoi(string(b)); n <= ev.N {
					fmt.Printf("event %s failed (try %d)\n", ev.Name, n)
					return nil, fmt.Errorf("event %s fails its first %d tries", ev.Name, ev.N)
				}
			}
		}
		if ev.Fail {
			fmt.Printf("event %s failed\n", ev.Name)
			return nil, fmt.Errorf("event %s failed on purpose", ev.Name)
		}
		report("done")
		fmt.Printf("event %s done\n", ev.Name)
		return map[string]string{"event": ev.Name}, nil
	case "lines":
		for i := 0; i < ev.N; i++ {
			fmt.Printf("line %d of this invocation\n", i)
		}
		return map[string]int{"logged": ev.N}, nil
	case "crash":
		fmt.Println("about to crash")
		os.Exit(3)
	case "error":
		return nil, errors.New("something went wrong")
	case "oom":
		var hold [][]byte
		for i := 0; i < ev.N; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			hold = append(hold, b)
		}
		return map[string]int{"allocated_mb": len(hold)}, nil
	case "big":
		return strings.Repeat("x", ev.N), nil
	case "writefile":
		err := os.WriteFile(ev.Path, []byte(ev.Value), 0o644)
		return map[string]string{"error": errString(err)}, nil
	case "fill":
		// Writes N MB of zeros to Path, to find where a size limit stops it.
		err := fill(ev.Path, ev.N)
		return map[string]string{"error": errString(err)}, nil
	case "spawn":
		// Starts N sleeping copies of itself; a pids limit makes the later ones fail. With
		// value "keep" they are left running after the invocation.
		started, err := spawn(ev.N, ev.Value == "keep")
		return map[string]any{"started": started, "error": errString(err)}, nil
	case "burn":
		// Keeps a CPU busy for MS milliseconds without output: the neighbour a log flood is
		// compared with.
		end := time.Now().Add(time.Duration(ev.MS) * time.Millisecond)
		x := 0
		for time.Now().Before(end) {
			for i := 0; i < 1000; i++ {
				x += i
			}
		}
		return map[string]int{"burned": x & 1}, nil
	case "print":
		// Prints Value as a line of output, whatever it says (a forged REPORT line, say), then
		// sleeps MS (so calls made at once each keep an environment busy).
		fmt.Println(ev.Value)
		time.Sleep(time.Duration(ev.MS) * time.Millisecond)
		return map[string]string{"printed": ev.Value}, nil
	case "procs":
		// The processes this function can see, and its own ids: a neighbour must see none of
		// another environment's.
		entries, _ := os.ReadDir("/proc")
		var procs []string
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err == nil {
				cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				procs = append(procs, e.Name()+":"+strings.ReplaceAll(string(cmd), "\x00", " "))
			}
		}
		return map[string]any{"procs": procs, "uid": os.Getuid(), "gid": os.Getgid()}, nil
	case "register":
		// An extension registering after Init: refused.
		req, _ := http.NewRequest("POST", "http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2020-01-01/extension/register",
			strings.NewReader(`{"events":["INVOKE"]}`))
		req.Header.Set("Lambda-Extension-Name", "late")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return map[string]string{"error": err.Error()}, nil
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return map[string]any{"status": resp.StatusCode, "body": string(b)}, nil
	case "fetch":
		// GETs the URL in Path (an extension's listener at sandbox.localdomain).
		resp, err := http.Get(ev.Path)
		if err != nil {
			return map[string]string{"error": err.Error()}, nil
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return map[string]any{"status": resp.StatusCode, "body": string(b)}, nil
	case "readfile":
		b, err := os.ReadFile(ev.Path)
		return map[string]string{"content": string(b), "error": errString(err)}, nil
	case "stat":
		// The owner and mode of Path as the function sees them.
		var st syscall.Stat_t
		if err := syscall.Lstat(ev.Path, &st); err != nil {
			return map[string]any{"error": err.Error()}, nil
		}
		return map[string]any{"uid": st.Uid, "gid": st.Gid, "mode": fmt.Sprintf("%o", st.Mode), "error": ""}, nil
	case "mountinfo":
		// The mounts of the environment, /proc/self/mountinfo's lines.
		b, err := os.ReadFile("/proc/self/mountinfo")
		return map[string]any{"lines": strings.Split(strings.TrimSpace(string(b)), "\n"), "error": errString(err)}, nil
	case "symlink":
		// Makes Path a symbolic link to Value (replacing a folder: it is renamed to Path.old).
		if st, err := os.Lstat(ev.Path); err == nil && st.IsDir() {
			if err := os.Rename(ev.Path, ev.Path+".old"); err != nil {
				return map[string]string{"error": err.Error()}, nil
			}
		}
		return map[string]string{"error": errString(os.Symlink(ev.Value, ev.Path))}, nil
	case "exec":
		// Runs Path with the argument Value and returns what it printed.
		out, err := exec.Command(ev.Path, ev.Value).CombinedOutput()
		return map[string]string{"output": strings.TrimSpace(string(out)), "error": errString(err)}, nil
	case "remount":
		// Tries to make the mount at Path writable, to unmount it, and to mount over it.
		return remount(ev.Path), nil
	case "dial":
		c, err := net.DialTimeout("tcp", ev.Addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return map[string]string{"error": errString(err)}, nil
	case "interfaces":
		ifs, err := net.Interfaces()
		names := []string{}
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return map[string]any{"interfaces": names, "error": errString(err)}, nil
	case "flood":
		// Makes N connections to the Runtime API, Size at a time, each left with half a request;
		// reports how many the API kept at most, and what it did with a 100 KB header and with a
		// header left unfinished for MS milliseconds.
		return flood(ev.N, ev.Size, time.Duration(ev.MS)*time.Millisecond), nil
	case "syscalls":
		// Tries the calls a sandbox must refuse and reports each one's errno ("ok" if allowed).
		return forbiddenSyscalls(), nil
	case "cpus":
		return map[string]any{"cpus": runtime.NumCPU(), "gomaxprocs": runtime.GOMAXPROCS(0), "policies": schedPolicies()}, nil
	case "trace":
		// The trace header aws-lambda-go set for this invocation from Lambda-Runtime-Trace-Id,
		// logged (an asynchronous call's caller reads it there) and returned.
		id := os.Getenv("_X_AMZN_TRACE_ID")
		fmt.Printf("trace %s %s\n", ev.Name, id)
		return map[string]string{"trace": id}, nil
	case "env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		return env, nil
	case "stream":
		// Streams N chunks of Size bytes (at least a line naming the chunk), MS apart, and fails
		// after them when Fail is set; with URL, as a function URL response with a prelude.
		// One buffer is reused for every chunk (a pipe write returns once it was read), so
		// the function's own cost stays small next to the streaming path's.
		pr, pw := io.Pipe()
		go func() {
			buf := []byte(strings.Repeat("x", max(ev.Size, 0)))
			for i := 0; i < ev.N; i++ {
				if i > 0 && ev.MS > 0 {
					time.Sleep(time.Duration(ev.MS) * time.Millisecond)
				}
				label := fmt.Sprintf("chunk %d\n", i)
				if ev.Stamp {
					label = fmt.Sprintf("chunk %d at %d\n", i, time.Now().UnixNano())
				}
				chunk := []byte(label)
				if pad := ev.Size - len(label); pad > 0 {
					buf[pad-1] = '\n'
					copy(buf[pad:], label)
					chunk = buf
				}
				if _, err := pw.Write(chunk); err != nil {
					return
				}
			}
			if ev.Fail {
				pw.CloseWithError(errors.New("failed in mid-stream"))
				return
			}
			pw.Close()
		}()
		if ev.URL {
			return &events.LambdaFunctionURLStreamingResponse{
				StatusCode: 201,
				Headers:    map[string]string{"Content-Type": "text/plain", "X-Streamed": "yes"},
				Cookies:    []string{"a=1", "b=2; Path=/"},
				Body:       pr,
			}, nil
		}
		return pr, nil
	case "probe":
		lc, _ := lambdacontext.FromContext(ctx)
		return probeRuntimeAPI(lc.AwsRequestID), nil
	case "answer-twice":
		// Answers its own invocation, then tries again; aws-lambda-go's own answer of the
		// returned value is refused too, and it exits.
		lc, _ := lambdacontext.FromContext(ctx)
		url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/" + lc.AwsRequestID + "/response"
		// The first answer waits for 100 Continue before its body (probeClient waits a minute
		// for it, longer than its timeout): a server that never sends it fails this call.
		first, _ := call("POST", url, io.NopCloser(strings.NewReader(`{"first":true}`)), map[string]string{"Expect": "100-continue"})
		second, _ := call("POST", url, strings.NewReader(`{"second":true}`), nil)
		fmt.Printf("answers: %d %d\n", first, second)
		return map[string]bool{"returned": true}, nil
	case "context":
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		return map[string]any{
			"request_id": lc.AwsRequestID, "function_arn": lc.InvokedFunctionArn,
			"deadline_ms": dl.UnixMilli(), "client_context": lc.ClientContext.Custom,
			"pid": os.Getpid(), "hostname": hostname(),
		}, nil
	}
	return nil, fmt.Errorf("unknown mode %q", ev.Mode)
}

func flood(total, hold int, slow time.Duration) map[string]any {
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	partial := []byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	// isOpen tells whether the server still holds c: a read times out instead of failing.
	isOpen := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	dialed, dialErrors, heldMax := 0, 0, 0
	for dialed < total {
		var conns []net.Conn
		for i := 0; i < min(hold, total-dialed); i++ {
			c, err := net.DialTimeout("tcp", api, time.Second)
			dialed++
			if err != nil {
				dialErrors++
				continue
			}
			_, _ = c.Write(partial)
			conns = append(conns, c)
		}
		time.Sleep(100 * time.Millisecond)
		held := 0
		for _, c := range conns {
			if isOpen(c) {
				held++
			}
			c.Close()
		}
		heldMax = max(heldMax, held)
	}
	res := map[string]any{"dialed": dialed, "dial_errors": dialErrors, "held_max": heldMax}
	if c, err := net.DialTimeout("tcp", api, time.Second); err == nil {
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Write(append(append([]byte{}, partial...), strings.Repeat("a", 100<<10)...))
		res["big_header_open"] = isOpen(c)
		c.Close()
	}
	if slow > 0 {
		if c, err := net.DialTimeout("tcp", api, time.Second); err == nil {
			_, _ = c.Write(partial)
			time.Sleep(slow)
			res["slow_header_open"] = isOpen(c)
			c.Close()
		}
	}
	return res
}

// probeRuntimeAPI makes calls a correct runtime never makes and reports what the Runtime API
// answered, as "status errorType".
func probeRuntimeAPI(requestID string) map[string]string {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/"
	out := map[string]string{}
	report := func(name string) func(int, string) {
		return func(status int, errType string) { out[name] = fmt.Sprintf("%d %s", status, errType) }
	}
	report("unknown path")(call("GET", api+"nothing/here", nil, nil))
	report("wrong method")(call("DELETE", api+"invocation/next", nil, nil))
	report("unknown request id")(call("POST", api+"invocation/not-this-one/response", strings.NewReader("{}"), nil))
	report("unknown action")(call("POST", api+"invocation/"+requestID+"/other", strings.NewReader("{}"), nil))
	report("init error after init")(call("POST", api+"init/error", strings.NewReader("{}"), nil))
	// A chunked body sent after 100 Continue, then another call on the same connection.
	big := strings.NewReader(strings.Repeat("x", 64<<10))
	report("expect continue")(call("POST", api+"invocation/not-this-one/error", io.NopCloser(big), map[string]string{"Expect": "100-continue"}))
	report("after expect continue")(call("GET", api+"nothing/here", nil, nil))
	report("http/1.0")(rawCall("GET /2018-06-01/runtime/nothing HTTP/1.0\r\n\r\n"))
	report("malformed")(rawCall("NOT HTTP AT ALL\r\n\r\n"))
	return out
}

var probeClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}

// call makes one request; a body that is not a *strings.Reader is sent chunked.
func call(method, url string, body io.Reader, headers map[string]string) (int, string) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, err.Error()
	}
	if _, ok := body.(io.ReadCloser); ok {
		req.ContentLength = -1
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var e struct {
		Type string `json:"errorType"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Type
}

// rawCall writes req on a new connection and reads until the server closes it; the answer's
// status, and "closed" when the server closed the connection after it.
func rawCall(req string) (int, string) {
	c, err := net.DialTimeout("tcp", os.Getenv("AWS_LAMBDA_RUNTIME_API"), time.Second)
	if err != nil {
		return 0, err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return 0, err.Error()
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return 0, "not closed: " + err.Error()
	}
	var status int
	_, _ = fmt.Sscanf(string(b), "HTTP/1.1 %d", &status)
	return status, "closed"
}

func spawn(n int, keep bool) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	var procs []*os.Process
	defer func() {
		if keep {
			return
		}
		for _, p := range procs {
			_ = p.Kill()
			_, _ = p.Wait()
		}
	}()
	for i := 0; i < n; i++ {
		p, err := os.StartProcess(self, []string{self}, &os.ProcAttr{Env: []string{"INIT_MODE=hang"}})
		if err != nil {
			return len(procs), err
		}
		procs = append(procs, p)
	}
	return len(procs), nil
}

func fill(path string, mb int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := 0; i < mb; i++ {
		if _, err := f.Write(chunk); err != nil {
			return err
		}
	}
	return f.Sync()
}

func hostname() string { h, _ := os.Hostname(); return h }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "whoami" {
		// Run by mode exec: the identity it runs as (a setuid copy must not change it).
		fmt.Printf("euid=%d egid=%d\n", os.Geteuid(), os.Getegid())
		return
	}
	if filepath.Dir(os.Args[0]) == "/opt/extensions" {
		externalExtension(filepath.Base(os.Args[0]))
		return
	}
	if os.Getenv("TEST_SIGTERM") == "1" {
		// A graceful shutdown, as Lambda's samples do it: the runtime gets SIGTERM when the
		// function has extensions.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		go func() {
			<-sigs
			fmt.Println("RUNTIME SIGTERM")
			os.Exit(0)
		}()
	}
	switch os.Getenv("INIT_MODE") {
	case "crash":
		fmt.Println("init failing on purpose")
		os.Exit(4)
	case "sleep":
		ms, _ := strconv.Atoi(os.Getenv("INIT_SLEEP_MS"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
	case "hang":
		for { // select{} would be a deadlock the Go runtime aborts
			time.Sleep(time.Hour)
		}
	}
	startExtension()
	lambda.Start(entry)
}

// sqsBatch handles a queue trigger's SQS event. Each message body is a JSON object:
// {"id": N, "fail_until": K, "error": bool, "ms": M}. It logs "record <id> ok <receiveCount>"
// for each record it succeeds with (the tests count them in the function's log), reports the
// records whose receive count is at most fail_until as batchItemFailures, and fails the whole
// batch when a record says error. ms sleeps before answering.
func sqsBatch(_ context.Context, raw json.RawMessage) (any, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	type body struct {
		ID        int  `json:"id"`
		FailUntil int  `json:"fail_until"`
		Error     bool `json:"error"`
		MS        int  `json:"ms"`
	}
	var failures []events.SQSBatchItemFailure
	sleep := 0
	for _, r := range ev.Records {
		var b body
		_ = json.Unmarshal([]byte(r.Body), &b)
		sleep = max(sleep, b.MS)
		if b.Error {
			time.Sleep(time.Duration(sleep) * time.Millisecond)
			return nil, fmt.Errorf("record %d is poison", b.ID)
		}
	}
	time.Sleep(time.Duration(sleep) * time.Millisecond)
	for _, r := range ev.Records {
		var b body
		_ = json.Unmarshal([]byte(r.Body), &b)
		count, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
		if count <= b.FailUntil {
			failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			continue
		}
		fmt.Printf("record %d ok %d\n", b.ID, count)
	}
	return events.SQSEventResponse{BatchItemFailures: failures}, nil
}

// kinesisBatch handles a stream trigger's Kinesis event: it logs "kinesis <partitionKey>
// <sequenceNumber> <data>" per record, in order (the tests check the order per key), and
// fails the batch when a record's data is "poison".
func kinesisBatch(raw json.RawMessage) (any, error) {
	var ev events.KinesisEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	for _, r := range ev.Records {
		if string(r.Kinesis.Data) == "poison" {
			return nil, fmt.Errorf("record %s is poison", r.Kinesis.SequenceNumber)
		}
	}
	var b strings.Builder
	for _, r := range ev.Records {
		fmt.Fprintf(&b, "kinesis %s %s %s\n", r.Kinesis.PartitionKey, r.Kinesis.SequenceNumber, r.Kinesis.Data)
	}
	fmt.Print(b.String())
	return nil, nil
}

// s3Records handles an s3 trigger's event: it logs "s3 <eventName> <bucket> <key> <size>" per
// record (the key as the event carries it, URL-encoded).
func s3Records(raw json.RawMessage) (any, error) {
	var ev events.S3Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	for _, r := range ev.Records {
		fmt.Printf("s3 %s %s %s %d\n", r.EventName, r.S3.Bucket.Name, r.S3.Object.Key, r.S3.Object.Size)
	}
	return nil, nil
}

// schedPolicies lists the scheduling policy of each of the process's threads (field 41 of
// /proc/self/task/<tid>/stat: 0 normal, 3 batch), or an error string.
func schedPolicies() any {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err.Error()
	}
	var policies []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/stat")
		if err != nil {
			continue // the thread ended
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // field 3 onwards
		if len(f) < 39 {
			return "short stat: " + s
		}
		p, err := strconv.Atoi(f[38])
		if err != nil {
			return err.Error()
		}
		policies = append(policies, p)
	}
	return policies
}
