package config

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/lambdagw/gateway/internal/structs"
)

// Network is a network block: one of the operator's private networks functions may be put on
// (Lambda's VPC, on-prem). Either Subnet (the agent writes a bridge configuration for it: a
// bridge lgw-<name> with NAT, addresses from host-local) or CNIConfig (the operator's own CNI
// configuration list) is set.
type Network struct {
	Name      string
	Subnet    *net.IPNet
	CNIConfig string // an absolute path
	// Egress is what every function on the network may reach; EgressAll (no egress block):
	// anything but the host and other environments.
	Egress    []structs.EgressRule
	EgressAll bool
	DNS       []net.IP
	// AllowHost lets its functions reach the host's own addresses (the agent's ports too).
	AllowHost bool
}

// EgressPolicy is an egress_policy block: destinations a function naming it may reach beyond
// its network's (Lambda's security groups, for egress).
type EgressPolicy struct {
	Name  string
	Allow []structs.EgressRule
}

type networkBlock struct {
	Name      string       `hcl:"name,label"`
	Subnet    *string      `hcl:"subnet,optional"`
	CNIConfig *string      `hcl:"cni_config,optional"`
	DNS       *[]string    `hcl:"dns,optional"`
	AllowHost *bool        `hcl:"allow_host,optional"`
	Egress    *egressBlock `hcl:"egress,block"`
	Body      hcl.Body     `hcl:",body"`
}

type egressBlock struct {
	Allow []string `hcl:"allow"`
	Body  hcl.Body `hcl:",body"`
}

type egressPolicyBlock struct {
	Name  string   `hcl:"name,label"`
	Allow []string `hcl:"allow"`
	Body  hcl.Body `hcl:",body"`
}

// egressRules reads an allow list (of body's "allow" attribute, for diagnostics).
func egressRules(body hcl.Body, allow []string) ([]structs.EgressRule, hcl.Diagnostics) {
	var out []structs.EgressRule
	var diags hcl.Diagnostics
	for _, s := range allow {
		r, err := structs.ParseEgressRule(s)
		if err != nil {
			diags = append(diags, attrDiag(body, "allow", "Invalid egress rule", err.Error()+"."))
			continue
		}
		out = append(out, r)
	}
	return out, diags
}

// decodeNetworks validates the network and egress_policy blocks.
func decodeNetworks(blocks []networkBlock, policies []egressPolicyBlock, baseDir string) ([]Network, []EgressPolicy, hcl.Diagnostics) {
	var diags, d hcl.Diagnostics
	var out []Network
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		decl := b.Body.MissingItemRange()
		if prev, dup := seen[b.Name]; dup {
			diags = append(diags, rangeDiag("Duplicate network block", fmt.Sprintf("network %q is also declared at %s.", b.Name, prev), decl))
			continue
		}
		seen[b.Name] = decl
		if !structs.ValidNetworkName(b.Name) {
			diags = append(diags, rangeDiag("Invalid network name",
				fmt.Sprintf("%q: a network name has 1 to 11 lowercase letters, digits and '-' (its bridge is lgw-<name>, within an interface name's 15 characters).", b.Name), decl))
			continue
		}
		n := Network{Name: b.Name, EgressAll: b.Egress == nil}
		switch {
		case (b.Subnet == nil) == (b.CNIConfig == nil):
			diags = append(diags, rangeDiag("Network without one source", fmt.Sprintf("network %q sets one of subnet (the agent makes a bridge with NAT for it) and cni_config (a CNI configuration list of your own).", b.Name), decl))
		case b.Subnet != nil:
			ip, sn, err := net.ParseCIDR(*b.Subnet)
			var ones int
			if err == nil {
				ones, _ = sn.Mask.Size()
			}
			switch {
			case err != nil || ip.To4() == nil || len(sn.Mask) != net.IPv4len:
				diags = append(diags, attrDiag(b.Body, "subnet", "Invalid subnet", fmt.Sprintf("%q is not an IPv4 network like 10.88.0.0/24.", *b.Subnet)))
			case !ip.Equal(sn.IP):
				diags = append(diags, attrDiag(b.Body, "subnet", "Invalid subnet", fmt.Sprintf("%q has host bits set: the network is %s.", *b.Subnet, sn)))
			case ones < 8 || ones > 28:
				diags = append(diags, attrDiag(b.Body, "subnet", "Invalid subnet", fmt.Sprintf("%q: a subnet is /8 to /28 (a gateway and environments' addresses).", *b.Subnet)))
			default:
				for _, o := range out {
					if o.Subnet != nil && (o.Subnet.Contains(sn.IP) || sn.Contains(o.Subnet.IP)) {
						diags = append(diags, attrDiag(b.Body, "subnet", "Overlapping subnets", fmt.Sprintf("%s overlaps network %q's %s.", sn, o.Name, o.Subnet)))
					}
				}
				n.Subnet = sn
			}
		default:
			path := absPath(baseDir, *b.CNIConfig)
			src, err := os.ReadFile(path)
			var list struct {
				CNIVersion string            `json:"cniVersion"`
				Name       string            `json:"name"`
				Plugins    []json.RawMessage `json:"plugins"`
			}
			if err == nil {
				err = json.Unmarshal(src, &list)
			}
			if err == nil && (list.Name == "" || len(list.Plugins) == 0) {
				err = fmt.Errorf("it has no name or no plugins")
			}
			if err != nil {
				diags = append(diags, attrDiag(b.Body, "cni_config", "Invalid CNI configuration list",
					fmt.Sprintf("network %q: %s: %v. It is a CNI configuration list (a .conflist: cniVersion, name, plugins); the path is relative to this file.", b.Name, filepath.Base(path), err)))
			}
			n.CNIConfig = path
		}
		if b.DNS != nil {
			for _, s := range *b.DNS {
				ip := net.ParseIP(s)
				if ip == nil || ip.To4() == nil {
					diags = append(diags, attrDiag(b.Body, "dns", "Invalid DNS server", fmt.Sprintf("%q is not an IPv4 address.", s)))
					continue
				}
				n.DNS = append(n.DNS, ip.To4())
			}
		}
		if b.AllowHost != nil {
			n.AllowHost = *b.AllowHost
		}
		if e := b.Egress; e != nil {
			n.Egress, d = egressRules(e.Body, e.Allow)
			diags = append(diags, d...)
		}
		out = append(out, n)
	}
	var pols []EgressPolicy
	seenPol := map[string]hcl.Range{}
	for _, b := range policies {
		decl := b.Body.MissingItemRange()
		if prev, dup := seenPol[b.Name]; dup {
			diags = append(diags, rangeDiag("Duplicate egress_policy block", fmt.Sprintf("egress_policy %q is also declared at %s.", b.Name, prev), decl))
			continue
		}
		seenPol[b.Name] = decl
		if !structs.ValidName(b.Name) {
			diags = append(diags, rangeDiag("Invalid egress_policy name", fmt.Sprintf("%q: a name has 1 to 64 letters, digits, '-' and '_'.", b.Name), decl))
			continue
		}
		allow, d := egressRules(b.Body, b.Allow)
		diags = append(diags, d...)
		pols = append(pols, EgressPolicy{Name: b.Name, Allow: allow})
	}
	return out, pols, diags
}
