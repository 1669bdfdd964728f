package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetworkBlocks: network and egress_policy blocks read into the agent's networks, and a
// function's network block into its settings.
func TestNetworkBlocks(t *testing.T) {
	dir := t.TempDir()
	conflist := write(t, dir, "calico.conflist", `{"cniVersion":"1.0.0","name":"calico","plugins":[{"type":"calico"}]}`)
	p := write(t, dir, "agent.hcl", `
network "backend" {
  subnet = "10.88.0.0/24"
  dns    = ["10.89.0.2"]
  egress {
    allow = ["10.89.0.0/24", "10.90.0.5/32:5432", "10.90.0.6:53"]
  }
}
network "calico" {
  cni_config = "./calico.conflist"
  allow_host = true
}
egress_policy "db" {
  allow = ["10.90.0.0/16:5432"]
}
`)
	a, files, diags := LoadAgent(p)
	if diags.HasErrors() {
		var b strings.Builder
		_ = files.WriteDiagnostics(&b, diags)
		t.Fatal(b.String())
	}
	if len(a.Networks) != 2 || len(a.EgressPolicies) != 1 {
		t.Fatalf("networks %+v, policies %+v", a.Networks, a.EgressPolicies)
	}
	be, cal := a.Networks[0], a.Networks[1]
	if be.Subnet.String() != "10.88.0.0/24" || be.EgressAll || len(be.Egress) != 3 || be.Egress[1].String() != "10.90.0.5/32:5432" ||
		be.Egress[2].String() != "10.90.0.6/32:53" || len(be.DNS) != 1 || be.DNS[0].String() != "10.89.0.2" || be.AllowHost {
		t.Errorf("backend: %+v", be)
	}
	if cal.CNIConfig != conflist || !cal.EgressAll || !cal.AllowHost || cal.Subnet != nil {
		t.Errorf("calico: %+v", cal)
	}
	if a.EgressPolicies[0].Name != "db" || a.EgressPolicies[0].Allow[0].String() != "10.90.0.0/16:5432" {
		t.Errorf("policy: %+v", a.EgressPolicies[0])
	}

	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	fp := write(t, dir, "f.hcl", "function \"f\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n  network {\n    name = \"backend\"\n    egress_policies = [\"db\"]\n  }\n}\n")
	fns, _, diags := LoadFunctions(fp)
	if diags.HasErrors() || fns[0].Network == nil || fns[0].Network.Name != "backend" || fns[0].Network.EgressPolicies[0] != "db" {
		t.Fatalf("function network: %+v %v", fns, diags)
	}
	if sf := fns[0].Structs(); sf.Network == nil || sf.Network.Name != "backend" {
		t.Errorf("the function's settings lack its network: %+v", sf.Network)
	}
}

// TestNetworkDiagnostics: each mistake in a network, egress_policy or a function's network
// block names its line.
func TestNetworkDiagnostics(t *testing.T) {
	agent := []struct{ src, line, summary string }{
		{"network \"Back_End\" {\n  subnet = \"10.88.0.0/24\"\n}\n", ":1:", "Invalid network name"},
		{"network \"backend\" {\n}\n", ":1:", "Network without one source"},
		{"network \"backend\" {\n  subnet = \"10.88.0.0/24\"\n  cni_config = \"x.conflist\"\n}\n", ":1:", "Network without one source"},
		{"network \"backend\" {\n  subnet = \"10.88.0.1/24\"\n}\n", ":2:12", "Invalid subnet"},
		{"network \"backend\" {\n  subnet = \"fd00::/64\"\n}\n", ":2:12", "Invalid subnet"},
		{"network \"backend\" {\n  subnet = \"10.88.0.0/30\"\n}\n", ":2:12", "Invalid subnet"},
		{"network \"a\" {\n  subnet = \"10.88.0.0/16\"\n}\nnetwork \"b\" {\n  subnet = \"10.88.5.0/24\"\n}\n", ":5:12", "Overlapping subnets"},
		{"network \"a\" {\n  subnet = \"10.88.0.0/24\"\n}\nnetwork \"a\" {\n  subnet = \"10.89.0.0/24\"\n}\n", ":4:", "Duplicate network block"},
		{"network \"a\" {\n  subnet = \"10.88.0.0/24\"\n  dns = [\"resolver\"]\n}\n", ":3:9", "Invalid DNS server"},
		{"network \"a\" {\n  cni_config = \"missing.conflist\"\n}\n", ":2:16", "Invalid CNI configuration list"},
		{"network \"a\" {\n  subnet = \"10.88.0.0/24\"\n  egress {\n    allow = [\"10.89.0.0/24:99999\"]\n  }\n}\n", ":4:13", "Invalid egress rule"},
		{"network \"a\" {\n  subnet = \"10.88.0.0/24\"\n  egress {\n    allow = [\"10.89.0.1/24\"]\n  }\n}\n", ":4:13", "Invalid egress rule"},
		{"egress_policy \"db\" {\n  allow = [\"db.internal:5432\"]\n}\n", ":2:11", "Invalid egress rule"},
		{"egress_policy \"a b\" {\n  allow = []\n}\n", ":1:", "Invalid egress_policy name"},
	}
	for _, c := range agent {
		t.Run(c.summary, func(t *testing.T) {
			p := write(t, t.TempDir(), "agent.hcl", c.src)
			_, files, diags := LoadAgent(p)
			var b strings.Builder
			_ = files.WriteDiagnostics(&b, diags)
			if !diags.HasErrors() || !strings.Contains(b.String(), c.summary) || !strings.Contains(b.String(), "agent.hcl"+c.line) {
				t.Fatalf("diagnostics lack %q at line %s:\n%s", c.summary, c.line, b.String())
			}
		})
	}
	fn := []struct{ body, line, summary string }{
		{"  network {\n    name = \"Not_Valid\"\n  }\n", ":4:", "Invalid network name"},
		{"  network {\n    name = \"backend\"\n    egress_policies = [\"a\", \"a\"]\n  }\n", ":4:", "Duplicate egress policy"},
		{"  network {\n    name = \"a\"\n  }\n  network {\n    name = \"b\"\n  }\n", ":7:", "Duplicate network block"},
		{"  network {\n  }\n", ":4:", "Missing required argument"},
	}
	for _, c := range fn {
		t.Run("function "+c.summary, func(t *testing.T) {
			dir := t.TempDir()
			_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
			p := write(t, dir, "f.hcl", "function \"f\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n"+c.body+"}\n")
			_, files, diags := LoadFunctions(p)
			var b strings.Builder
			_ = files.WriteDiagnostics(&b, diags)
			if !diags.HasErrors() || !strings.Contains(b.String(), c.summary) || !strings.Contains(b.String(), "f.hcl"+c.line) {
				t.Fatalf("diagnostics lack %q at line %s:\n%s", c.summary, c.line, b.String())
			}
		})
	}
}
