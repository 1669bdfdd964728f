package structs

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// EgressRule is a destination environments on a network may reach: an IPv4 network, and a
// port (TCP and UDP) or any.
type EgressRule struct {
	Net  *net.IPNet
	Port uint16 // 0: any port
}

// ParseEgressRule reads "10.89.0.0/24", "10.90.0.5/32:5432" or "10.90.0.5:5432" (a host, /32).
func ParseEgressRule(s string) (EgressRule, error) {
	addr, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		addr, port = s[:i], s[i+1:]
	}
	if !strings.Contains(addr, "/") {
		addr += "/32"
	}
	ip, n, err := net.ParseCIDR(addr)
	if err != nil || ip.To4() == nil || len(n.Mask) != net.IPv4len { // not ::ffff:a.b.c.d/128 either
		return EgressRule{}, fmt.Errorf("%q: an egress rule is an IPv4 network (10.0.0.0/24) or address, with an optional :port", s)
	}
	if !ip.Equal(n.IP) {
		return EgressRule{}, fmt.Errorf("%q: %s has host bits set; the network is %s", s, addr, n)
	}
	r := EgressRule{Net: n}
	if port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return EgressRule{}, fmt.Errorf("%q: the port must be 1 to 65535", s)
		}
		r.Port = uint16(p)
	}
	return r, nil
}

func (r EgressRule) String() string {
	if r.Port == 0 {
		return r.Net.String()
	}
	return r.Net.String() + ":" + strconv.Itoa(int(r.Port))
}
