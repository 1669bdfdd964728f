package trigger

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// conn stands for a trigger's connection: the runners see it, Disconnect records its end.
type conn struct {
	n       int
	closing chan bool
}

type connRunner struct {
	Base
	m    sdk.Mapping
	conn *conn
}

func (r *connRunner) Start(setupCtx, parent context.Context) {
	Start(&r.Base, r.m, setupCtx, parent, Setup[struct{}]{
		Logger: hclog.NewNullLogger(),
		Run:    func(ctx context.Context, _ struct{}, _ bool) { <-ctx.Done() },
	})
}

func TestSource(t *testing.T) {
	made := 0
	src := NewSource(SourceConfig[*conn, *connRunner]{
		Name: "test",
		Connect: func(_ context.Context, req sdk.ConfigureRequest) (*conn, []sdk.Diagnostic, error) {
			if req.HostInfo["refuse"] != "" {
				return nil, []sdk.Diagnostic{{Attribute: "url", Summary: "refused"}}, nil
			}
			made++
			return &conn{n: made, closing: make(chan bool, 1)}, nil, nil
		},
		Disconnect:   func(c *conn, closing bool) { c.closing <- closing },
		SetupTimeout: time.Second,
		NewRunner:    func(_ sdk.Host, c *conn, m sdk.Mapping) *connRunner { return &connRunner{m: m, conn: c} },
	})
	ctx := context.Background()
	if _, err := src.SetMappings(ctx, nil); err == nil || err.Error() != "the test trigger is not configured" {
		t.Errorf("SetMappings before Configure: %v", err)
	}
	if diags, err := src.Configure(ctx, sdk.ConfigureRequest{HostInfo: map[string]string{"refuse": "1"}}, nil); len(diags) != 1 || err != nil {
		t.Errorf("a refused configuration: %+v %v", diags, err)
	}
	if _, err := src.SetMappings(ctx, nil); err == nil {
		t.Error("a refused configuration configured the source")
	}
	if _, err := src.Configure(ctx, sdk.ConfigureRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	one := []sdk.Mapping{{UUID: "a", Enabled: true}}
	if st, err := src.SetMappings(ctx, one); err != nil || len(st) != 1 || st[0].State != sdk.StateOK {
		t.Fatalf("SetMappings: %+v %v", st, err)
	}
	a, _ := src.Runner("a")
	if a.conn.n != 1 {
		t.Errorf("the runner got connection %d", a.conn.n)
	}
	// Configure again: the runners stop, then the old connection is closed (not as a Close).
	if _, err := src.Configure(ctx, sdk.ConfigureRequest{}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	default:
		t.Error("a runner outlived its connection")
	}
	if closing := <-a.conn.closing; closing {
		t.Error("a Configure disconnected as Close does")
	}
	if src.Len() != 0 {
		t.Errorf("%d runners after Configure", src.Len())
	}
	if _, err := src.SetMappings(ctx, one); err != nil {
		t.Fatal(err)
	}
	b, _ := src.Runner("a")
	if b.conn.n != 2 {
		t.Errorf("the runner got connection %d, want the new one", b.conn.n)
	}
	if st, _ := src.Status(ctx); len(st) != 1 || st[0].UUID != "a" {
		t.Errorf("Status: %+v", st)
	}
	src.Close()
	if closing := <-b.conn.closing; !closing {
		t.Error("Close did not disconnect as Close")
	}
	select {
	case <-b.Done():
	default:
		t.Error("a runner outlived Close")
	}
	if _, err := src.SetMappings(ctx, one); err == nil {
		t.Error("SetMappings after Close did not fail")
	}
	src.Close() // again: nothing left to disconnect
	if len(b.conn.closing) != 0 {
		t.Error("a second Close disconnected again")
	}
}
