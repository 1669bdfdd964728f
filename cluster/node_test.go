package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func start(t *testing.T, dir, addr string) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{NodeID: "n1", DataDir: dir, BindAddr: addr, Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	return n
}

func TestSingleNodeKeepsFunctionsAcrossRestartsAndSnapshots(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	n := start(t, dir, addr)
	if !n.IsLeader() {
		t.Fatal("a bootstrapped single node must lead")
	}
	ctx := context.Background()
	watch := n.State().Watch()
	for i := 0; i < 3; i++ {
		fn := &structs.Function{Name: fmt.Sprintf("f%d", i), Runtime: "provided", MemoryMB: 128, RevisionID: "r1"}
		stored, err := n.PutFunction(ctx, fn, "")
		if err != nil {
			t.Fatal(err)
		}
		if stored.ModifyIndex == 0 || stored.CreateIndex != stored.ModifyIndex {
			t.Fatalf("indexes not set: %+v", stored)
		}
	}
	select {
	case <-watch:
	default:
		t.Fatal("Watch did not fire on a change")
	}
	if _, err := n.PutFunction(ctx, &structs.Function{Name: "f0", RevisionID: "r2"}, "wrong"); !errors.Is(err, ErrConflict) {
		t.Fatalf("revision precondition: %v", err)
	}
	if _, err := n.PutFunction(ctx, &structs.Function{Name: "f0", RevisionID: "r2", MemoryMB: 256}, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteFunction(ctx, "f2"); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteFunction(ctx, "f2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing function: %v", err)
	}
	one := 1
	if _, err := n.PutEventInvokeConfig(ctx, &structs.EventInvokeConfig{Function: "f0", Qualifier: "$LATEST", MaximumRetryAttempts: &one}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := n.PutEventInvokeConfig(ctx, &structs.EventInvokeConfig{Function: "f1", Qualifier: "$LATEST"}, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("updating a missing event invoke configuration: %v", err)
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	// More entries after the snapshot, so a restart needs both the snapshot and the log.
	if _, err := n.PutFunction(ctx, &structs.Function{Name: "late", RevisionID: "r1"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := n.PutEventInvokeConfig(ctx, &structs.EventInvokeConfig{Function: "late", Qualifier: "$LATEST", OnFailure: "queue:dlq"}, false); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	n2 := start(t, dir, addr)
	names := []string{}
	for _, fn := range n2.State().Functions() {
		names = append(names, fn.Name)
	}
	if fmt.Sprint(names) != "[f0 f1 late]" {
		t.Fatalf("after restart: %v", names)
	}
	if fn, _ := n2.State().Function("f0"); fn.MemoryMB != 256 || fn.RevisionID != "r2" {
		t.Fatalf("f0 after restart: %+v", fn)
	}
	if c, ok := n2.EventInvokeConfig("f0", "$LATEST"); !ok || c.Retries() != 1 {
		t.Errorf("f0's event invoke configuration after restart (from the snapshot): %+v", c)
	}
	if cs := n2.EventInvokeConfigs("late"); len(cs) != 1 || cs[0].OnFailure != "queue:dlq" {
		t.Errorf("late's event invoke configurations after restart (from the log): %+v", cs)
	}
}

// TestCaughtUp: a node that leads is caught up; one that knows no leader (its join address
// answers nobody) is not, at once.
func TestCaughtUp(t *testing.T) {
	n := start(t, t.TempDir(), freeAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := n.PutFunction(ctx, &structs.Function{Name: "f", RevisionID: "r1", CodeSha256: "aa"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := n.CaughtUp(ctx); err != nil {
		t.Fatalf("the leader: %v", err)
	}

	lone, err := Start(ctx, Config{NodeID: "n2", DataDir: t.TempDir(), BindAddr: freeAddr(t), Join: []string{freeAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lone.Stop(context.Background()) })
	if err := lone.CaughtUp(ctx); err == nil || !strings.Contains(err.Error(), "no Raft leader") {
		t.Fatalf("a node without a leader: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("CaughtUp waited for a leader instead of failing at once")
	}
}
