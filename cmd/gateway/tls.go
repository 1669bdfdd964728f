package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/internal/pki"
)

// The `gateway tls` commands make the certificates of the cluster's mutual TLS, as Consul's
// `consul tls ca create` and `consul tls cert create` do: files in the current folder, named so
// that several nodes' certificates can sit side by side, never overwriting one.

const (
	caCertFile = "gateway-agent-ca.pem"
	caKeyFile  = "gateway-agent-ca-key.pem"
)

type tlsCommand struct{}

func (c *tlsCommand) Synopsis() string { return "Make the certificates of the cluster's mutual TLS" }
func (c *tlsCommand) Help() string {
	return `Usage: gateway tls <subcommand> [options]

  ca create      make a CA: ` + caCertFile + ` and ` + caKeyFile + `
  cert create    make a node (-node) or API client (-client) certificate the CA signs

  A cluster whose nodes have access keys requires mutual TLS on the cluster port:

    gateway tls ca create
    gateway tls cert create -node -additional-ipaddress 10.0.0.11   # once per node

  then, in each node's agent file:

    cluster {
      tls {
        ca   = "gateway-agent-ca.pem"
        cert = "gateway-node-0.pem"
        key  = "gateway-node-0-key.pem"
      }
    }

  Keep ` + caKeyFile + ` off the nodes: it mints node certificates.`
}
func (c *tlsCommand) Run([]string) int { return cli.RunResultHelp }

type tlsCACreateCommand struct{ ui cli.Ui }

func (c *tlsCACreateCommand) Synopsis() string { return "Make a CA for the cluster's mutual TLS" }
func (c *tlsCACreateCommand) Help() string {
	return `Usage: gateway tls ca create [options]

  Writes a new CA's certificate and key (ECDSA P-256) to ` + caCertFile + ` and
  ` + caKeyFile + ` in the current folder (or -dir); refuses to overwrite them.

  -common-name NAME  the CA's name (default: "Gateway Agent CA" and a random number)
  -days N            how long the CA is valid (default 1825)
  -dir DIR           where to write the files (default: the current folder)`
}

func (c *tlsCACreateCommand) Run(args []string) int {
	fs := flagSet("tls ca create", c.ui, c.Help())
	name := fs.String("common-name", "", "")
	days := fs.Int("days", 1825, "")
	dir := fs.String("dir", ".", "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 0 || *days <= 0 {
		fs.Usage()
		return 1
	}
	ca, err := pki.NewCA(pki.CAOptions{Name: *name, Validity: time.Duration(*days) * 24 * time.Hour})
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	certPath, keyPath := filepath.Join(*dir, caCertFile), filepath.Join(*dir, caKeyFile)
	if err := writeNew(certPath, ca.CertPEM, 0o644, keyPath, ca.KeyPEM); err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	c.ui.Output("==> Saved " + certPath)
	c.ui.Output("==> Saved " + keyPath)
	return 0
}

type tlsCertCreateCommand struct{ ui cli.Ui }

func (c *tlsCertCreateCommand) Synopsis() string { return "Make a node or client certificate" }
func (c *tlsCertCreateCommand) Help() string {
	return `Usage: gateway tls cert create (-node | -client) [options]

  Writes a certificate the CA signs, and its key, to gateway-node-N.pem and
  gateway-node-N-key.pem (or gateway-client-N...), N the first number not taken.

  A node certificate serves and dials the cluster port; it holds the name
  ` + pki.NodeName + `, localhost and 127.0.0.1, and what -additional-* add.
  A client certificate authenticates an API client and is refused on the cluster port.

  -node                       a node certificate
  -client                     an API client certificate
  -ca FILE                    the CA certificate (default ` + caCertFile + `)
  -key FILE                   the CA key (default ` + caKeyFile + `)
  -additional-dnsname NAME    a DNS name to add (repeatable)
  -additional-ipaddress IP    an IP address to add (repeatable)
  -common-name NAME           the certificate's subject name (default: its role name)
  -days N                     how long the certificate is valid (default 365)
  -dir DIR                    where to write the files (default: the current folder)`
}

func (c *tlsCertCreateCommand) Run(args []string) int {
	fs := flagSet("tls cert create", c.ui, c.Help())
	node := fs.Bool("node", false, "")
	client := fs.Bool("client", false, "")
	caPath := fs.String("ca", caCertFile, "")
	keyPath := fs.String("key", caKeyFile, "")
	var dnsNames, ipTexts listFlag
	fs.Var(&dnsNames, "additional-dnsname", "")
	fs.Var(&ipTexts, "additional-ipaddress", "")
	name := fs.String("common-name", "", "")
	days := fs.Int("days", 365, "")
	dir := fs.String("dir", ".", "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 0 || *node == *client || *days <= 0 {
		if *node == *client {
			c.ui.Error("choose one of -node and -client")
		}
		fs.Usage()
		return 1
	}
	var ips []net.IP
	for _, t := range ipTexts {
		ip := net.ParseIP(t)
		if ip == nil {
			c.ui.Error(fmt.Sprintf("-additional-ipaddress %q is not an IP address", t))
			return 1
		}
		ips = append(ips, ip)
	}
	certPEM, err := os.ReadFile(*caPath)
	if err != nil {
		c.ui.Error(fmt.Sprintf("reading the CA certificate: %v (make one with `gateway tls ca create`, or name it with -ca)", err))
		return 1
	}
	keyPEM, err := os.ReadFile(*keyPath)
	if err != nil {
		c.ui.Error(fmt.Sprintf("reading the CA key: %v (name it with -key)", err))
		return 1
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		c.ui.Error(fmt.Sprintf("%s and %s: %v", *caPath, *keyPath, err))
		return 1
	}
	role := pki.Node
	if *client {
		role = pki.Client
	}
	cert, err := ca.Sign(pki.CertOptions{Role: role, CommonName: *name, DNSNames: dnsNames, IPs: ips,
		Validity: time.Duration(*days) * 24 * time.Hour})
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	for i := 0; ; i++ {
		base := filepath.Join(*dir, fmt.Sprintf("gateway-%s-%d", role, i))
		err := writeNew(base+".pem", cert.CertPEM, 0o644, base+"-key.pem", cert.KeyPEM)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			c.ui.Error(err.Error())
			return 1
		}
		c.ui.Output("==> Saved " + base + ".pem")
		c.ui.Output("==> Saved " + base + "-key.pem")
		return 0
	}
}

// writeNew writes a certificate and its key to files that must not exist yet; the key is
// readable by its owner only. Either both are written or neither is left behind.
func writeNew(certPath string, certPEM []byte, certMode os.FileMode, keyPath string, keyPEM []byte) error {
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return existsError(p)
		}
	}
	if err := writeExclusive(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeExclusive(certPath, certPEM, certMode); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// existsError is a file writeNew will not overwrite.
type existsError string

func (e existsError) Error() string {
	return string(e) + " already exists: not overwriting it (remove it, or write elsewhere with -dir)"
}
func (e existsError) Is(target error) bool { return target == os.ErrExist }

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

var _ flag.Value = (*listFlag)(nil)
