package natsengine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/internal/pki"
)

// freeAddrs returns n loopback addresses with a port nothing listens on (found by listening on
// port 0): every server of a cluster must know the others' route addresses before it starts.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// testCluster starts n servers routed to each other, each given every route address (its own
// among them), every one shut down in t.Cleanup. tlsFor, when set, is server i's RouteTLS.
func testCluster(t *testing.T, n int, inProcessOnly bool, tlsFor func(i int) *tls.Config) []*Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	routes := freeAddrs(t, n)
	engines := make([]*Engine, n)
	for i := range engines {
		cfg := Config{Name: fmt.Sprintf("s%d", i+1), Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Anonymous: true,
			InProcessOnly: inProcessOnly, ClusterListen: routes[i], Routes: routes, Logger: testLogger(t, fmt.Sprintf("s%d", i+1))}
		if tlsFor != nil {
			cfg.RouteTLS = tlsFor(i)
		}
		e, err := Start(ctx, cfg)
		if err != nil {
			t.Fatalf("starting server %d: %v", i+1, err)
		}
		t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
		engines[i] = e
	}
	return engines
}

// testLogger logs to the test's log (shown when it fails), at WARN: what goes wrong.
func testLogger(t *testing.T, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Warn, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// connect opens JetStream on e: in process, or through its client port.
func connect(t *testing.T, e *Engine) jetstream.JetStream {
	t.Helper()
	url, opts := e.ClientURL(), []nats.Option{nats.MaxReconnects(-1)}
	if url == "" {
		opts = append(opts, nats.InProcessServer(e))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// retry calls f until it succeeds or d passes, and returns its last error.
func retry(d time.Duration, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := f(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A message published to a stream of three replicas through one server is read through another
// once the first has shut down: the servers form one NATS cluster with clustered JetStream, over
// mutual TLS with node certificates, over plain TCP, and with in-process-only servers (whose
// route listener needs a client port, see inProcessOnlyClustered).
func TestClusterKeepsStreamWithoutItsServer(t *testing.T) {
	ca, node := testCA(t)
	for _, tc := range []struct {
		name          string
		inProcessOnly bool
		tls           func(int) *tls.Config
	}{
		{"mutual TLS", false, func(int) *tls.Config { return routeTLS(t, ca, node) }},
		{"plain TCP", false, nil},
		{"in process only", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			engines := testCluster(t, 3, tc.inProcessOnly, tc.tls)
			js := connect(t, engines[0])
			// The first stream waits for JetStream's meta group to elect a leader.
			err := retry(20*time.Second, func(ctx context.Context) error {
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3, Storage: jetstream.FileStorage})
				return err
			})
			if err != nil {
				t.Fatalf("creating a stream of 3 replicas: %v", err)
			}
			ready := time.Since(start)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := range 5 {
				if _, err := js.Publish(ctx, "r3.m", []byte(fmt.Sprint(i))); err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
			}
			if err := engines[0].Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			js2 := connect(t, engines[1])
			var msgs []string
			// The stream's leader may have been the server shut down: reads wait for a new one.
			err = retry(20*time.Second, func(ctx context.Context) error {
				msgs = nil
				s, err := js2.Stream(ctx, "R3")
				if err != nil {
					return err
				}
				for seq := uint64(1); seq <= 5; seq++ {
					m, err := s.GetMsg(ctx, seq)
					if err != nil {
						return fmt.Errorf("message %d: %w", seq, err)
					}
					msgs = append(msgs, string(m.Data))
				}
				return nil
			})
			if err != nil || strings.Join(msgs, ",") != "0,1,2,3,4" {
				t.Fatalf("reading the stream on another server: %v %v", msgs, err)
			}
			t.Logf("the stream could be created %v after the first server started; read elsewhere %v later",
				ready.Round(time.Millisecond), (time.Since(start) - ready).Round(time.Millisecond))
		})
	}
}

// An in-process-only server of a cluster has a client port (nats-server routes only once it
// has one), on loopback, and it admits no one: not without credentials, not with any user name.
func TestClusterInProcessOnlyAdmitsNoNetworkClient(t *testing.T) {
	if _, err := net.Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Skip("something listens on port 1")
	}
	before := listening(t)
	e := testCluster(t, 1, true, nil)[0]
	var client []string
	for _, addr := range listening(t) {
		if !contains(before, addr) && addr != e.ClusterAddr() {
			client = append(client, addr)
		}
	}
	if e.ClientURL() != "" || len(client) != 1 || !strings.HasPrefix(client[0], "127.0.0.1:") {
		t.Fatalf("an in-process-only clustered server listens for clients at %v (ClientURL %q), want one loopback port", client, e.ClientURL())
	}
	for name, opts := range map[string][]nats.Option{"no credentials": nil, "a user name": {nats.UserInfo("agent", "")}} {
		nc, err := nats.Connect("nats://"+client[0], opts...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected through the client port", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
	// In process, the agent gets in without credentials.
	nc, err := nats.Connect("", nats.InProcessServer(e))
	if err != nil {
		t.Fatalf("connecting in process: %v", err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// testCA makes a CA and a node certificate of it.
func testCA(t *testing.T) (*pki.CA, *pki.Cert) {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node, err := ca.Sign(pki.CertOptions{Role: pki.Node})
	if err != nil {
		t.Fatal(err)
	}
	return ca, node
}

// routeTLS is the route config the agent makes from its cluster TLS.
func routeTLS(t *testing.T, ca *pki.CA, cert *pki.Cert) *tls.Config {
	t.Helper()
	server, _, err := cluster.TLSConfigsPEM(ca.CertPEM, cert.CertPEM, cert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cluster.RouteTLSConfig(server)
}

// With route TLS, only a node certificate of the cluster's CA joins: a route connection in
// plain TCP, with no certificate, with a client certificate of the same CA, or with a node
// certificate of another CA is refused before the server says anything; one with a node
// certificate gets the server's INFO. Dialing its routes, the server likewise completes a
// handshake only with a listener presenting a node certificate of its CA.
func TestRouteTLSAdmitsOnlyNodeCertificates(t *testing.T) {
	ca, node := testCA(t)
	client, err := ca.Sign(pki.CertOptions{Role: pki.Client})
	if err != nil {
		t.Fatal(err)
	}
	_, otherNode := testCA(t)
	pair := func(c *pki.Cert) []tls.Certificate {
		kp, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{kp}
	}
	// Listeners the server dials as routes, presenting each certificate.
	rogues := map[string]net.Listener{}
	handshakes := map[string]chan error{}
	for name, certs := range map[string][]tls.Certificate{"node": pair(node), "client": pair(client), "other CA": pair(otherNode)} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		rogues[name], handshakes[name] = l, make(chan error, 1)
		go func() {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			tc := tls.Server(conn, &tls.Config{Certificates: certs, ClientAuth: tls.RequestClientCert})
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			handshakes[name] <- tc.Handshake()
		}()
	}
	var routes []string
	for _, l := range rogues {
		routes = append(routes, l.Addr().String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var logs syncBuffer
	e, err := Start(ctx, Config{Name: "s1", StoreDir: t.TempDir(), InProcessOnly: true, ClusterListen: "127.0.0.1:0",
		Routes: routes, RouteTLS: routeTLS(t, ca, node), Logger: hclog.New(&hclog.LoggerOptions{Name: "s1", Level: hclog.Warn,
			Output: io.MultiWriter(testWriter{t}, &logs)})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })

	// answer connects to the route listener and returns what the server sends first.
	answer := func(t *testing.T, certs []tls.Certificate, plain bool) (string, error) {
		conn, err := net.DialTimeout("tcp", e.ClusterAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if plain {
			// What a route says first, were it not for TLS.
			if _, err := conn.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"rogue\",\"cluster\":\"" + ClusterName + "\"}\r\nPING\r\n")); err != nil {
				return "", err
			}
			buf := make([]byte, 512)
			n, err := conn.Read(buf)
			return string(buf[:n]), err
		}
		// The certificate is sent whatever CAs the server asks for (Go's client would otherwise
		// keep back one of another CA).
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, //nolint:gosec // the attacker does not care who the server is
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if len(certs) == 0 {
					return &tls.Certificate{}, nil
				}
				return &certs[0], nil
			}})
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		// Under TLS 1.3 the server judges the client's certificate after the client's side of the
		// handshake is done: a refusal shows on the first read.
		buf := make([]byte, 512)
		n, err := tc.Read(buf)
		return string(buf[:n]), err
	}
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		plain bool
		why   string // what the server logs
	}{
		{"plain TCP", nil, true, "first record does not look like a TLS handshake"},
		{"no certificate", nil, false, "didn't provide a certificate"},
		{"client certificate", pair(client), false, "lacks the name " + pki.NodeName},
		{"node certificate of another CA", pair(otherNode), false, "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := answer(t, tc.certs, tc.plain)
			if err == nil || strings.Contains(got, "INFO") || strings.Contains(got, "PONG") {
				t.Fatalf("the route listener answered %q (%v)", got, err)
			}
			waitLog(t, &logs, tc.why)
		})
	}
	t.Run("node certificate", func(t *testing.T) {
		got, err := answer(t, pair(node), false)
		if err != nil || !strings.HasPrefix(got, "INFO ") {
			t.Fatalf("a node's route got %q (%v), want the server's INFO", got, err)
		}
	})
	t.Run("dialing", func(t *testing.T) {
		for name, want := range map[string]bool{"node": true, "client": false, "other CA": false} {
			select {
			case err := <-handshakes[name]:
				if (err == nil) != want {
					t.Errorf("the server's route to a listener with a %s certificate: handshake error %v", name, err)
				}
			case <-ctx.Done():
				t.Fatalf("the server did not dial the route to the %s listener", name)
			}
		}
	})
}

// waitLog waits a moment for the log to hold want.
func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log %q", want)
		}
	}
}

// A store a server alone wrote is moved aside, whole, when the server starts in a cluster
// (whose JetStream would delete its streams as orphans, about 30 s after it starts), with a
// warning naming the streams and where they are; started alone on the folder kept, the server
// finds their messages. A clustered store stays where it is.
func TestStandaloneStoreIsKeptAside(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "jetstream")
	alone := func(dir string, f func(js jetstream.JetStream)) {
		e, err := Start(ctx, Config{StoreDir: dir, InProcessOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		f(connect(t, e))
		if err := e.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	alone(dir, func(js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := js.Publish(ctx, "s", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	})
	routes := freeAddrs(t, 1)
	clustered := func() string {
		var logs syncBuffer
		e, err := Start(ctx, Config{Name: "s1", StoreDir: dir, InProcessOnly: true, ClusterListen: routes[0], Routes: routes,
			Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		return logs.String()
	}
	out := clustered()
	kept, _ := filepath.Glob(dir + ".standalone-*")
	if len(kept) != 1 || !strings.Contains(out, "kept aside") || !strings.Contains(out, "$G/S") || !strings.Contains(out, kept[0]) {
		t.Fatalf("the store of a server alone, started clustered: kept in %v, log:\n%s", kept, out)
	}
	if out := clustered(); strings.Contains(out, "kept aside") {
		t.Fatalf("a clustered store was moved aside:\n%s", out)
	}
	if again, _ := filepath.Glob(dir + ".standalone-*"); len(again) != 1 {
		t.Fatalf("folders kept: %v", again)
	}
	alone(kept[0], func(js jetstream.JetStream) {
		s, err := js.Stream(ctx, "S")
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 3 {
			t.Fatalf("the stream kept aside holds %d messages, want 3", n)
		}
	})
}

// OtherServers leaves out the server's own route (its port at one of the machine's addresses,
// by address or by name) and counts each other route once.
func TestOtherServers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		listen string
		routes []string
		want   int
	}{
		{"0.0.0.0:6222", []string{"127.0.0.1:6222", "10.255.0.2:6222", "10.255.0.3:6222"}, 2},
		{"127.0.0.1:6222", []string{"localhost:6222", "127.0.0.1:6223", "127.0.0.1:6224"}, 2},
		{"0.0.0.0:6222", []string{"10.255.0.2:6222", "10.255.0.2:6222"}, 1},
		{"0.0.0.0:6222", []string{"127.0.0.1:6222"}, 0},
		{"0.0.0.0:6222", []string{"no-such-host.invalid:6222"}, 1},
	} {
		if got := OtherServers(ctx, tc.listen, tc.routes); got != tc.want {
			t.Errorf("OtherServers(%s, %v) = %d, want %d", tc.listen, tc.routes, got, tc.want)
		}
	}
}
