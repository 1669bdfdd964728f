// Package pki makes the certificates of the cluster's mutual TLS: a CA, and certificates it
// signs for nodes (server and client of the cluster port) and for API clients. It is what
// `gateway tls ca create` and `gateway tls cert create` run, and what a lone node uses for its
// own cluster port when it has access keys but no cluster { tls } block.
//
// A certificate's role is a DNS name in its subject alternative names, as Consul's
// server.<dc>.<domain>: operators issuing certificates from their own PKI (Vault, cfssl) add
// NodeName to node certificates and nothing else is needed.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// The role names. ".internal" is reserved for private use (ICANN, 2024), so no public CA can
// issue these names and no real host has them.
const (
	// NodeName marks a certificate that may act as a node on the cluster port.
	NodeName = "node.gateway.internal"
	// ClientName marks a certificate for an API client: never accepted on the cluster port.
	ClientName = "client.gateway.internal"
)

// Role is what a certificate may do.
type Role int

const (
	// Node certificates serve and dial the cluster port (server and client authentication).
	Node Role = iota
	// Client certificates authenticate an API client (client authentication only).
	Client
)

func (r Role) String() string {
	if r == Client {
		return "client"
	}
	return "node"
}

// name is the SAN that marks the role.
func (r Role) name() string {
	if r == Client {
		return ClientName
	}
	return NodeName
}

// HasRole reports whether cert carries role's name. Callers verify its chain first.
func HasRole(cert *x509.Certificate, role Role) bool {
	return slices.Contains(cert.DNSNames, role.name())
}

// CA is a certificate authority: its certificate and key, PEM-encoded.
type CA struct {
	CertPEM, KeyPEM []byte
}

// CAOptions shape a new CA.
type CAOptions struct {
	// Name is the subject's common name; a unique default when empty.
	Name string
	// Validity is how long the CA is valid; 5 years when 0.
	Validity time.Duration
}

// NewCA makes a CA with a fresh P-256 key. Its certificate may sign only end-entity
// certificates (path length 0), so a stolen node key cannot mint more CAs.
func NewCA(opts CAOptions) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("Gateway Agent CA %d", serial)
	}
	if opts.Validity == 0 {
		opts.Validity = 5 * 365 * 24 * time.Hour
	}
	id := keyID(&key.PublicKey)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.Name},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(opts.Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          id,
		AuthorityKeyId:        id,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// CertOptions shape a new certificate.
type CertOptions struct {
	Role Role
	// CommonName is the subject's common name; the role's name when empty.
	CommonName string
	// DNSNames and IPs are added to the subject alternative names. Node certificates always
	// hold localhost and 127.0.0.1 too, so a node on one machine needs nothing more.
	DNSNames []string
	IPs      []net.IP
	// Validity is how long the certificate is valid; 1 year when 0.
	Validity time.Duration
}

// Cert is a certificate and its key, PEM-encoded.
type Cert struct {
	CertPEM, KeyPEM []byte
}

// Sign makes a certificate for opts.Role with a fresh P-256 key, signed by ca.
func (ca *CA) Sign(opts CertOptions) (*Cert, error) {
	caCert, caKey, err := ca.parse()
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the certificate's key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	if opts.Validity == 0 {
		opts.Validity = 365 * 24 * time.Hour
	}
	if opts.CommonName == "" {
		opts.CommonName = opts.Role.name()
	}
	dns := []string{opts.Role.name()}
	ips := slices.Clone(opts.IPs)
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if opts.Role == Node {
		dns = append(dns, "localhost")
		ips = append(ips, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
		usage = append(usage, x509.ExtKeyUsageServerAuth)
	}
	for _, n := range opts.DNSNames {
		if n == NodeName || n == ClientName {
			return nil, fmt.Errorf("%s is a role name: choose the role instead of adding the name", n)
		}
		if !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
	}
	now := time.Now()
	notAfter := now.Add(opts.Validity)
	if notAfter.After(caCert.NotAfter) {
		return nil, fmt.Errorf("the certificate would outlive its CA (valid until %s): ask for a shorter validity or make a new CA",
			caCert.NotAfter.UTC().Format(time.DateOnly))
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: opts.CommonName},
		NotBefore:      now.Add(-time.Minute),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    usage,
		DNSNames:       dns,
		IPAddresses:    dedupeIPs(ips),
		SubjectKeyId:   keyID(&key.PublicKey),
		AuthorityKeyId: caCert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Cert{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// LoadCA parses a CA's PEM certificate and key, checking that they belong together and that
// the certificate is a CA's.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	ca := &CA{CertPEM: certPEM, KeyPEM: keyPEM}
	if _, _, err := ca.parse(); err != nil {
		return nil, err
	}
	return ca, nil
}

func (ca *CA) parse() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(ca.CertPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, nil, errors.New("the CA file holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, nil, errors.New("the CA certificate is not a CA's (basic constraints)")
	}
	kb, _ := pem.Decode(ca.KeyPEM)
	if kb == nil {
		return nil, nil, errors.New("the CA key file holds no PEM key")
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the CA key (an EC key, as `gateway tls ca create` makes): %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New("the CA key does not belong to the CA certificate")
	}
	return cert, key, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// serialNumber is random, 127 bits, as RFC 5280 and the CA/Browser Forum ask.
func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("making a serial number: %w", err)
	}
	return n, nil
}

func keyID(pub *ecdsa.PublicKey) []byte {
	b, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(b)
	return sum[:20]
}

func dedupeIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}
