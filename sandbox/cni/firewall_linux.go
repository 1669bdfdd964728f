//go:build linux

package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the name of an agent's nftables tables (inet and bridge), which it alone writes:
// made afresh at every start, removed at a clean stop. Named after the agent's work folder, so
// that agents sharing a host keep to their own.
func TableName(workDir string) string {
	sum := sha256.Sum256([]byte(workDir))
	return "lambdagw-" + hex.EncodeToString(sum[:4])
}

// The firewall, in nftables terms:
//
//	table inet lambdagw-<hash of the work folder> {
//	  set fn_ips { ipv4_addr }              every environment's address
//	  set no_host { ipv4_addr }             those whose network does not allow the host
//	  map envs { ipv4_addr : verdict }      address -> jump env-<id>
//	  chain forward { hook forward priority -10
//	    ip daddr @fn_ips ct state != established,related drop   nothing reaches an environment
//	    ct state established,related accept
//	    ip saddr vmap @envs                                     its own rules: accept what it may reach
//	    ip saddr @fn_ips drop                                   and nothing else
//	  }
//	  chain input { hook input priority -10; ip saddr @no_host drop }   not the host itself
//	  chain postrouting { nat hook postrouting; ip saddr <subnet> oifname != <bridge> masquerade }
//	  chain env-<id> { ip daddr <net> [th dport <port>] accept ... }
//	}
//	table bridge lambdagw-<...> {                  the agent's bridges: a port speaks for its address only
//	  map ports { ifname : verdict }         host veth -> jump env-<id>
//	  chain prerouting { hook prerouting priority -200; iifname vmap @ports }
//	  chain env-<id> { ip saddr <ip> accept; arp saddr ip <ip> accept; drop }
//	}
type firewall struct {
	conn                *nftables.Conn
	inet, br            *nftables.Table
	envs, fnIPs, noHost *nftables.Set
	ports               *nftables.Set
}

func newFirewall(tableName string, networks []*Network) (*firewall, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	f := &firewall{conn: conn,
		inet: &nftables.Table{Family: nftables.TableFamilyINet, Name: tableName},
		br:   &nftables.Table{Family: nftables.TableFamilyBridge, Name: tableName}}
	// What a previous run left is dropped whole: the sweep re-adds nothing, it detaches.
	for _, t := range []*nftables.Table{f.inet, f.br} {
		if tables, err := conn.ListTablesOfFamily(t.Family); err == nil {
			for _, old := range tables {
				if old.Name == tableName {
					conn.DelTable(old)
				}
			}
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("removing the firewall tables of a previous run: %w", err)
	}
	conn.AddTable(f.inet)
	conn.AddTable(f.br)
	f.fnIPs = &nftables.Set{Table: f.inet, Name: "fn_ips", KeyType: nftables.TypeIPAddr}
	f.noHost = &nftables.Set{Table: f.inet, Name: "no_host", KeyType: nftables.TypeIPAddr}
	f.envs = &nftables.Set{Table: f.inet, Name: "envs", KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict, IsMap: true}
	f.ports = &nftables.Set{Table: f.br, Name: "ports", KeyType: nftables.TypeIFName, DataType: nftables.TypeVerdict, IsMap: true}
	for _, s := range []*nftables.Set{f.fnIPs, f.noHost, f.envs, f.ports} {
		if err := conn.AddSet(s, nil); err != nil {
			return nil, fmt.Errorf("making the firewall's set %s: %w", s.Name, err)
		}
	}
	prio := func(p int32) *nftables.ChainPriority { v := nftables.ChainPriority(p); return &v }
	accept := policy(nftables.ChainPolicyAccept)
	fwd := conn.AddChain(&nftables.Chain{Table: f.inet, Name: "forward", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: prio(-10), Policy: accept})
	in := conn.AddChain(&nftables.Chain{Table: f.inet, Name: "input", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: prio(-10), Policy: accept})
	nat := conn.AddChain(&nftables.Chain{Table: f.inet, Name: "postrouting", Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: accept})
	pre := conn.AddChain(&nftables.Chain{Table: f.br, Name: "prerouting", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: prio(-200), Policy: accept})

	rule := func(c *nftables.Chain, exprs ...expr.Any) {
		conn.AddRule(&nftables.Rule{Table: c.Table, Chain: c, Exprs: exprs})
	}
	notEstablished := append(ctEstablished(), &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: zero32()})
	rule(fwd, cat(ipv4(), ipAddr(16), inSet(f.fnIPs, false), notEstablished, verdict(expr.VerdictDrop))...)
	rule(fwd, cat(ctEstablished(), []expr.Any{&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: zero32()}}, verdict(expr.VerdictAccept))...)
	rule(fwd, cat(ipv4(), ipAddr(12), []expr.Any{&expr.Lookup{SourceRegister: 1, SetName: f.envs.Name, SetID: f.envs.ID, DestRegister: 0, IsDestRegSet: true}})...)
	rule(fwd, cat(ipv4(), ipAddr(12), inSet(f.fnIPs, false), verdict(expr.VerdictDrop))...)
	rule(in, cat(ipv4(), ipAddr(12), inSet(f.noHost, false), verdict(expr.VerdictDrop))...)
	for _, n := range networks {
		if n.Bridge == "" || n.Subnet == nil {
			continue
		}
		rule(nat, cat(ipv4(), ipAddr(12), inNet(n.Subnet), ifname(expr.MetaKeyOIFNAME, n.Bridge, expr.CmpOpNeq), []expr.Any{&expr.Masq{}})...)
	}
	rule(pre, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: f.ports.Name, SetID: f.ports.ID, DestRegister: 0, IsDestRegSet: true})
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("making the firewall tables (nftables): %w", err)
	}
	return f, nil
}

func policy(p nftables.ChainPolicy) *nftables.ChainPolicy { return &p }

func envChain(id string) string { return "env-" + id }

// add gives environment a its rules: rules it may reach (all: anything), bound to its port on
// an agent's bridge.
func (f *firewall) add(a *Attachment, n *Network, rules []Rule, all bool) error {
	c := f.conn
	ip := a.IP.To4()
	ch := c.AddChain(&nftables.Chain{Table: f.inet, Name: envChain(a.ID)})
	if all {
		c.AddRule(&nftables.Rule{Table: f.inet, Chain: ch, Exprs: verdict(expr.VerdictAccept)})
	} else {
		for _, r := range rules {
			dst := cat(ipAddr(16), inNet(r.Net))
			if r.Port == 0 {
				c.AddRule(&nftables.Rule{Table: f.inet, Chain: ch, Exprs: cat(dst, verdict(expr.VerdictAccept))})
				continue
			}
			for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
				c.AddRule(&nftables.Rule{Table: f.inet, Chain: ch, Exprs: cat(dst,
					[]expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
						&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
						&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.Port)}},
					verdict(expr.VerdictAccept))})
			}
		}
	}
	if err := c.SetAddElements(f.envs, []nftables.SetElement{{Key: ip, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: ch.Name}}}); err != nil {
		return err
	}
	if err := c.SetAddElements(f.fnIPs, []nftables.SetElement{{Key: ip}}); err != nil {
		return err
	}
	if !n.AllowHost {
		if err := c.SetAddElements(f.noHost, []nftables.SetElement{{Key: ip}}); err != nil {
			return err
		}
	}
	a.bridged = n.Bridge != "" && a.HostVeth != ""
	if a.bridged {
		bch := c.AddChain(&nftables.Chain{Table: f.br, Name: envChain(a.ID)})
		c.AddRule(&nftables.Rule{Table: f.br, Chain: bch, Exprs: cat(etherType(unix.ETH_P_IP),
			[]expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip}}, verdict(expr.VerdictAccept))})
		c.AddRule(&nftables.Rule{Table: f.br, Chain: bch, Exprs: cat(etherType(unix.ETH_P_ARP),
			[]expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 14, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip}}, verdict(expr.VerdictAccept))})
		c.AddRule(&nftables.Rule{Table: f.br, Chain: bch, Exprs: verdict(expr.VerdictDrop)})
		if err := c.SetAddElements(f.ports, []nftables.SetElement{{Key: ifnameBytes(a.HostVeth),
			VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: bch.Name}}}); err != nil {
			return err
		}
	}
	return c.Flush()
}

// remove takes environment a's rules away, all that add made of them, in one batch (the
// references to its chains go before the chains).
func (f *firewall) remove(a *Attachment, allowHost bool) error {
	c := f.conn
	ip := []nftables.SetElement{{Key: a.IP.To4()}}
	sets := []*nftables.Set{f.envs, f.fnIPs}
	if !allowHost {
		sets = append(sets, f.noHost)
	}
	var errs []error
	for _, s := range sets {
		errs = append(errs, c.SetDeleteElements(s, ip))
	}
	bridged := a.HostVeth != "" && a.bridged
	if bridged {
		errs = append(errs, c.SetDeleteElements(f.ports, []nftables.SetElement{{Key: ifnameBytes(a.HostVeth)}}))
	}
	ch := &nftables.Chain{Table: f.inet, Name: envChain(a.ID)}
	c.FlushChain(ch)
	c.DelChain(ch)
	if bridged {
		bch := &nftables.Chain{Table: f.br, Name: envChain(a.ID)}
		c.FlushChain(bch)
		c.DelChain(bch)
	}
	errs = append(errs, c.Flush())
	return errors.Join(errs...)
}

func (f *firewall) close() error {
	f.conn.DelTable(f.inet)
	f.conn.DelTable(f.br)
	return f.conn.Flush()
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// ipv4 matches IPv4 packets (an inet table sees both families).
func ipv4() []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}}}
}

// ipAddr loads the IPv4 source (offset 12) or destination (16) into register 1.
func ipAddr(offset uint32) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
}

// inNet matches register 1 against a network.
func inNet(n *net.IPNet) []expr.Any {
	return []expr.Any{
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(n.Mask), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: n.IP.To4()},
	}
}

func inSet(s *nftables.Set, invert bool) []expr.Any {
	return []expr.Any{&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: invert}}
}

// ctEstablished leaves in register 1 the connection's state masked to established|related.
func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: zero32()},
	}
}

func zero32() []byte { return []byte{0, 0, 0, 0} }

func ifname(key expr.MetaKey, name string, op expr.CmpOp) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: ifnameBytes(name)}}
}

// ifnameBytes is an interface name as nftables compares it: IFNAMSIZ bytes, NUL padded.
func ifnameBytes(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func etherType(t uint16) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(t)}}
}
