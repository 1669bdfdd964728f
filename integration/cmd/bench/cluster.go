package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The cluster measurements: three real agents on this machine (distinct loopback ports).
//   - forwarding: warm invoke latency on the node holding the environment against the same
//     calls sent to another node, which forwards them (pairs of blocks, as the other latency rows);
//   - publish to invocable: from PublishVersion's answer on one node to a successful call of the
//     new version on every node;
//   - failover: from kill -9 of the leader to the first write committed through a survivor.

type clusterOpts struct {
	n, publishRuns, failoverRuns int
}

type benchNode struct {
	name, dir, conf, http, raft string
	cmd                         *exec.Cmd
	done                        chan struct{}
}

func (n *benchNode) start() error {
	n.cmd = exec.Command(n.gw(), "agent", "-config", n.conf)
	n.cmd.Stderr = io.Discard
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		return err
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	return nil
}

var benchGateway string

func (n *benchNode) gw() string { return benchGateway }

func (n *benchNode) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	<-n.done
}

func benchCluster(client *http.Client, gwBin, fnDir, tmp string, payload []byte, o clusterOpts) ([]string, error) {
	benchGateway = gwBin
	nodes := make([]*benchNode, 3)
	var join []string
	for i := range nodes {
		n := &benchNode{name: fmt.Sprintf("c%d", i+1), dir: filepath.Join(tmp, fmt.Sprintf("c%d", i+1)), http: freeAddr(), raft: freeAddr()}
		nodes[i] = n
		join = append(join, fmt.Sprintf("%q", n.raft))
	}
	for _, n := range nodes {
		n.conf = filepath.Join(tmp, n.name+".hcl")
		conf := fmt.Sprintf(`node_name = %q
data_dir = %q
log_level = "warn"
http { address = %q }
cluster {
  address          = %q
  bootstrap_expect = 3
  join             = [%s]
}
`, n.name, n.dir, n.http, n.raft, strings.Join(join, ", "))
		conf += agentProcsLine()
		if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		if err := n.start(); err != nil {
			return nil, err
		}
		defer n.stop()
	}
	for _, n := range nodes {
		if err := waitHTTP(client, "http://"+n.http+"/v1/health", "GET"); err != nil {
			return nil, err
		}
	}
	leader := func(via *benchNode) (string, error) {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			resp, err := client.Get("http://" + via.http + "/v1/cluster/members")
			if err != nil {
				continue
			}
			var out struct {
				Members []struct {
					ID     string `json:"id"`
					Leader bool   `json:"leader"`
				} `json:"members"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil {
				continue
			}
			for _, m := range out.Members {
				if m.Leader && len(out.Members) == 3 {
					return m.ID, nil
				}
			}
		}
		return "", fmt.Errorf("no leader of three known to %s", via.name)
	}
	if _, err := leader(nodes[0]); err != nil {
		return nil, err
	}
	fnPath := filepath.Join(tmp, "cluster-functions.hcl")
	if err := os.WriteFile(fnPath, []byte(functionBlock("fwd", fnDir, "100ms")+functionBlock("pub", fnDir, "100ms")), 0o644); err != nil {
		return nil, err
	}
	if b, err := exec.Command(gwBin, "apply", "-address", "http://"+nodes[0].http, fnPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apply on the cluster: %v\n%s", err, b)
	}
	var rows []string

	// Forwarding: the environment lives on c1; c2 forwards to it.
	url := func(n *benchNode, fn string) string {
		return "http://" + n.http + "/2015-03-31/functions/" + fn + "/invocations"
	}
	if _, err := call(client, url(nodes[0], "fwd"), payload); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // c1's report of its idle environment reaches the others
	local, fwd, err := pairedLatencies(client, url(nodes[0], "fwd"), url(nodes[1], "fwd"), payload, o.n)
	if err != nil {
		return nil, fmt.Errorf("forwarding: %w", err)
	}
	if n := environments(client, nodes[1], "fwd"); n > 0 {
		return nil, fmt.Errorf("forwarding: %s started %d environments of the function instead of forwarding", nodes[1].name, n)
	}
	for _, p := range []int{50, 99} {
		rows = append(rows, fmt.Sprintf("| cluster: warm invoke p%d forwarded by another node (3 nodes, freeze_delay 100ms, %d calls each) | %.0f µs | %.0f µs (on the node holding the environment) | %+.0f µs for the hop |",
			p, o.n, us(pct(fwd, p)), us(pct(local, p)), us(pct(fwd, p)-pct(local, p))))
	}
	fmt.Printf("cluster forwarding p50: local %.0f µs, forwarded %.0f µs\n", us(pct(local, 50)), us(pct(fwd, 50)))

	// Publish to invocable on every node: change $LATEST, publish, then call the new version on
	// all three until each answers.
	var pubTimes []time.Duration
	for i := 0; i < o.publishRuns; i++ {
		body := fmt.Sprintf(`{"Environment":{"Variables":{"RUN":"%d"}}}`, i)
		if err := apiCall(client, "PUT", "http://"+nodes[0].http+"/2015-03-31/functions/pub/configuration", body, nil); err != nil {
			return nil, err
		}
		var v struct{ Version string }
		if err := apiCall(client, "POST", "http://"+nodes[0].http+"/2015-03-31/functions/pub/versions", "{}", &v); err != nil {
			return nil, err
		}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(nodes))
		for _, n := range nodes {
			wg.Add(1)
			go func(n *benchNode) {
				defer wg.Done()
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
					resp, err := client.Post(url(n, "pub")+"?Qualifier="+v.Version, "application/json", bytes.NewReader(payload))
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 200 {
							return
						}
					}
					time.Sleep(time.Millisecond)
				}
				errs <- fmt.Errorf("version %s never became invocable on %s", v.Version, n.name)
			}(n)
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return nil, err
		}
		pubTimes = append(pubTimes, time.Since(start))
	}
	sortDur(pubTimes)
	rows = append(rows, fmt.Sprintf("| cluster: publish to invocable on every node (PublishVersion answered on one node, then the new version called on all 3 until each answers), median of %d | %.1f ms | | slowest %.1f ms |",
		o.publishRuns, ms(pct(pubTimes, 50)), ms(pubTimes[len(pubTimes)-1])))

	// Failover: kill -9 the leader, write through a survivor until a write commits.
	var fail []time.Duration
	for i := 0; i < o.failoverRuns; i++ {
		id, err := leader(nodes[0])
		if err != nil {
			return nil, err
		}
		var dead *benchNode
		var via *benchNode
		for _, n := range nodes {
			if n.name == id {
				dead = n
			} else if via == nil {
				via = n
			}
		}
		killed := time.Now()
		_ = dead.cmd.Process.Kill()
		<-dead.done
		var took time.Duration
		for j := 0; ; j++ {
			body := fmt.Sprintf(`{"Name":"f%d-%d","FunctionVersion":"$LATEST"}`, i, j)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := apiCallCtx(ctx, client, "POST", "http://"+via.http+"/2015-03-31/functions/pub/aliases", body, nil)
			cancel()
			if err == nil {
				took = time.Since(killed)
				break
			}
			if time.Since(killed) > 60*time.Second {
				return nil, fmt.Errorf("no write committed within 60 s of killing the leader: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		fail = append(fail, took)
		fmt.Printf("failover %d: leader %s killed, first write through %s after %v\n", i+1, dead.name, via.name, took.Round(time.Millisecond))
		if err := dead.start(); err != nil {
			return nil, err
		}
		if err := waitHTTP(client, "http://"+dead.http+"/v1/health", "GET"); err != nil {
			return nil, err
		}
		if _, err := leader(dead); err != nil {
			return nil, err
		}
	}
	sortDur(fail)
	rows = append(rows, fmt.Sprintf("| cluster: failover, kill -9 of the leader to the first write committed through a survivor (Raft heartbeat and election timeouts 500 ms), median of %d | %.0f ms | | slowest %.0f ms |",
		o.failoverRuns, ms(pct(fail, 50)), ms(fail[len(fail)-1])))
	return rows, nil
}

// environments counts a node's environments of a function that are not standby.
func environments(client *http.Client, n *benchNode, fn string) int {
	resp, err := client.Get("http://" + n.http + "/v1/status")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var st struct {
		Environments []struct{ Function, State string } `json:"environments"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return -1
	}
	c := 0
	for _, e := range st.Environments {
		if e.Function == fn && e.State != "standby" {
			c++
		}
	}
	return c
}

func apiCall(client *http.Client, method, url, body string, out any) error {
	return apiCallCtx(context.Background(), client, method, url, body, out)
}

func apiCallCtx(ctx context.Context, client *http.Client, method, url, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
