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
//   - The agent's own nftables tables (inet and bridge, TableName) hold, per environment, a chain
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
	"net"

	"github.com/lambdagw/gateway/internal/structs"
)

// Rule is a destination an environment may reach: a network, and a port (TCP and UDP) or any.
type Rule = structs.EgressRule

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

// BridgeName is the bridge the agent makes for a network of that name (structs.ValidNetworkName
// keeps it within the kernel's 15 characters).
func BridgeName(network string) string { return "lgw-" + network }

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
