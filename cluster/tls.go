package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/lambdagw/gateway/internal/pki"
)

var errNotNode = fmt.Errorf("the peer's certificate is not a node's: it lacks the name %s (make node certificates with `gateway tls cert create -node`)", pki.NodeName)

// TLSConfigs builds the server and client sides of the cluster's mutual TLS from PEM files:
// each node presents its certificate and accepts only peers whose certificate the CA signed for
// the node role (pki.NodeName among its names), so a certificate the same CA issued to an API
// client cannot act as a node. Nodes are addressed by IP and port, so a peer is identified by
// its role name, not by a host name (as Consul's verify_server_hostname checks server.<dc>).
func TLSConfigs(caFile, certFile, keyFile string) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loading cluster certificate %s: %w", certFile, err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("cluster CA %s holds no PEM certificate", caFile)
	}
	return tlsConfigs(pool, cert)
}

// TLSConfigsPEM is TLSConfigs from PEM in memory.
func TLSConfigsPEM(caPEM, certPEM, keyPEM []byte) (server, client *tls.Config, err error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("loading cluster certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, errors.New("the cluster CA holds no PEM certificate")
	}
	return tlsConfigs(pool, cert)
}

func tlsConfigs(pool *x509.CertPool, cert tls.Certificate) (server, client *tls.Config, err error) {
	server = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		// The chain (for client authentication) is verified by the handshake; the role here.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !pki.HasRole(cs.PeerCertificates[0], pki.Node) {
				return errNotNode
			}
			return nil
		},
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// The chain is verified below against the cluster CA; the name is not (see above).
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the peer presented no certificate")
			}
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return fmt.Errorf("the peer's certificate is not from the cluster CA: %w", err)
			}
			if !pki.HasRole(cs.PeerCertificates[0], pki.Node) {
				return errNotNode
			}
			return nil
		},
	}
	return server, client, nil
}

// RouteTLSConfig is the cluster's mutual TLS for the routes of the nodes' embedded NATS servers,
// made from the cluster port's server side (TLSConfigs): nats-server accepts and dials routes
// with one config. Accepting, it is the server side as is: the peer's chain verified against
// the cluster CA and its role checked. Dialing, the peer's chain is verified against the same CA
// with the node role's name (pki.NodeName) as the server name, which every node certificate
// holds whatever address the node is reached at, and its role checked again.
func RouteTLSConfig(server *tls.Config) *tls.Config {
	c := server.Clone()
	c.RootCAs = server.ClientCAs
	c.ServerName = pki.NodeName
	return c
}
