// Command testfunction is an ordinary aws-lambda-go function whose behaviour the tests choose
// with the event, so the sandbox and the integration tests exercise a real, unmodified Lambda
// runtime client. Build it with CGO_ENABLED=0 as the code's bootstrap.
//
// Init behaviour comes from the function's environment: INIT_MODE=crash exits with status 4
// before the runtime starts, INIT_MODE=sleep sleeps INIT_SLEEP_MS first, INIT_MODE=hang never
// starts the runtime.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

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
}

// counter survives between invocations while the environment stays warm.
var counter int

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
		time.Sleep(time.Duration(ev.MS) * time.Millisecond)
		return map[string]string{"slept": strconv.Itoa(ev.MS)}, nil
	case "log":
		for i := 0; i < ev.N; i++ {
			fmt.Printf("log line %d\n", i)
		}
		fmt.Fprint(os.Stderr, "no newline at the end")
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
		// Starts N sleeping copies of itself; a pids limit makes the later ones fail.
		started, err := spawn(ev.N)
		return map[string]any{"started": started, "error": errString(err)}, nil
	case "readfile":
		b, err := os.ReadFile(ev.Path)
		return map[string]string{"content": string(b), "error": errString(err)}, nil
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
	case "cpus":
		return map[string]int{"cpus": runtime.NumCPU(), "gomaxprocs": runtime.GOMAXPROCS(0)}, nil
	case "env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		return env, nil
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

func spawn(n int) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	var procs []*os.Process
	defer func() {
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
	lambda.Start(handle)
}
