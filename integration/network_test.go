package integration

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netns"

	"github.com/lambdagw/gateway/sandbox/cni"
)

// dbNet is a "database" of the test's own: a namespace the host routes to through a veth
// (10.252.9.1 on the host, the server at 10.252.9.2), TCP listeners on the ports given.
type dbNet struct{ ns, hostEnd string }

func newDBNet(t *testing.T, ports ...int) *dbNet {
	t.Helper()
	tag := fmt.Sprintf("%04x", rand.Intn(1<<16))
	d := &dbNet{ns: "gwdb" + tag, hostEnd: "gwdbh" + tag}
	ipCmd(t, "netns", "add", d.ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", d.ns).Run() })
	ipCmd(t, "link", "add", d.hostEnd, "type", "veth", "peer", "name", "eth0", "netns", d.ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", d.hostEnd).Run() })
	ipCmd(t, "addr", "add", "10.252.9.1/24", "dev", d.hostEnd)
	ipCmd(t, "link", "set", d.hostEnd, "up")
	ipCmd(t, "-n", d.ns, "addr", "add", "10.252.9.2/24", "dev", "eth0")
	ipCmd(t, "-n", d.ns, "link", "set", "eth0", "up")
	ipCmd(t, "-n", d.ns, "link", "set", "lo", "up")
	ipCmd(t, "-n", d.ns, "route", "add", "default", "via", "10.252.9.1")
	for _, p := range ports {
		var ln net.Listener
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			h, err := netns.GetFromName(d.ns)
			if err == nil {
				err = netns.Set(h)
				h.Close()
			}
			if err == nil {
				ln, err = net.Listen("tcp", fmt.Sprintf("10.252.9.2:%d", p))
			}
			errc <- err
		}()
		if err := <-errc; err != nil {
			t.Fatalf("listening in the database's namespace: %v", err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	return d
}

// networkLeftovers lists what of the agent's networks is left on the host: veths on its
// bridge, the bridge, address leases, the firewall tables.
func networkLeftovers(t *testing.T, a *agentProc, bridge string) []string {
	t.Helper()
	var left []string
	if out, _ := exec.Command("ip", "-o", "link", "show", "master", bridge).Output(); strings.TrimSpace(string(out)) != "" {
		left = append(left, "ports on "+bridge+": "+strings.TrimSpace(string(out)))
	}
	if exec.Command("ip", "link", "show", bridge).Run() == nil {
		left = append(left, "bridge "+bridge)
	}
	leases, _ := filepath.Glob(filepath.Join(a.dataDir, "cni", "ipam", "*", "10.*"))
	for _, l := range leases {
		left = append(left, "lease "+filepath.Base(l))
	}
	conn, err := nftables.New()
	if err != nil {
		t.Fatalf("opening nftables: %v", err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		t.Fatalf("listing nftables tables: %v", err)
	}
	for _, tb := range tables {
		if tb.Name == cni.TableName(filepath.Join(a.dataDir, "cni")) {
			left = append(left, "nftables table "+tb.Name)
		}
	}
	return left
}

// TestFunctionNetworks: a function on the backend network reaches the "database" on the port
// its network allows and, with an egress policy, the rest of it; one without a network reaches
// nothing beyond its loopback; no function reaches the host's own services (a listener on
// every host address) or another environment; the network's DNS server is the environment's.
// 200 cold starts and ends on the network leave no lease; a kill -9 of the agent with
// environments on it, then a restart and a stop, leave no veth, lease, bridge or rule.
func TestFunctionNetworks(t *testing.T) {
	needRoot(t)
	newDBNet(t, 5432, 6000)
	hostLn, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	hostPort := hostLn.Addr().(*net.TCPAddr).Port
	name := fmt.Sprintf("be%04x", rand.Intn(1<<16))
	bridge := "lgw-" + name
	a := startAgent(t, agentOptions{node: "net", top: fmt.Sprintf(`
network %q {
  subnet = "10.252.8.0/24"
  dns    = ["10.252.9.53"]
  egress {
    allow = ["10.252.9.2/32:5432"]
  }
}
egress_policy "all-db" {
  allow = ["10.252.9.0/24"]
}
`, name)})
	a.apply(fmt.Sprintf(`
function "onnet" {
  runtime = "provided.al2023"
  code    = %[1]q
  network {
    name = %[2]q
  }
}
function "wider" {
  runtime = "provided.al2023"
  code    = %[1]q
  network {
    name            = %[2]q
    egress_policies = ["all-db"]
  }
}
function "offnet" {
  runtime = "provided.al2023"
  code    = %[1]q
}
`, fnDir, name))
	dial := func(fn, addr string) string {
		t.Helper()
		r := a.invoke(fn, fmt.Sprintf(`{"mode":"dial","addr":%q}`, addr), nil)
		var out struct{ Error string }
		if r.status != 200 || json.Unmarshal(r.body, &out) != nil {
			t.Fatalf("%s dialing %s: %d %s", fn, addr, r.status, r.body)
		}
		return out.Error
	}
	if e := dial("onnet", "10.252.9.2:5432"); e != "" {
		t.Errorf("a function on the network could not reach the database's allowed port: %s", e)
	}
	if e := dial("onnet", "10.252.9.2:6000"); e == "" {
		t.Error("a function reached a port its network does not allow")
	}
	if e := dial("wider", "10.252.9.2:6000"); e != "" {
		t.Errorf("a function could not reach what its egress policy allows: %s", e)
	}
	if e := dial("offnet", "10.252.9.2:5432"); e == "" {
		t.Error("a function without a network reached the database")
	}
	for _, fn := range []string{"onnet", "wider"} {
		for _, hostAddr := range []string{"10.252.8.1", "10.252.9.1"} {
			if e := dial(fn, fmt.Sprintf("%s:%d", hostAddr, hostPort)); e == "" {
				t.Errorf("%s reached a service of the host at %s", fn, hostAddr)
			}
		}
	}
	r := a.invoke("onnet", `{"mode":"readfile","path":"/etc/resolv.conf"}`, nil)
	if !strings.Contains(string(r.body), `nameserver 10.252.9.53`) {
		t.Errorf("the environment's resolv.conf: %s", r.body)
	}
	if r := a.invoke("offnet", `{"mode":"interfaces"}`, nil); strings.Contains(string(r.body), "eth0") {
		t.Errorf("a function without a network has %s", r.body)
	}

	// Cold starts and ends: a crash resets (destroys) the environment, so each call starts one.
	start := time.Now()
	for i := range 200 {
		if r := a.invoke("onnet", `{"mode":"crash"}`, nil); r.status != 200 {
			t.Fatalf("crash %d: %d %s", i, r.status, r.body)
		}
	}
	t.Logf("200 cold starts and ends on the network in %v", time.Since(start).Round(time.Millisecond))
	// At most the live environments on the network hold a lease (a crashed one is torn down
	// after its answer, and a standby may be on its way): never one per environment that went.
	var leases []string
	var live int
	if !holdsWithin(15*time.Second, func() bool {
		leases, _ = filepath.Glob(filepath.Join(a.dataDir, "cni", "ipam", "*", "10.*"))
		live = 0
		for _, e := range a.environments() {
			if e.Function == "onnet" || e.Function == "wider" {
				live++
			}
		}
		return len(leases) <= live
	}) {
		t.Errorf("%d leases held after 200 environments came and went, %d environments live on the network: %v", len(leases), live, leases)
	}

	// A kill -9 with environments on the network, then a restart: the sweep releases them.
	for _, fn := range []string{"onnet", "wider"} {
		a.invoke(fn, `{}`, nil)
	}
	_ = a.cmd.Process.Kill()
	<-a.exited
	a.start()
	a.stop()
	checkNothingLeft(t, a)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left := networkLeftovers(t, a, bridge)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind after a kill -9, a restart and a stop: %v", left)
		}
	}
	if _, err := os.Stat(filepath.Join(a.dataDir, "cni", "attachments")); err == nil {
		if entries, _ := os.ReadDir(filepath.Join(a.dataDir, "cni", "attachments")); len(entries) > 0 {
			t.Errorf("attachment records left: %v", entries)
		}
	}
}
