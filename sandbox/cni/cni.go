// Package cni attaches execution environments to the operator's private networks with CNI
// (libcni and the standard plugins: bridge, host-local, or any plugin the operator's own
// configuration list names) and enforces each environment's egress with nftables.
//
// An environment without a network keeps its loopback-only namespace; this package is not
// involved. For one with a network:
//   - Attach runs CNI ADD for the environment's network namespace (eth0), before its runtime
//     starts, so the cost is a cold start's (or a standby's) and never a warm invocation's. A
//     record of the attachment is written first, so that an agent killed at any moment finds it
//     at its next start and runs CNI DEL for it (releasing the address).
//   - The agent's own nftables tables (inet and bridge "lambdagw") hold, per environment, a chain
//     of what it may reach (the network's egress rules and the function's egress policies,
//     keyed by its address, which the bridge table binds to its port so it cannot be forged),
//     and for every environment: no connection to the host itself (the agent's API, cluster
//     port, NATS) unless the network allows it, none to another environment, none from
//     outside. On the bridges the agent makes, the ports are isolated from each other.
//   - Detach removes the rules and runs CNI DEL; the namespace (and with it the veth) goes
//     with the environment.
package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Rule is a destination an environment may reach: a network, and a port (TCP and UDP) or any.
type Rule struct {
	Net  *net.IPNet
	Port uint16 // 0: any port
}

// ParseRule reads "10.89.0.0/24", "10.90.0.5/32:5432" or "10.90.0.5:5432" (a host, /32).
func ParseRule(s string) (Rule, error) {
	addr, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		addr, port = s[:i], s[i+1:]
	}
	if !strings.Contains(addr, "/") {
		addr += "/32"
	}
	ip, n, err := net.ParseCIDR(addr)
	if err != nil || ip.To4() == nil {
		return Rule{}, fmt.Errorf("%q: an egress rule is an IPv4 network (10.0.0.0/24) or address, with an optional :port", s)
	}
	if !ip.Equal(n.IP) {
		return Rule{}, fmt.Errorf("%q: %s has host bits set; the network is %s", s, addr, n)
	}
	r := Rule{Net: n}
	if port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return Rule{}, fmt.Errorf("%q: the port must be 1 to 65535", s)
		}
		r.Port = uint16(p)
	}
	return r, nil
}

func (r Rule) String() string {
	if r.Port == 0 {
		return r.Net.String()
	}
	return r.Net.String() + ":" + strconv.Itoa(int(r.Port))
}

// Network is one of the operator's networks.
type Network struct {
	Name string
	// ConfList is the CNI configuration list (JSON): the operator's, or the one BridgeConfList
	// writes for a subnet.
	ConfList []byte
	// Bridge is the bridge the agent's own configuration makes ("" for the operator's own):
	// its ports are isolated and bound to their addresses, and its subnet is masqueraded.
	Bridge string
	Subnet *net.IPNet
	// Egress lists what every environment on the network may reach; AllowAll: anything
	// (but the host, other environments). Functions' egress policies add to it.
	Egress   []Rule
	AllowAll bool
	// AllowHost lets environments reach the host's own addresses (its services).
	AllowHost bool
	// DNS servers written to the environments' /etc/resolv.conf (and allowed on port 53).
	DNS []net.IP
}

// maxNameLen bounds a network's name so that its bridge name (lgw-<name>) fits IFNAMSIZ.
const maxNameLen = 11

// BridgeName is the bridge the agent makes for a network of that name.
func BridgeName(network string) string { return "lgw-" + network }

// ValidName says whether name can name a network the agent makes a bridge for.
func ValidName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for _, r := range name {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

// ErrUnknownNetwork is a network no block of the agent declares.
var ErrUnknownNetwork = errors.New("no such network on this node")

// BridgeConfList is the CNI configuration list the agent writes for a network given as a
// subnet: a bridge (lgw-<name>) that is the environments' gateway, addresses from host-local
// (its leases under ipamDir), a default route. Masquerading is the agent's firewall's, not
// the plugin's, so that one owner adds and removes every rule.
func BridgeConfList(name string, subnet *net.IPNet, ipamDir string) []byte {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "lambdagw-" + name,
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      BridgeName(name),
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": false,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  []any{[]any{map[string]any{"subnet": subnet.String()}}},
				"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
				"dataDir": ipamDir,
			},
		}},
	}
	b, _ := json.Marshal(conf) // maps of strings, bools and slices: cannot fail
	return b
}
