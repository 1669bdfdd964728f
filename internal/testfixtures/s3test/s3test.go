// Package s3test runs a real S3-compatible server for tests: versitygw (github.com/versity/versitygw)
// with its posix backend on a folder of the test's, on a free loopback port, optionally pushing
// bucket event notifications to a webhook, and gives an aws-sdk-go-v2 S3 client of it.
//
// The versitygw binary must be installed (found on PATH, or in .tools/bin of the repository,
// where make deps puts it); a test that needs it fails, naming InstallCommand, when it is not.
// The server is started as:
//
//	versitygw --port 127.0.0.1:PORT --access KEY --secret SECRET --region REGION --health /health \
//	    --quiet [--event-webhook-url URL] posix DIR
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// InstallCommand installs the versitygw binary these tests run, into the repository's .tools/bin.
const InstallCommand = "make deps"

// toolsBin is where make deps installs Go tools, relative to the repository's root.
const toolsBin = ".tools/bin"

// fallbackBinary is where make deps puts versitygw, looked at when it is not on PATH (plain
// `go test` runs without the Makefile's PATH); empty when no repository root was found.
var fallbackBinary = repoTool("versitygw")

// repoTool returns the path name would have in toolsBin of the repository holding the working
// directory (a test runs in its package's folder): the nearest parent with a go.mod and a .git.
func repoTool(name string) string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return filepath.Join(dir, toolsBin, name)
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Defaults.
const (
	DefaultRegion = "us-east-1"
	AccessKey     = "s3test-root"
	healthPath    = "/health"
	startTimeout  = 20 * time.Second
	stopTimeout   = 5 * time.Second
	startAttempts = 3
)

// Options are what a test asks of its server.
type Options struct {
	// WebhookURL, when set, is where versitygw POSTs bucket event notifications (its
	// --event-webhook-url): one JSON document {"Records": [...]} per event, sent asynchronously
	// and never retried, plus a test event {"Service": "S3", "Event": "s3:TestEvent", ...} at
	// start. versitygw refuses to start when nothing listens there, so start the receiver first.
	WebhookURL string
	// Region is the server's region; DefaultRegion when empty.
	Region string
	// Buckets are created once the server answers.
	Buckets []string
}

// Server is a running versitygw.
type Server struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the root user's credentials.
	AccessKey, SecretKey string
	Region               string
	// Dir is the posix backend's folder: each bucket is a subfolder.
	Dir string
	// Client is an S3 client of the server (path-style addressing, the root credentials).
	Client *s3.Client

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	logPath string
	stop    sync.Once
}

// Binary returns the path of the versitygw binary, or an error naming InstallCommand.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	if fallbackBinary != "" {
		if st, err := os.Stat(fallbackBinary); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return fallbackBinary, nil
		}
	}
	return "", fmt.Errorf("the versitygw binary is not installed (not on PATH nor at %s): install it with `%s`",
		fallbackBinary, InstallCommand)
}

// Start runs versitygw for the test, waits until it answers and stops it (its whole process
// group) when the test ends. It fails the test when versitygw is not installed or does not start.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	region := opts.Region
	if region == "" {
		region = DefaultRegion
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	base := t.TempDir()
	s := &Server{AccessKey: AccessKey, SecretKey: hex.EncodeToString(secret), Region: region,
		Dir: filepath.Join(base, "data"), logPath: filepath.Join(base, "versitygw.log")}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	// A free port can be taken by someone else before versitygw binds it: try again then.
	for attempt := 1; ; attempt++ {
		err = s.start(bin, opts.WebhookURL)
		if err == nil {
			break
		}
		s.kill()
		if attempt == startAttempts {
			t.Fatalf("s3test: starting versitygw: %v\n%s", err, s.logTail())
		}
	}
	t.Cleanup(s.Stop)
	s.Client = s.NewClient()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, b := range opts.Buckets {
		if _, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("s3test: creating bucket %s: %v", b, err)
		}
	}
	return s
}

func (s *Server) start(bin, webhook string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	s.Endpoint = "http://" + addr
	args := []string{"--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
		"--health", healthPath, "--quiet"}
	if webhook != "" {
		args = append(args, "--event-webhook-url", webhook)
	}
	args = append(args, "posix", s.Dir)
	logf, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	return s.waitReady()
}

// waitReady polls the health endpoint until it answers 200, the process exits or time runs out.
func (s *Server) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(s.Endpoint + healthPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("versitygw exited: %v", s.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within %v", s.Endpoint, startTimeout)
		}
	}
}

// Stop stops the server and its process group (SIGTERM, then SIGKILL after a while). Start
// arranges it at the end of the test; calling it earlier is fine.
func (s *Server) Stop() { s.stop.Do(s.kill) }

func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
	}
	// Whatever is left of the group (the leader too, if it ignored SIGTERM).
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// NewClient returns a new S3 client of the server with the root credentials.
func (s *Server) NewClient() *s3.Client {
	creds := aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey, Source: "s3test"}
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Log returns what versitygw wrote to its stdout and stderr so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *Server) logTail() string {
	b := []byte(s.Log())
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "(versitygw wrote nothing)"
	}
	return "versitygw's output:\n" + string(b)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return "", err
	}
	if port == "" || port == "0" {
		return "", errors.New("no free port")
	}
	return port, nil
}

// cleanEnv is the test's environment less versitygw's own settings, which would override the
// flags' defaults.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "VGW_") || strings.HasPrefix(k, "ROOT_") || k == "WEBHOOK" || k == "LOGFILE" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
