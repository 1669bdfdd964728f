package cluster

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestRPCClientReadsLongTrailers: a node RPC response may end with MaxRPCTrailerBytes of
// trailers (a forwarded stream's error and log tail), which net/http's default client refuses.
func TestRPCClientReadsLongTrailers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, nil, hclog.NewNullLogger())
	t.Cleanup(func() { m.Close() })
	value := strings.Repeat("x", MaxRPCTrailerBytes-100)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "Gateway-Log-Tail")
		_, _ = io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("Gateway-Log-Tail", value)
	})}
	go func() { _ = srv.Serve(m.rpc) }()
	t.Cleanup(func() { srv.Close() })

	resp, err := rpcClient(&dialer{}).Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "body" {
		t.Fatalf("body %q: %v", body, err)
	}
	if got := resp.Trailer.Get("Gateway-Log-Tail"); got != value {
		t.Errorf("trailer of %d bytes, want %d", len(got), len(value))
	}
}
