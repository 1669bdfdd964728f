package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// benchAgent is a single-node agent the bench starts, pinned to serverCPU.
type benchAgent struct {
	cmd     *exec.Cmd
	base    string
	dataDir string
}

// startBenchAgent starts a single-node agent named node with its data in tmp/<node>-data (made
// afresh) and extra appended to its file, pinned to serverCPU, and waits for its API.
func startBenchAgent(client *http.Client, gwBin, tmp, node, driver, extra string) (*benchAgent, error) {
	dataDir := filepath.Join(tmp, node+"-data")
	if err := os.RemoveAll(dataDir); err != nil {
		return nil, err
	}
	httpAddr := freeAddr()
	conf := fmt.Sprintf("node_name = %q\ndata_dir = %q\nlog_level = \"warn\"\nhttp { address = %q }\ncluster {\n  address = %q\n  bootstrap = true\n}\nsandbox { driver = %q }\n",
		node, dataDir, httpAddr, freeAddr(), driver)
	confPath := filepath.Join(tmp, node+"-agent.hcl")
	if err := os.WriteFile(confPath, []byte(conf+extra+agentProcsLine()), 0o644); err != nil {
		return nil, err
	}
	cmd, err := startPinned(nil, gwBin, "agent", "-config", confPath)
	if err != nil {
		return nil, err
	}
	a := &benchAgent{cmd: cmd, base: "http://" + httpAddr, dataDir: dataDir}
	if err := waitHTTP(client, a.base+"/v1/health", "GET"); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

func (a *benchAgent) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		_ = a.cmd.Process.Kill()
		<-done
	}
}
