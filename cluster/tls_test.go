package cluster

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/internal/pki"
)

// TestClusterPortAcceptsOnlyNodes: on a cluster port with mutual TLS, only a certificate the
// cluster's CA issued for the node role reaches the RPC; an API client's certificate of the same
// CA, another CA's node certificate and no certificate are all refused in the handshake.
func TestClusterPortAcceptsOnlyNodes(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(ca *pki.CA, role pki.Role) *pki.Cert {
		c, err := ca.Sign(pki.CertOptions{Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	self := sign(ca, pki.Node)
	server, client, err := TLSConfigsPEM(ca.CertPEM, self.CertPEM, self.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, server, hclog.NewNullLogger())
	defer m.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "reached") })}
	go srv.Serve(m.rpc) //nolint:errcheck // ends with the listener
	defer srv.Shutdown(context.Background())

	// call dials the port as a node's dialer does with conf, and makes one RPC.
	call := func(conf *tls.Config) (string, error) {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if conf != nil {
			tc := tls.Client(c, conf)
			if err := tc.Handshake(); err != nil {
				return "", err
			}
			c = tc
		}
		if _, err := io.WriteString(c, string(protoRPC)+"GET /v1/rpc/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return "", err
		}
		b, err := io.ReadAll(c)
		return string(b), err
	}
	if out, err := call(client); err != nil || !strings.Contains(out, "reached") {
		t.Fatalf("a node of the cluster: %q, %v", out, err)
	}
	withCert := func(c *pki.Cert) *tls.Config {
		pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		conf := client.Clone()
		conf.Certificates = []tls.Certificate{pair}
		return conf
	}
	noCert := client.Clone()
	noCert.Certificates = nil
	for name, conf := range map[string]*tls.Config{
		"an API client's certificate of the same CA": withCert(sign(ca, pki.Client)),
		"another CA's node certificate":              withCert(sign(other, pki.Node)),
		"no certificate":                             noCert,
		"no TLS at all":                              nil,
	} {
		if out, err := call(conf); strings.Contains(out, "reached") {
			t.Errorf("%s reached the RPC (%v)", name, err)
		}
	}

	// And the other way: a node does not talk to a server whose certificate is a client's.
	fake := sign(ca, pki.Client)
	fakeServer, _, err := TLSConfigsPEM(ca.CertPEM, fake.CertPEM, fake.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := tls.Listen("tcp", "127.0.0.1:0", fakeServer)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	go func() {
		if c, err := fl.Accept(); err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", fl.Addr().String(), client)
	if err == nil {
		c.Close()
		t.Fatal("a node accepted a server with a client's certificate")
	}
	// Refused for its key usage (client authentication only), before its role is looked at.
	if !strings.Contains(err.Error(), "incompatible key usage") {
		t.Fatalf("refusing a client's certificate as a server: %v", err)
	}
}
