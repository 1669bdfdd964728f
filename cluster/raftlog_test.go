package cluster

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

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

// TestLoneNodeElectionIsNoWarning: a single node bootstrapping (and restarting) elects itself
// after a heartbeat timeout; Raft's "heartbeat timeout reached, starting election" is then
// logged at INFO, and nothing at WARN comes from Raft.
func TestLoneNodeElectionIsNoWarning(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	for i := 0; i < 2; i++ { // first start (bootstrap), then a restart
		var out syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n, err := Start(ctx, Config{NodeID: "n1", DataDir: dir, BindAddr: addr, Bootstrap: true,
			Logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Debug})})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		logs := out.String()
		if !strings.Contains(logs, "[INFO]  raft: "+electionMsg) {
			t.Errorf("start %d: no election line at INFO:\n%s", i, logs)
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, "[WARN]  raft:") {
				t.Errorf("start %d: %s", i, line)
			}
		}
	}
}

// TestElectionWarningKept: the election line stays a warning when a leader was known (one
// was lost) or when the node is not alone in its configuration.
func TestElectionWarningKept(t *testing.T) {
	var out bytes.Buffer
	l := newRaftLogger(hclog.New(&hclog.LoggerOptions{Output: &out}), "n1")
	l.Warn(electionMsg, "last-leader-addr", raft.ServerAddress(""), "last-leader-id", raft.ServerID(""))
	l.Warn(electionMsg, "last-leader-addr", raft.ServerAddress("10.0.0.2:9501"), "last-leader-id", raft.ServerID("n2"))
	l.With("x", 1).Warn("something else")
	if got := strings.Count(out.String(), "[WARN]"); got != 3 {
		t.Errorf("want 3 warnings (no Raft known yet, a lost leader, another message), got %d:\n%s", got, out.String())
	}
}

// TestElectionWarningKeptWithPeers: a node whose configuration names another server (which is
// not there) still warns when its heartbeat timeout passes: only a lone node's is expected.
func TestElectionWarningKeptWithPeers(t *testing.T) {
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := freeAddr(t)
	// Neither bootstrap nor join: the node starts without a configuration, then gets one of two.
	n, err := Start(ctx, Config{NodeID: "n1", DataDir: t.TempDir(), BindAddr: addr,
		Logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Debug})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	if err := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{
		{ID: "n1", Address: raft.ServerAddress(addr)},
		{ID: "n2", Address: raft.ServerAddress(freeAddr(t))},
	}}).Error(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), electionMsg); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no election:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "[WARN]  raft: "+electionMsg) {
		t.Errorf("with a peer, the election line is not a warning:\n%s", out.String())
	}
}
