//go:build linux

package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/hashicorp/go-hclog"
	"github.com/vishvananda/netlink"
)

// DefaultPluginDirs are where CNI plugins are looked for: Debian's containernetworking-plugins
// and the usual place of the upstream release.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Config configures a Manager.
type Config struct {
	// WorkDir holds the attachment records, libcni's cache, host-local's leases and the
	// networks' resolv.conf files.
	WorkDir    string
	PluginDirs []string
	Networks   []*Network
	// Policies are the named egress policies functions may add to their network's rules.
	Policies map[string][]Rule
	Logger   hclog.Logger
}

// Manager attaches environments to networks.
type Manager struct {
	cfg      Config
	logger   hclog.Logger
	cni      *libcni.CNIConfig
	networks map[string]*network
	fw       *firewall
	recDir   string
	mu       sync.Mutex // serialises firewall changes
}

type network struct {
	*Network
	list    *libcni.NetworkConfigList
	resolvF string
}

// Attachment is an environment on a network.
type Attachment struct {
	ID       string    `json:"id"`
	Network  string    `json:"network"`
	NetNS    string    `json:"netns,omitempty"`
	IP       net.IP    `json:"ip,omitempty"`
	HostVeth string    `json:"host_veth,omitempty"`
	At       time.Time `json:"at"`
	// ruled: its firewall rules were added (by this run: a previous run's went with its tables);
	// bridged: they bind it to its port on the agent's bridge.
	ruled, bridged bool
}

const ifName = "eth0"

// New prepares the networks: checks each configuration list and its plugins, writes the
// resolv.conf files, (re)creates the agent's nftables tables, and sweeps the attachments a
// previous run left (an agent killed with environments on networks): CNI DEL for each, which
// releases its address.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	m := &Manager{cfg: cfg, logger: cfg.Logger.Named("cni"), networks: map[string]*network{},
		recDir: filepath.Join(cfg.WorkDir, "attachments")}
	m.cni = libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.WorkDir, "cache"), nil)
	for _, dir := range []string{m.recDir, filepath.Join(cfg.WorkDir, "resolv")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	for _, n := range cfg.Networks {
		list, err := libcni.ConfListFromBytes(n.ConfList)
		if err != nil {
			return nil, fmt.Errorf("network %s: reading its CNI configuration list: %w", n.Name, err)
		}
		if _, err := m.cni.ValidateNetworkList(ctx, list); err != nil {
			return nil, fmt.Errorf("network %s: its CNI plugins (looked for in %s): %w", n.Name, strings.Join(cfg.PluginDirs, ", "), err)
		}
		nw := &network{Network: n, list: list, resolvF: filepath.Join(cfg.WorkDir, "resolv", n.Name+".conf")}
		var b strings.Builder
		for _, ip := range n.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", ip)
		}
		if err := os.WriteFile(nw.resolvF, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("network %s: writing its resolv.conf: %w", n.Name, err)
		}
		m.networks[n.Name] = nw
	}
	fw, err := newFirewall(TableName(cfg.WorkDir), cfg.Networks)
	if err != nil {
		return nil, err
	}
	m.fw = fw
	m.sweep(ctx)
	m.removeStalePorts()
	return m, nil
}

// removeStalePorts removes the veths left on the agent's bridges: at start no environment is on
// them yet, so each belongs to one a previous run left (whose namespace the kernel may free only
// later, or whose container the driver's sweep is about to kill).
func (m *Manager) removeStalePorts() {
	for _, n := range m.networks {
		if n.Bridge == "" {
			continue
		}
		for _, p := range m.ports(n.Bridge) {
			if err := netlink.LinkDel(p); err != nil {
				m.logger.Warn("could not remove a veth a previous run left on its bridge", "bridge", n.Bridge, "veth", p.Attrs().Name, "error", err)
				continue
			}
			m.logger.Info("removed a veth a previous run left on its bridge", "bridge", n.Bridge, "veth", p.Attrs().Name)
		}
	}
}

// ports lists the links enslaved to bridge (none when it does not exist).
func (m *Manager) ports(bridge string) []netlink.Link {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return nil
	}
	links, _ := netlink.LinkList()
	var out []netlink.Link
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l)
		}
	}
	return out
}

// Has says whether the node declares network name.
func (m *Manager) Has(name string) bool { _, ok := m.networks[name]; return ok }

// ResolvConf is the file to mount at the environments' /etc/resolv.conf on network name.
func (m *Manager) ResolvConf(name string) string {
	if n := m.networks[name]; n != nil {
		return n.resolvF
	}
	return ""
}

// Allowed is what an environment of network name with the given egress policies may reach.
func (m *Manager) Allowed(name string, policies []string) (rules []Rule, all bool, err error) {
	n := m.networks[name]
	if n == nil {
		return nil, false, fmt.Errorf("network %q: %w", name, ErrUnknownNetwork)
	}
	rules = append(rules, n.Egress...)
	for _, ip := range n.DNS {
		rules = append(rules, Rule{Net: &net.IPNet{IP: ip.To4(), Mask: net.CIDRMask(32, 32)}, Port: 53})
	}
	for _, p := range policies {
		pr, ok := m.cfg.Policies[p]
		if !ok {
			return nil, false, fmt.Errorf("egress policy %q is not declared on this node", p)
		}
		rules = append(rules, pr...)
	}
	return rules, n.AllowAll, nil
}

// Attach puts the environment id, whose network namespace is at netnsPath, on network name
// with the given egress policies. On failure nothing of it is left.
func (m *Manager) Attach(ctx context.Context, id, netnsPath, name string, policies []string) (*Attachment, error) {
	n := m.networks[name]
	if n == nil {
		return nil, fmt.Errorf("network %q: %w", name, ErrUnknownNetwork)
	}
	rules, all, err := m.Allowed(name, policies)
	if err != nil {
		return nil, err
	}
	a := &Attachment{ID: id, Network: name, NetNS: netnsPath, At: time.Now()}
	// The record comes first: an agent killed during ADD leaves it for the next start's sweep.
	if err := m.writeRecord(a); err != nil {
		return nil, err
	}
	rt := m.runtimeConf(a)
	res, err := m.cni.AddNetworkList(ctx, n.list, rt)
	if err != nil {
		m.del(context.WithoutCancel(ctx), a)
		return nil, fmt.Errorf("attaching to network %s (CNI ADD): %w", name, err)
	}
	if err := m.readResult(a, n, res); err != nil {
		m.del(context.WithoutCancel(ctx), a)
		return nil, fmt.Errorf("attaching to network %s: %w", name, err)
	}
	if err := m.writeRecord(a); err != nil {
		m.del(context.WithoutCancel(ctx), a)
		return nil, err
	}
	if n.Bridge != "" && a.HostVeth != "" {
		// Environments on one bridge cannot reach each other, only the gateway.
		link, err := netlink.LinkByName(a.HostVeth)
		if err == nil {
			err = netlink.LinkSetIsolated(link, true)
		}
		if err != nil {
			m.del(context.WithoutCancel(ctx), a)
			return nil, fmt.Errorf("isolating %s's port %s on %s: %w", id, a.HostVeth, n.Bridge, err)
		}
	}
	m.mu.Lock()
	err = m.fw.add(a, n.Network, rules, all)
	m.mu.Unlock()
	a.ruled = err == nil
	if err != nil {
		m.del(context.WithoutCancel(ctx), a)
		return nil, fmt.Errorf("setting the egress rules of %s: %w", id, err)
	}
	return a, nil
}

// readResult takes the environment's address and the host end of its veth from an ADD's result.
func (m *Manager) readResult(a *Attachment, n *network, r types.Result) error {
	res, err := current.NewResultFromResult(r)
	if err != nil {
		return fmt.Errorf("reading the CNI result: %w", err)
	}
	for _, ip := range res.IPs {
		if v4 := ip.Address.IP.To4(); v4 != nil {
			a.IP = v4
			break
		}
	}
	if a.IP == nil {
		return errors.New("the CNI result has no IPv4 address")
	}
	for _, itf := range res.Interfaces {
		if itf.Sandbox == "" && itf.Name != n.Bridge && itf.Name != "" {
			a.HostVeth = itf.Name
		}
	}
	return nil
}

// Detach takes the environment off its network: its rules go, and CNI DEL releases its
// address. It is called before the namespace goes.
func (m *Manager) Detach(ctx context.Context, a *Attachment) error {
	return m.del(ctx, a)
}

func (m *Manager) del(ctx context.Context, a *Attachment) error {
	var errs []error
	n := m.networks[a.Network]
	if a.ruled && n != nil {
		m.mu.Lock()
		if err := m.fw.remove(a, n.AllowHost); err != nil {
			errs = append(errs, fmt.Errorf("removing the egress rules of %s: %w", a.ID, err))
		}
		a.ruled = false
		m.mu.Unlock()
	}
	if n != nil {
		rt := m.runtimeConf(a)
		if a.NetNS != "" {
			if _, err := os.Stat(a.NetNS); err != nil {
				rt.NetNS = "" // gone with its environment: the plugins release what they hold
			}
		}
		if err := m.cni.DelNetworkList(ctx, n.list, rt); err != nil {
			errs = append(errs, fmt.Errorf("detaching %s from network %s (CNI DEL): %w", a.ID, a.Network, err))
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(m.recordPath(a.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) runtimeConf(a *Attachment) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: a.ID, NetNS: a.NetNS, IfName: ifName}
}

func (m *Manager) recordPath(id string) string { return filepath.Join(m.recDir, id+".json") }

func (m *Manager) writeRecord(a *Attachment) error {
	b, _ := json.Marshal(a)
	tmp := m.recordPath(a.ID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("recording the attachment of %s: %w", a.ID, err)
	}
	if err := os.Rename(tmp, m.recordPath(a.ID)); err != nil {
		return fmt.Errorf("recording the attachment of %s: %w", a.ID, err)
	}
	return nil
}

// sweep detaches what a previous run left attached (its records), as far as it can; a record
// it cannot clear is kept for the next start, and logged.
func (m *Manager) sweep(ctx context.Context) {
	entries, _ := os.ReadDir(m.recDir)
	for _, e := range entries {
		p := filepath.Join(m.recDir, e.Name())
		if !strings.HasSuffix(e.Name(), ".json") {
			_ = os.Remove(p) // a half-written record: its ADD never ran
			continue
		}
		b, err := os.ReadFile(p)
		var a Attachment
		if err == nil {
			err = json.Unmarshal(b, &a)
		}
		if err != nil || a.ID == "" || a.ID+".json" != e.Name() {
			m.logger.Warn("removing an unreadable network attachment record", "file", p, "error", err)
			_ = os.Remove(p)
			continue
		}
		if m.networks[a.Network] == nil {
			m.logger.Warn("an environment was left on a network this agent no longer declares; its address may stay leased", "environment", a.ID, "network", a.Network)
			_ = os.Remove(p)
			continue
		}
		// Its rules went with the previous run's tables (a.ruled is false). The path named the dead agent's descriptor; a process now may hold another namespace
		// under it. Without one the plugins release what they hold (the address).
		a.NetNS = ""
		if err := m.del(ctx, &a); err != nil {
			m.logger.Error("could not detach an environment a previous run left on a network", "environment", a.ID, "network", a.Network, "error", err)
			continue
		}
		m.logger.Info("detached an environment a previous run left on a network", "environment", a.ID, "network", a.Network)
	}
}

// Close removes the agent's firewall tables and the bridges it made that no environment uses
// any more; call it once every environment is detached.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	errs := []error{m.fw.close()}
	for _, n := range m.networks {
		if n.Bridge == "" {
			continue
		}
		br, err := netlink.LinkByName(n.Bridge)
		if err != nil {
			continue // never made: no environment was on it
		}
		if len(m.ports(n.Bridge)) == 0 {
			if err := netlink.LinkDel(br); err != nil {
				errs = append(errs, fmt.Errorf("removing bridge %s: %w", n.Bridge, err))
			}
		}
	}
	return errors.Join(errs...)
}
