package lambda

import (
	"slices"

	"github.com/lambdagw/gateway/internal/structs"
)

// VpcConfig is Lambda's VPC attachment, on premises: SubnetIds names the operator's network (a
// network block of the agents), SecurityGroupIds its egress policies (egress_policy blocks).
// Empty lists remove the network, as Terraform's AWS provider removes one.
type VpcConfig struct {
	SubnetIds               []string `json:"SubnetIds"`
	SecurityGroupIds        []string `json:"SecurityGroupIds"`
	Ipv6AllowedForDualStack *bool    `json:"Ipv6AllowedForDualStack,omitempty"`
}

// VpcConfigResponse is a function's VpcConfig as Lambda answers it.
type VpcConfigResponse struct {
	SubnetIds               []string `json:"SubnetIds"`
	SecurityGroupIds        []string `json:"SecurityGroupIds"`
	VpcId                   string   `json:"VpcId"` //nolint:revive // Lambda's field name
	Ipv6AllowedForDualStack bool     `json:"Ipv6AllowedForDualStack"`
}

// NetworkFrom maps a VpcConfig to a function's network: nil for none (empty lists). A function
// is on one network: the subnets named must be one, given once or more.
func NetworkFrom(v *VpcConfig) (*structs.FunctionNetwork, error) {
	subnets := slices.Compact(slices.Sorted(slices.Values(v.SubnetIds)))
	switch {
	case len(subnets) == 0 && len(v.SecurityGroupIds) > 0:
		return nil, InvalidParameter("VpcConfig: SecurityGroupIds (egress policies) need SubnetIds naming the network")
	case len(subnets) == 0:
		return nil, nil
	case len(subnets) > 1:
		return nil, InvalidParameter("VpcConfig.SubnetIds: %q: a function is on one of the operator's networks; name one", subnets)
	}
	n := &structs.FunctionNetwork{Name: subnets[0], EgressPolicies: slices.Clone(v.SecurityGroupIds)}
	if v.Ipv6AllowedForDualStack != nil {
		n.IPv6AllowedForDualStack = *v.Ipv6AllowedForDualStack
	}
	return n, nil
}

// VpcConfigFrom is the VpcConfig that sets n (empty lists for none).
func VpcConfigFrom(n *structs.FunctionNetwork) *VpcConfig {
	v := &VpcConfig{SubnetIds: []string{}, SecurityGroupIds: []string{}}
	if n != nil {
		v.SubnetIds = []string{n.Name}
		v.SecurityGroupIds = append(v.SecurityGroupIds, n.EgressPolicies...)
		if n.IPv6AllowedForDualStack {
			t := true
			v.Ipv6AllowedForDualStack = &t
		}
	}
	return v
}

// vpcConfigResponse describes a function's network; nil for none.
func vpcConfigResponse(n *structs.FunctionNetwork) *VpcConfigResponse {
	if n == nil {
		return nil
	}
	return &VpcConfigResponse{SubnetIds: []string{n.Name}, SecurityGroupIds: append([]string{}, n.EgressPolicies...),
		VpcId: n.Name, Ipv6AllowedForDualStack: n.IPv6AllowedForDualStack}
}
