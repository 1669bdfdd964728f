package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
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
