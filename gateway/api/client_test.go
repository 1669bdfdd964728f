package api

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/lambdagw/gateway/gateway/sigv4"
)

// TestUploadProgress: a large body reports its progress at each quarter and once at the end;
// small bodies report nothing.
func TestUploadProgress(t *testing.T) {
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(200)
	}))
	defer srv.Close()
	c, err := New(Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 3<<20)
	var reports [][2]int64
	ctx := WithUploadProgress(context.Background(), func(sent, total int64) { reports = append(reports, [2]int64{sent, total}) })
	if _, _, err := c.do(ctx, "PUT", "/up", nil, body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("the server got %d bytes, want %d", len(got), len(body))
	}
	if n := len(reports); n < 2 || n > 6 || reports[n-1] != [2]int64{3 << 20, 3 << 20} {
		t.Fatalf("reports %v: want a few, ending with the whole body", reports)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i][0] <= reports[i-1][0] {
			t.Fatalf("reports go backwards: %v", reports)
		}
	}
	reports = nil
	if _, _, err := c.do(ctx, "PUT", "/up", nil, []byte(`{"small":true}`)); err != nil || len(reports) != 0 {
		t.Fatalf("a small body: %v, reports %v", err, reports)
	}
}

// TestSignedRequestsDeclareTheirHash: the client's signed requests carry the body's hash in
// X-Amz-Content-Sha256, so an agent verifies them before it reads a byte of the body.
func TestSignedRequestsDeclareTheirHash(t *testing.T) {
	v, err := sigv4.New(sigv4.Config{Keys: map[string]string{"AKIACLIENTTEST000001": "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := v.Precheck(r)
		if err != nil || !p.DeclaresPayload() || p.UnsignedPayload() {
			http.Error(w, fmt.Sprintf("precheck: %v, declares %v", err, p != nil && p.DeclaresPayload()), http.StatusBadRequest)
			return
		}
		_, body, err := p.VerifyDeclared(r.Body)
		if err == nil {
			_, err = io.ReadAll(body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	c, err := New(Config{Address: srv.URL, Credentials: &Credentials{AccessKeyID: "AKIACLIENTTEST000001", SecretAccessKey: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range [][]byte{nil, []byte(`{"FunctionName":"f"}`)} {
		if _, b, err := c.do(context.Background(), "POST", "/2015-03-31/functions", nil, body); err != nil {
			t.Errorf("body %q: %v %s", body, err, b)
		}
	}
}

// TestCACert: an https:// agent is reached when its CA is named (flag or GATEWAY_CACERT), and
// refused otherwise.
func TestCACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{}") }))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEWAY_CACERT", "")
	for name, cfg := range map[string]Config{"flag": {Address: srv.URL, CACert: caFile}, "none": {Address: srv.URL}} {
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Status(context.Background())
		if (name == "flag") != (err == nil) {
			t.Errorf("%s: %v", name, err)
		}
	}
	t.Setenv("GATEWAY_CACERT", caFile)
	c, err := New(Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("GATEWAY_CACERT: %v", err)
	}
	if _, err := New(Config{Address: srv.URL, CACert: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
