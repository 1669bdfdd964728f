package pki

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRolesAndChains(t *testing.T) {
	ca, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parse(t, ca.CertPEM))
	node, err := ca.Sign(CertOptions{Role: Node, IPs: []net.IP{net.ParseIP("10.0.0.7")}, DNSNames: []string{"gw1.example"}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Sign(CertOptions{Role: Client})
	if err != nil {
		t.Fatal(err)
	}
	nc, cc := parse(t, node.CertPEM), parse(t, client.CertPEM)
	if !HasRole(nc, Node) || HasRole(nc, Client) || !HasRole(cc, Client) || HasRole(cc, Node) {
		t.Fatalf("roles: node %v, client %v", nc.DNSNames, cc.DNSNames)
	}
	for _, host := range []string{"10.0.0.7", "127.0.0.1", "localhost", "gw1.example", NodeName} {
		if err := nc.VerifyHostname(host); err != nil {
			t.Errorf("node certificate for %s: %v", host, err)
		}
	}
	verify := func(c *x509.Certificate, usage x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	if verify(nc, x509.ExtKeyUsageServerAuth) != nil || verify(nc, x509.ExtKeyUsageClientAuth) != nil {
		t.Error("a node certificate must serve and dial")
	}
	if verify(cc, x509.ExtKeyUsageClientAuth) != nil {
		t.Error("a client certificate must authenticate a client")
	}
	if verify(cc, x509.ExtKeyUsageServerAuth) == nil {
		t.Error("a client certificate must not serve")
	}
	// The CA signs only end entities: a node certificate is no CA.
	if nc.IsCA || !parse(t, ca.CertPEM).MaxPathLenZero {
		t.Error("path length: the CA must not allow intermediate CAs")
	}
}

func TestRefusals(t *testing.T) {
	ca, err := NewCA(CAOptions{Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(ca.CertPEM, other.KeyPEM); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("a key of another CA: %v", err)
	}
	node, _ := ca.Sign(CertOptions{Role: Node, Validity: time.Hour})
	if _, err := LoadCA(node.CertPEM, node.KeyPEM); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("a node certificate as CA: %v", err)
	}
	if _, err := ca.Sign(CertOptions{Role: Node, Validity: 48 * time.Hour}); err == nil || !strings.Contains(err.Error(), "outlive") {
		t.Errorf("a certificate outliving its CA: %v", err)
	}
	// A client certificate cannot be given the node's name by hand.
	if _, err := ca.Sign(CertOptions{Role: Client, DNSNames: []string{NodeName}}); err == nil {
		t.Error("a client certificate with the node role name was signed")
	}
}
