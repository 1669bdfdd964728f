package natsengine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// newUser makes a user NKey: its public key for Config.Users and the option a client connects
// with.
func newUser(t *testing.T) (string, nats.Option) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub, nats.Nkey(pub, kp.Sign)
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
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

// TestStartServesJetStream: on port 0 the engine picks a port, reports it in ClientURL, serves
// JetStream from StoreDir, logs through the logger named "nats", and shuts down. The server's
// startup banner and shutdown steps are logged at DEBUG: at INFO there are only the engine's
// own "started" and "stopped" lines.
func TestStartServesJetStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var logs syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Name: "agent", Output: &logs, Level: hclog.Debug})
	user, creds := newUser(t)
	e, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Logger: logger, Users: []string{user}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	if !strings.HasPrefix(e.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(e.ClientURL(), ":0") {
		t.Fatalf("client URL %q", e.ClientURL())
	}

	nc, err := nats.Connect(e.ClientURL(), creds)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "t", []byte("hello")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream info: %+v %v", info, err)
	}

	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	out := logs.String()
	for _, want := range []string{"[DEBUG] agent.nats: Starting nats-server", "[DEBUG] agent.nats: Server is ready",
		"[DEBUG] agent.nats: Server Exiting..", "[INFO]  agent.nats: NATS JetStream started", "[INFO]  agent.nats: NATS JetStream stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "[INFO]"); n != 2 {
		t.Errorf("want only the engine's two lines at INFO, got %d:\n%s", n, out)
	}
}

// TestStoreSurvivesRestart: a second engine on the same StoreDir finds the first one's messages.
func TestStoreSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	run := func(f func(js jetstream.JetStream)) {
		e, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: dir, Anonymous: true})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		defer func() {
			if err := e.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}()
		nc, err := nats.Connect(e.ClientURL())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		f(js)
	}
	run(func(js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatalf("create stream: %v", err)
		}
		for i := 0; i < 3; i++ {
			if _, err := js.Publish(ctx, "t", []byte("x")); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	})
	run(func(js jetstream.JetStream) {
		s, err := js.Stream(ctx, "T")
		if err != nil {
			t.Fatalf("stream after restart: %v", err)
		}
		if info, err := s.Info(ctx); err != nil || info.State.Msgs != 3 {
			t.Fatalf("stream after restart: %+v %v", info, err)
		}
	})
}

// TestStartFailures: bad configurations and a port already taken (for clients or routes) end
// Start with an error, without leaving a server behind.
func TestStartFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Anonymous: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	taken := strings.TrimPrefix(e.ClientURL(), "nats://")

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no store", Config{Listen: "127.0.0.1:0", Anonymous: true}, "StoreDir"},
		{"bad address", Config{Listen: "localhost", StoreDir: t.TempDir(), Anonymous: true}, "listen address"},
		{"bad port", Config{Listen: "127.0.0.1:http", StoreDir: t.TempDir(), Anonymous: true}, "bad port"},
		{"port taken", Config{Listen: taken, StoreDir: t.TempDir(), ReadyTimeout: 5 * time.Second, Anonymous: true}, "listening"},
		{"no users", Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, "no users"},
		{"not a user key", Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Users: []string{"secret"}}, "public NKey"},
		{"name with a space", Config{StoreDir: t.TempDir(), InProcessOnly: true, Name: "node one"}, "no spaces"},
		{"routes without a listener", Config{StoreDir: t.TempDir(), InProcessOnly: true, Routes: []string{"127.0.0.1:6222"}}, "ClusterListen"},
		{"bad route", Config{StoreDir: t.TempDir(), InProcessOnly: true, ClusterListen: "127.0.0.1:0", Routes: []string{"127.0.0.1"}}, "route"},
		{"route port taken", Config{StoreDir: t.TempDir(), InProcessOnly: true, ClusterListen: taken, Routes: []string{taken}, ReadyTimeout: 5 * time.Second}, "router port"},
		{"bad route listener", Config{StoreDir: t.TempDir(), InProcessOnly: true, ClusterListen: "127.0.0.1:x", Routes: []string{"127.0.0.1:6222"}}, "route listener"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Start(ctx, tc.cfg)
			if err == nil {
				_ = e.Shutdown(ctx)
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestOnlyConfiguredUsersGetIn: a client without credentials, and one signing with an NKey the
// server was not given, are refused with an authorization error; a configured user publishes
// to JetStream.
func TestOnlyConfiguredUsersGetIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	user, creds := newUser(t)
	_, otherCreds := newUser(t)
	e, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Users: []string{user}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })

	for name, opts := range map[string][]nats.Option{"no credentials": nil, "another NKey": {otherCreds}} {
		nc, err := nats.Connect(e.ClientURL(), opts...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}

	nc, err := nats.Connect(e.ClientURL(), creds)
	if err != nil {
		t.Fatalf("connecting with the user's NKey: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "t", []byte("x")); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// TestListensOnlyWhereConfigured: starting the engine adds exactly one listening socket to the
// process, at the configured loopback address: no monitoring, cluster or other port.
func TestListensOnlyWhereConfigured(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("needs Linux's /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := listening(t)
	user, _ := newUser(t)
	e, err := Start(ctx, Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Users: []string{user}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	var added []string
	for _, addr := range listening(t) {
		if !contains(before, addr) {
			added = append(added, addr)
		}
	}
	if want := strings.TrimPrefix(e.ClientURL(), "nats://"); len(added) != 1 || added[0] != want {
		t.Fatalf("the engine listens at %v, want only %s", added, want)
	}
}

// An in-process-only engine opens no port at all, yet serves JetStream to the agent, which
// connects without the network.
func TestInProcessOnlyOpensNoPort(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("needs Linux's /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := listening(t)
	e, err := Start(ctx, Config{StoreDir: t.TempDir(), InProcessOnly: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	for _, addr := range listening(t) {
		if !contains(before, addr) {
			t.Fatalf("an in-process-only engine listens at %s", addr)
		}
	}
	if e.ClientURL() != "" {
		t.Fatalf("ClientURL %q, want none", e.ClientURL())
	}
	nc, err := nats.Connect("", nats.InProcessServer(e))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", make([]byte, MaxPayload-4096)); err != nil {
		t.Fatalf("a message near MaxPayload: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// listening returns the addresses of this process's listening TCP sockets (IPv4 and IPv6).
func listening(t *testing.T) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			out = append(out, procAddr(t, fields[1]))
		}
		f.Close()
	}
	return out
}

// procAddr decodes /proc/net/tcp's HEXIP:HEXPORT: the address in 32-bit words of host order
// (little-endian on the machines this runs on).
func procAddr(t *testing.T, s string) string {
	t.Helper()
	hexIP, hexPort, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if err != nil {
		t.Fatal(err)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(port))
}
