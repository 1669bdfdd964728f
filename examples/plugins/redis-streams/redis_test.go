package main

// The test harness: a real redis-server of each test's own, and the plugin served through the
// SDK's in-process gRPC harness (sdktest) with a recording host.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/sdktest"
)

// waitTimeout bounds every wait of the tests.
const waitTimeout = 10 * time.Second

// redisServer is a redis-server a test started, and a client of it.
type redisServer struct {
	addr string
	rdb  *redis.Client
}

// startRedis starts redis-server on a free port with its files in a temporary folder (and
// password as requirepass, when not empty) and stops it when the test ends.
func startRedis(t *testing.T, password string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("these tests run a real Redis and redis-server is not on PATH; install it " +
			"(Debian/Ubuntu: `apt-get install -y redis-server`) and run them again")
	}
	// A port found free may be taken by a parallel test's server before this one binds it:
	// then try another.
	for range 5 {
		if rs := tryRedis(t, bin, password); rs != nil {
			return rs
		}
	}
	t.Fatalf("could not start redis-server on a free port")
	return nil
}

// tryRedis starts redis-server on a free port; nil if it could not bind it.
func tryRedis(t *testing.T, bin, password string) *redisServer {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	logFile := filepath.Join(dir, "redis.log")
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", logFile}
	if password != "" {
		args = append(args, "--requirepass", password)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	rs := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	rs.rdb = redis.NewClient(&redis.Options{Addr: rs.addr, Password: password, MaxRetries: -1})
	t.Cleanup(func() { _ = rs.rdb.Close() })
	deadline := time.Now().Add(waitTimeout)
	for {
		select {
		case werr := <-exited:
			exited <- werr // for the cleanup
			log, _ := os.ReadFile(logFile)
			if strings.Contains(string(log), "Address already in use") {
				return nil
			}
			t.Fatalf("redis-server exited (%v):\n%s", werr, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := rs.rdb.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			// The server answering must be this one, not a parallel test's on the same port.
			if !strings.Contains(info, fmt.Sprintf("process_id:%d\r\n", cmd.Process.Pid)) {
				return nil
			}
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer: %v", rs.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// add adds n entries to stream, with the fields fields(i), and returns their IDs.
func (rs *redisServer) add(t *testing.T, stream string, n int, fields func(i int) map[string]any) []string {
	t.Helper()
	ctx := context.Background()
	pipe := rs.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, n)
	for i := range n {
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: fields(i)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("adding entries to %s: %v", stream, err)
	}
	ids := make([]string, n)
	for i, c := range cmds {
		ids[i] = c.Val()
	}
	return ids
}

// pending is the number of entries pending in group.
func (rs *redisServer) pending(t *testing.T, stream, group string) int64 {
	t.Helper()
	p, err := rs.rdb.XPending(context.Background(), stream, group).Result()
	if err != nil {
		t.Fatalf("XPENDING %s %s: %v", stream, group, err)
	}
	return p.Count
}

// waitNoPending waits until no entry of group is pending.
func (rs *redisServer) waitNoPending(t *testing.T, stream, group string) {
	t.Helper()
	eventually(t, "no entry pending in "+group, func() bool { return rs.pending(t, stream, group) == 0 })
}

// testPlugin is the plugin under test as the gateway sees it.
type testPlugin struct {
	src  *source
	trig *sdk.TriggerClient
	host *sdktest.Host
}

// startPlugin serves a new source, configured for rs as node, delivering to host.
func startPlugin(t *testing.T, rs *redisServer, node string, host *sdktest.Host) *testPlugin {
	t.Helper()
	src := newSource(testLogger(t, node))
	trig := sdktest.Trigger(t, src)
	t.Cleanup(src.Close) // runs before the connection closes and Redis stops
	cfg, _ := json.Marshal(map[string]any{"address": rs.addr})
	diags, err := trig.Configure(context.Background(), sdk.ConfigureRequest{Config: cfg,
		HostInfo: map[string]string{"node_name": node, "region": "eu-west-1"}}, host)
	if err != nil || len(diags) > 0 {
		t.Fatalf("Configure: %v %+v", err, diags)
	}
	return &testPlugin{src: src, trig: trig, host: host}
}

// setMappings gives the plugin ms and checks that every enabled one is OK.
func (p *testPlugin) setMappings(t *testing.T, ms ...sdk.Mapping) []sdk.MappingStatus {
	t.Helper()
	st, err := p.trig.SetMappings(context.Background(), ms)
	if err != nil {
		t.Fatalf("SetMappings: %v", err)
	}
	for _, s := range st {
		if s.State != sdk.StateOK {
			t.Fatalf("mapping %s: %s %s", s.UUID, s.State, s.Message)
		}
	}
	return st
}

// mapping is a mapping of function "fn" on stream, with a short retry delay.
func mapping(name, stream string) sdk.Mapping {
	return sdk.Mapping{UUID: "uuid-" + name, Name: name, Function: "fn",
		FunctionARN: "arn:aws:lambda:eu-west-1:000000000000:function:fn", Source: stream, BatchSize: 10,
		StartingPosition: sdk.TrimHorizon, MaximumRetryAttempts: -1, Enabled: true,
		Options: map[string]string{optionRetryDelay: "200ms"}}
}

// groupOf is the consumer group of m.
func groupOf(m sdk.Mapping) string { return "gateway:" + m.Function + ":" + m.Name }

// waitHost waits until cond holds for host.
func waitHost(t *testing.T, host *sdktest.Host, what string, cond func(h *sdktest.Host) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := host.Wait(ctx, cond); err != nil {
		var bs []string
		for _, b := range host.Batches() {
			bs = append(bs, fmt.Sprintf("%s %v", b.MappingUUID, b.ItemIDs))
		}
		if len(bs) > 20 {
			bs = append(bs[:20], "...")
		}
		t.Fatalf("waiting for %s: %v (%d batches, %d failures so far)\nbatches: %s", what, err, len(host.Batches()),
			len(host.Failures()), strings.Join(bs, "\n  "))
	}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deliveries counts how often each item ID was delivered.
func deliveries(bs []sdk.Batch) map[string]int {
	out := map[string]int{}
	for _, b := range bs {
		for _, id := range b.ItemIDs {
			out[id]++
		}
	}
	return out
}

// failureRecords decodes the on-failure records sent.
func failureRecords(t *testing.T, h *sdktest.Host) []failureRecord {
	t.Helper()
	var out []failureRecord
	for _, f := range h.Failures() {
		var r failureRecord
		if err := json.Unmarshal(f.Record, &r); err != nil {
			t.Fatalf("decoding an on-failure record: %v\n%s", err, f.Record)
		}
		out = append(out, r)
	}
	return out
}

// testLogger logs to the test's output (shown with -v or when it fails).
func testLogger(t *testing.T, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-min(len(p), 1)]))
	return len(p), nil
}
