package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/sandbox/cni"
)

// networks starts the node's private networks (network and egress_policy blocks) for the
// libcontainer driver: nil when it declares none. Its Close is registered before the driver's,
// so it runs after every environment is gone.
func (a *agent) networks(ctx context.Context, dataDir string) (*cni.Manager, error) {
	cfg := a.cfg
	if len(cfg.Networks) == 0 {
		return nil, nil
	}
	work := filepath.Join(dataDir, "cni")
	var nets []*cni.Network
	for _, n := range cfg.Networks {
		cn := &cni.Network{Name: n.Name, Subnet: n.Subnet, Egress: n.Egress, AllowAll: n.EgressAll, AllowHost: n.AllowHost, DNS: n.DNS}
		if n.Subnet != nil {
			cn.Bridge = cni.BridgeName(n.Name)
			cn.ConfList = cni.BridgeConfList(n.Name, n.Subnet, filepath.Join(work, "ipam"))
		} else {
			b, err := os.ReadFile(n.CNIConfig)
			if err != nil {
				return nil, fmt.Errorf("network %s: reading its CNI configuration list: %w", n.Name, err)
			}
			cn.ConfList = b
		}
		nets = append(nets, cn)
	}
	policies := map[string][]cni.Rule{}
	for _, p := range cfg.EgressPolicies {
		policies[p.Name] = p.Allow
	}
	m, err := cni.New(ctx, cni.Config{WorkDir: work, Networks: nets, Policies: policies, Logger: a.logger})
	if err != nil {
		return nil, fmt.Errorf("starting the private networks: %w", err)
	}
	a.onClose(func(context.Context) error { return m.Close() })
	a.logger.Info("private networks ready", "networks", len(nets), "egress_policies", len(policies))
	return m, nil
}

// networkCatalog is the gateway's view of the node's networks, from the agent's file.
type networkCatalog struct{ networks, policies map[string]bool }

func newNetworkCatalog(cfg *config.Agent) networkCatalog {
	c := networkCatalog{networks: map[string]bool{}, policies: map[string]bool{}}
	for _, n := range cfg.Networks {
		c.networks[n.Name] = true
	}
	for _, p := range cfg.EgressPolicies {
		c.policies[p.Name] = true
	}
	return c
}

func (c networkCatalog) HasNetwork(name string) bool      { return c.networks[name] }
func (c networkCatalog) HasEgressPolicy(name string) bool { return c.policies[name] }
