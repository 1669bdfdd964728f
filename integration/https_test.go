package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// selfSignedCert writes a self-signed certificate for 127.0.0.1, localhost and the function URL
// domain, and its key, into dir; the certificate is its own CA.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "gateway integration test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost", "*.lambda-url.localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "gw.pem"), filepath.Join(dir, "gw-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestHTTPS: an agent with http { tls { cert, key } } serves its API and function URLs over
// HTTPS. The AWS SDK for Go v2, trusting the certificate through a custom CA pool, deploys and
// invokes a function; the CLI lists functions given the CA in GATEWAY_CACERT or -ca-cert; the
// function URL is https:// and the function sees X-Forwarded-Proto https. Clients that do not
// trust the certificate, and plain HTTP, are refused.
func TestHTTPS(t *testing.T) {
	needRoot(t)
	certFile, keyFile := selfSignedCert(t, t.TempDir())
	a := startAgent(t, agentOptions{node: "https", keys: []testKey{{"ops", authAdminID, authAdminSecret, "admin"}},
		httpExtra: fmt.Sprintf("tls {\n    cert = %q\n    key  = %q\n  }", certFile, keyFile), caFile: certFile})
	if !strings.HasPrefix(a.addr, "https://") {
		t.Fatalf("harness address %s", a.addr)
	}
	ctx := context.Background()

	// The AWS SDK with the CA in a custom pool (a.client's transport).
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	createFunction(t, client, "fn", codeZip(t, nil), nil)
	out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"name":"tls"}`)})
	if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), "Hello, tls!") {
		t.Fatalf("Invoke over HTTPS: %v %s", err, out.Payload)
	}

	// The CLI: the CA from GATEWAY_CACERT (the harness sets it), or from -ca-cert.
	if stdout, stderr, code := a.cli("functions"); code != 0 || !strings.Contains(stdout, "fn") {
		t.Fatalf("gateway functions with GATEWAY_CACERT exited %d:\n%s%s", code, stdout, stderr)
	}
	cli := func(args ...string) (string, int) {
		cmd := exec.Command(gatewayBin, args...)
		cmd.Env = append(withoutAWSEnv(os.Environ()), "GATEWAY_CACERT=", "AWS_ACCESS_KEY_ID="+authAdminID, "AWS_SECRET_ACCESS_KEY="+authAdminSecret)
		b, _ := cmd.CombinedOutput()
		return string(b), cmd.ProcessState.ExitCode()
	}
	if out, code := cli("functions", "-address", a.addr, "-ca-cert", certFile); code != 0 || !strings.Contains(out, "fn") {
		t.Fatalf("gateway functions -ca-cert exited %d:\n%s", code, out)
	}
	if out, code := cli("functions", "-address", a.addr); code != 1 || !strings.Contains(out, "certificate") {
		t.Errorf("gateway functions without the CA exited %d (want 1, a certificate error):\n%s", code, out)
	}

	// A function URL is https://, reached through its host name, and the function is told so.
	u, err := client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("fn"), AuthType: types.FunctionUrlAuthTypeNone})
	if err != nil || !strings.HasPrefix(aws.ToString(u.FunctionUrl), "https://") {
		t.Fatalf("CreateFunctionUrlConfig: %v %s", err, aws.ToString(u.FunctionUrl))
	}
	tr := a.client.Transport.(*http.Transport).Clone()
	hostport := strings.TrimPrefix(a.addr, "https://")
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, hostport)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Get(aws.ToString(u.FunctionUrl))
	if err != nil {
		t.Fatalf("GET %s: %v", aws.ToString(u.FunctionUrl), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Echo") != "yes" || !strings.Contains(string(body), `"x-forwarded-proto":"https"`) {
		t.Fatalf("function URL over HTTPS: %d %v %s", resp.StatusCode, resp.Header, body)
	}

	// Refused: an SDK that does not trust the certificate, and plain HTTP on the port.
	untrusted := a.sdk(func(o *awslambda.Options) { o.HTTPClient = &http.Client{}; o.RetryMaxAttempts = 1 })
	if _, err := untrusted.ListFunctions(ctx, &awslambda.ListFunctionsInput{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an SDK without the CA: %v, want a certificate error", err)
	}
	resp, err = http.Get("http://" + hostport + "/v1/health")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
			t.Errorf("plain HTTP to the HTTPS listener: %d %s", resp.StatusCode, b)
		}
	}
	// TLS is HTTP/1.1 only: the listener's bounds are per connection.
	conn, err := tls.Dial("tcp", hostport, &tls.Config{RootCAs: a.client.Transport.(*http.Transport).TLSClientConfig.RootCAs, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p == "h2" {
		t.Errorf("the agent negotiated %s", p)
	}
}
