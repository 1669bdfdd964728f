package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestDevTempDataDirRemoved: `agent -dev` without a data_dir makes a temporary one (after the
// binary re-executes itself sealed, so in the process that stays) and removes it on SIGTERM.
func TestDevTempDataDirRemoved(t *testing.T) {
	needRoot(t) // the libcontainer driver, whose sealing re-executes the binary
	dir := t.TempDir()
	// A copy with no plugin binaries beside it: -dev would run them, on their fixed ports.
	bin := filepath.Join(dir, "gateway")
	src, err := os.ReadFile(gatewayBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := filepath.Join(dir, "agent.hcl")
	hcl := fmt.Sprintf("http { address = %q }\ncluster { address = \"127.0.0.1:%d\" }\nnats { listen = \"127.0.0.1:%d\" }\n",
		httpAddr, freePort(t), freePort(t))
	if err := os.WriteFile(conf, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp") // the agent's TMPDIR, looked at alone
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "-dev", "-config", conf)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	waitUntil(t, "the -dev agent to serve", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/v1/health")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	devDirs := func() []string {
		m, _ := filepath.Glob(filepath.Join(tmp, "gateway-dev-*"))
		return m
	}
	if d := devDirs(); len(d) != 1 {
		t.Fatalf("while running: temporary data folders %v, want one\n%s", d, logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the clean-up
		if err != nil {
			t.Fatalf("the agent ended with %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the agent did not stop on SIGTERM\n%s", logs.String())
	}
	if d := devDirs(); len(d) != 0 {
		t.Fatalf("left after SIGTERM: %v\n%s", d, logs.String())
	}
}
