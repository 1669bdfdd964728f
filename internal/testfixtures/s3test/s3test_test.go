package s3test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestServerStoresObjectsAndNotifies: the server answers the S3 client, keeps objects in its
// folder, pushes notifications to the webhook, and is gone after Stop.
func TestServerStoresObjectsAndNotifies(t *testing.T) {
	got := make(chan []byte, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- b:
		default:
		}
	}))
	t.Cleanup(hook.Close)

	srv := Start(t, Options{WebhookURL: hook.URL + "/hook", Buckets: []string{"things"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := srv.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("things"), Key: aws.String("a/b c.txt"),
		Body: strings.NewReader("hello")}); err != nil {
		t.Fatalf("put: %v", err)
	}
	out, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("things"), Key: aws.String("a/b c.txt")})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "hello" {
		t.Fatalf("got %q", body)
	}
	if b, err := os.ReadFile(filepath.Join(srv.Dir, "things", "a", "b c.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("the posix backend's file: %q %v", b, err)
	}

	// The test event at start, then the object's event.
	for {
		select {
		case b := <-got:
			var ev struct {
				Records []struct {
					EventName string `json:"eventName"`
					S3        struct {
						Object struct{ Key string } `json:"object"`
					} `json:"s3"`
				}
			}
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatalf("notification %s: %v", b, err)
			}
			if len(ev.Records) == 0 {
				continue // the test event
			}
			if ev.Records[0].EventName != "s3:ObjectCreated:Put" || ev.Records[0].S3.Object.Key != "a/b c.txt" {
				t.Fatalf("notification %s", b)
			}
		case <-ctx.Done():
			t.Fatal("no notification of the put")
		}
		break
	}

	pid := srv.cmd.Process.Pid
	srv.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("versitygw (pid %d) still runs after Stop", pid)
	}
	srv.Stop() // again: a no-op
}

// TestBinaryMissingNamesInstallCommand: without the binary the error says how to install it.
func TestBinaryMissingNamesInstallCommand(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	old := fallbackBinary
	fallbackBinary = filepath.Join(t.TempDir(), "versitygw")
	t.Cleanup(func() { fallbackBinary = old })
	_, err := Binary()
	if err == nil || !strings.Contains(err.Error(), InstallCommand) {
		t.Fatalf("error %v does not name %q", err, InstallCommand)
	}
}

// TestBinaryInRepoTools: with versitygw not on PATH (plain `go test`), the one make deps put in
// the repository's .tools/bin is found from a package folder below the root.
func TestBinaryInRepoTools(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{".git", "go.mod"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := filepath.Join(root, ".tools", "bin", "versitygw")
	pkg := filepath.Join(root, "internal", "s3test")
	for _, d := range []string{filepath.Dir(want), pkg} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(pkg)
	t.Setenv("PATH", t.TempDir())
	old := fallbackBinary
	fallbackBinary = repoTool("versitygw")
	t.Cleanup(func() { fallbackBinary = old })
	if got, err := Binary(); err != nil || got != want {
		t.Fatalf("Binary() = %q, %v; want %q", got, err, want)
	}
}
