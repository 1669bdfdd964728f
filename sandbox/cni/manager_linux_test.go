//go:build linux

package cni

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, CNI, nftables)")
	}
	for _, dir := range DefaultPluginDirs {
		if _, err := os.Stat(filepath.Join(dir, "bridge")); err == nil {
			return
		}
	}
	t.Fatal("no CNI bridge plugin in " + strings.Join(DefaultPluginDirs, ", ") + ": make test installs containernetworking-plugins")
}

// newNS makes a named network namespace, deleted at the test's end.
func newNS(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, rand.IntN(1e6))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return name
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v %s", strings.Join(args, " "), err, out)
	}
}

// inNS runs fn on a locked thread inside namespace name.
func inNS(t *testing.T, name string, fn func() error) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromName(name)
		if err != nil {
			ch <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// listen opens a TCP listener in namespace ns (closed at the test's end) that accepts and closes.
func listen(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(t, ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, ns, err)
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

// dial says whether a TCP connection to addr from namespace ns succeeds (from local, if set).
func dial(t *testing.T, ns, addr, local string) error {
	t.Helper()
	return inNS(t, ns, func() error {
		d := net.Dialer{Timeout: 700 * time.Millisecond}
		if local != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// udpSink receives datagrams on addr in namespace ns.
func udpSink(t *testing.T, ns, addr string) <-chan string {
	t.Helper()
	var pc net.PacketConn
	if err := inNS(t, ns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	ch := make(chan string, 8)
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

// newDB makes a "database" the host routes to: a namespace with a veth, the host's end at
// <prefix>.1/24, the server's at <prefix>.2 listening on ports 5432 and 6000. It returns the
// namespace; all goes at the test's end.
func newDB(t *testing.T, prefix string) string {
	t.Helper()
	db := newNS(t, "lgwt-db")
	hostEnd := fmt.Sprintf("lgwtd%d", rand.IntN(1e5))
	ip(t, "link", "add", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", db)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostEnd).Run() })
	ip(t, "addr", "add", prefix+".1/24", "dev", hostEnd)
	ip(t, "link", "set", hostEnd, "up")
	ip(t, "-n", db, "addr", "add", prefix+".2/24", "dev", "eth0")
	ip(t, "-n", db, "link", "set", "eth0", "up")
	ip(t, "-n", db, "link", "set", "lo", "up")
	ip(t, "-n", db, "route", "add", "default", "via", prefix+".1")
	listen(t, db, prefix+".2:5432")
	listen(t, db, prefix+".2:6000")
	return db
}

// TestAttachEgressAndCleanUp: environments on a bridge network get an address and reach what
// their rules allow (a "database" in a namespace of the test's, on one port and not another),
// never the host, another environment, or anything with a forged source address; Detach
// releases the address and the rules; an attachment left by a killed agent is swept at the next
// start; Close removes the tables.
func TestAttachEgressAndCleanUp(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	work := t.TempDir()
	db := newDB(t, "10.251.9") // a "database" the host routes to, at 10.251.9.2

	_, subnet, _ := net.ParseCIDR("10.251.8.0/24")
	name := fmt.Sprintf("t%d", rand.IntN(1e6))
	dbRule, _ := structs.ParseEgressRule("10.251.9.2:5432")
	nw := &Network{Name: name, Bridge: BridgeName(name), Subnet: subnet, Egress: []Rule{dbRule},
		DNS: []net.IP{net.ParseIP("10.251.9.53")}}
	nw.ConfList = BridgeConfList(name, subnet, filepath.Join(work, "ipam"))
	all, _ := structs.ParseEgressRule("10.251.9.0/24")
	m, err := New(ctx, Config{WorkDir: work, Networks: []*Network{nw}, Policies: map[string][]Rule{"db-all": {all}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(); _ = exec.Command("ip", "link", "del", nw.Bridge).Run() })
	if b, _ := os.ReadFile(m.ResolvConf(name)); string(b) != "nameserver 10.251.9.53\n" {
		t.Errorf("resolv.conf: %q", b)
	}

	envA, envB := newNS(t, "lgwt-a"), newNS(t, "lgwt-b")
	a, err := m.Attach(ctx, "env-a", "/run/netns/"+envA, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Attach(ctx, "env-b", "/run/netns/"+envB, name, []string{"db-all"})
	if err != nil {
		t.Fatal(err)
	}
	if !subnet.Contains(a.IP) || !subnet.Contains(b.IP) || a.IP.Equal(b.IP) {
		t.Fatalf("addresses %v and %v in %v", a.IP, b.IP, subnet)
	}
	if link, err := netlink.LinkByName(a.HostVeth); err != nil || link.Attrs().MasterIndex == 0 {
		t.Fatalf("the host end of env-a's veth %q: %v", a.HostVeth, err)
	}
	if err := dial(t, envA, "10.251.9.2:5432", ""); err != nil {
		t.Errorf("env-a could not reach the database's allowed port: %v", err)
	}
	if err := dial(t, envA, "10.251.9.2:6000", ""); err == nil {
		t.Error("env-a reached a port its network does not allow")
	}
	if err := dial(t, envB, "10.251.9.2:6000", ""); err != nil {
		t.Errorf("env-b could not reach a port its egress policy allows: %v", err)
	}
	// The host: a listener on all its addresses, reached through the gateway's address.
	hostLn, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	hostPort := hostLn.Addr().(*net.TCPAddr).Port
	for _, hostAddr := range []string{"10.251.8.1", "10.251.9.1"} {
		if err := dial(t, envB, fmt.Sprintf("%s:%d", hostAddr, hostPort), ""); err == nil {
			t.Errorf("an environment reached the host at %s", hostAddr)
		}
	}
	// Another environment on the same bridge.
	listen(t, envA, "0.0.0.0:7000")
	if err := dial(t, envB, a.IP.String()+":7000", ""); err == nil {
		t.Error("env-b reached env-a")
	}
	// A forged source: env-a takes env-b's address (env-b's rights are keyed by address) and
	// sends a datagram to the port only env-b may reach; the database sees env-b's own, never
	// env-a's.
	got := udpSink(t, db, "10.251.9.2:6000")
	send := func(ns, from, msg string) {
		t.Helper()
		if err := inNS(t, ns, func() error {
			c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, &net.UDPAddr{IP: net.ParseIP("10.251.9.2"), Port: 6000})
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte(msg))
			return err
		}); err != nil {
			t.Fatalf("sending from %s as %s: %v", ns, from, err)
		}
	}
	ip(t, "-n", envA, "addr", "add", b.IP.String()+"/32", "dev", "eth0")
	send(envA, b.IP.String(), "forged")
	send(envB, b.IP.String(), "genuine")
	select {
	case msg := <-got:
		if msg != "genuine" {
			t.Errorf("the database got %q first", msg)
		}
	case <-time.After(3 * time.Second):
		t.Error("env-b's own datagram did not arrive")
	}
	select {
	case msg := <-got:
		t.Errorf("the database got %q too", msg)
	case <-time.After(500 * time.Millisecond):
	}

	leases := filepath.Join(work, "ipam", "lambdagw-"+name)
	if err := m.Detach(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(leases, a.IP.String())); !os.IsNotExist(err) {
		t.Errorf("env-a's lease is left: %v", err)
	}
	conn, _ := nftables.New()
	chains, _ := conn.ListChains()
	for _, c := range chains {
		if c.Table.Name == TableName(work) && c.Name == envChain("env-a") {
			t.Errorf("env-a's chain is left in %v", c.Table.Family)
		}
	}
	// env-b is left attached, as by an agent killed -9 (whose environments died with it): the
	// next start detaches it.
	ip(t, "netns", "del", envB)
	// The kernel frees a namespace, and its veths, some time after its last user goes (seconds
	// on a busy machine); the pair goes at once with its host end.
	_ = exec.Command("ip", "link", "del", b.HostVeth).Run()
	m2, err := New(ctx, Config{WorkDir: work, Networks: []*Network{nw}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(leases, b.IP.String())); !os.IsNotExist(err) {
		t.Errorf("env-b's lease survived the sweep: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(work, "attachments")); len(entries) != 0 {
		t.Errorf("attachment records left after the sweep: %v", entries)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(nw.Bridge); err == nil {
		t.Errorf("bridge %s is left after Close", nw.Bridge)
	}
	tables, _ := conn.ListTables()
	for _, tb := range tables {
		if tb.Name == TableName(work) {
			t.Errorf("the firewall table (%v) is left after Close", tb.Family)
		}
	}
}

// TestOperatorConfList: a network given as the operator's own configuration list (here the
// standard ptp plugin: a veth routed by the host, no bridge) attaches the same way, and the
// agent's egress rules hold on it, by address.
func TestOperatorConfList(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	work := t.TempDir()
	newDB(t, "10.251.19")

	name := fmt.Sprintf("p%d", rand.IntN(1e6))
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[{"type":"ptp","ipMasq":false,
		"ipam":{"type":"host-local","ranges":[[{"subnet":"10.251.18.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}}]}`,
		"lgwt-"+name, filepath.Join(work, "ipam"))
	rule, _ := structs.ParseEgressRule("10.251.19.2:5432")
	nw := &Network{Name: name, ConfList: []byte(conf), Egress: []Rule{rule}}
	m, err := New(ctx, Config{WorkDir: work, Networks: []*Network{nw}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	env := newNS(t, "lgwt-p")
	a, err := m.Attach(ctx, "env-p", "/run/netns/"+env, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(t, env, "10.251.19.2:5432", ""); err != nil {
		t.Errorf("the allowed port through the operator's network: %v", err)
	}
	if err := dial(t, env, "10.251.19.2:6000", ""); err == nil {
		t.Error("a port the network does not allow was reached through the operator's network")
	}
	if err := m.Detach(ctx, a); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(work, "attachments")); len(entries) != 0 {
		t.Errorf("attachment records left: %v", entries)
	}
}
