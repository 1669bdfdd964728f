package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// One TCP port (cluster.address) carries both Raft and the node RPC, as Consul and Nomad do:
// the first byte of every connection says which. With TLS configured the whole connection is
// TLS first, both ends presenting certificates of the cluster's CA.

const (
	protoRaft byte = 'R'
	protoRPC  byte = 'P'
)

// muxListener accepts on the cluster port and hands each connection to Raft or to the RPC
// server by its first byte.
type muxListener struct {
	ln     net.Listener
	tls    *tls.Config // server side; nil without TLS
	logger hclog.Logger

	raft *subListener
	rpc  *subListener

	wg sync.WaitGroup
}

// protoTimeout bounds the wait for a new connection's protocol byte (and TLS handshake).
const protoTimeout = 10 * time.Second

func newMux(ln net.Listener, tlsConf *tls.Config, logger hclog.Logger) *muxListener {
	m := &muxListener{ln: ln, tls: tlsConf, logger: logger,
		raft: newSubListener(ln.Addr()), rpc: newSubListener(ln.Addr())}
	m.wg.Add(1)
	go m.serve()
	return m
}

func (m *muxListener) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			m.raft.close()
			m.rpc.close()
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(c)
		}()
	}
}

// route reads the protocol byte (after the TLS handshake, with TLS) and passes c on.
func (m *muxListener) route(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(protoTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls)
		if err := tc.Handshake(); err != nil {
			m.logger.Warn("refused a cluster connection: TLS handshake failed", "remote", c.RemoteAddr(), "error", err)
			c.Close()
			return
		}
		c = tc
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	switch b[0] {
	case protoRaft:
		m.raft.push(c)
	case protoRPC:
		m.rpc.push(c)
	default:
		m.logger.Warn("refused a cluster connection: unknown protocol", "remote", c.RemoteAddr(), "byte", b[0])
		c.Close()
	}
}

// Close stops accepting; connections already handed out are their owners'.
func (m *muxListener) Close() error {
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// subListener is the net.Listener of one protocol.
type subListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newSubListener(addr net.Addr) *subListener {
	return &subListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *subListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *subListener) close() { l.closed.Do(func() { close(l.done) }) }

func (l *subListener) Close() error { l.close(); return nil }

func (l *subListener) Addr() net.Addr { return l.addr }

// dialer opens connections to other nodes' cluster ports for one protocol.
type dialer struct {
	tls *tls.Config // client side; nil without TLS
}

func (d *dialer) dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if d.tls != nil {
		tc := tls.Client(c, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// raftLayer is Raft's StreamLayer over the mux.
type raftLayer struct {
	*subListener
	d *dialer
}

func (r *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return r.d.dial(ctx, string(address), protoRaft)
}

// MaxRPCTrailerBytes is what the trailers of a node RPC response may take (a forwarded stream
// ends with the function's late error and log tail in them). net/http's client refuses trailers
// longer than its read buffer, 4 KB by default: the RPC client's is this size.
const MaxRPCTrailerBytes = 64 << 10

// rpcClient is an HTTP client whose connections go to other nodes' RPC servers, kept alive
// between calls (one pool per peer).
func rpcClient(d *dialer) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return d.dial(ctx, addr, protoRPC)
		},
		ReadBufferSize:      MaxRPCTrailerBytes,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		// The connection is TLS already when configured: HTTP on top stays plain.
		ForceAttemptHTTP2: false,
	}
	return &http.Client{Transport: tr}
}
