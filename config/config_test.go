package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func write(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSandboxSeccompSetting(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "profile.json", `{"defaultAction": "SCMP_ACT_ERRNO"}`)
	for setting, want := range map[string]string{"": "default", `seccomp = "unconfined"`: "unconfined",
		`seccomp = "profile.json"`: filepath.Join(dir, "profile.json")} {
		a, _, diags := LoadAgent(write(t, dir, "agent.hcl", "sandbox {\n  "+setting+"\n}\n"))
		if diags.HasErrors() || a.Sandbox.Seccomp != want {
			t.Errorf("%q: seccomp %q, %v; want %q", setting, a.Sandbox.Seccomp, diags, want)
		}
	}
	write(t, dir, "bad.json", "not json")
	_, _, diags := LoadAgent(write(t, dir, "agent.hcl", "sandbox {\n  seccomp = \"bad.json\"\n}\n"))
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "agent.hcl:2,13") {
		t.Errorf("a profile that is not JSON: %v", diags)
	}
}

func TestLoadAgentDefaultsAndValues(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "agent.hcl", `
node_name = "gw1"
data_dir  = "data"
debug { pprof = true }
gomaxprocs = 3
http { address = "127.0.0.1:9600" }
cluster {
  address   = "127.0.0.1:9601"
  bootstrap = true
}
sandbox {
  driver           = "process"
  max_environments = 20
  idle_timeout     = "1m"
  freeze_delay     = 0.5
  standby          = 3
  cpu_policy       = "normal"
}
`)
	a, _, diags := LoadAgent(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if a.NodeName != "gw1" || a.DataDir != filepath.Join(dir, "data") || a.HTTP.Address != "127.0.0.1:9600" ||
		a.Cluster.Address != "127.0.0.1:9601" || a.Sandbox.Driver != "process" || a.Sandbox.MaxEnvironments != 20 ||
		a.Sandbox.IdleTimeout != time.Minute || a.Sandbox.FreezeDelay != 500*time.Millisecond || !a.Debug.Pprof || a.Sandbox.Standby != 3 || a.GoMaxProcs != 3 ||
		a.Sandbox.CPUPolicy != "normal" {
		t.Fatalf("decoded %+v", a)
	}
	if a.Sandbox.InitTimeout != 10*time.Second || a.Region != "us-east-1" || a.Sandbox.PidsLimit != 1024 || DefaultAgent().Debug.Pprof || DevAgent(dir).Debug.Pprof || DefaultAgent().GoMaxProcs != 0 ||
		DefaultAgent().Sandbox.CPUPolicy != "batch" {
		t.Fatalf("defaults not applied: %+v", a)
	}
}

func TestAgentDiagnosticsNameTheLine(t *testing.T) {
	cases := []struct{ src, line, summary string }{
		{"sandbox {\n  driver = \"docker\"\n}\n", ":2:12", "Invalid sandbox driver"},
		{"sandbox {\n  idle_timeout = \"soon\"\n}\n", ":2:18", "Invalid duration"},
		{"log_level = \"loud\"\n", ":1:13", "Invalid log level"},
		{"\ngomaxprocs = -2\n", ":2:14", "Invalid gomaxprocs"},
		{"sandbox {\n  standby = -1\n}\n", ":2:", "Invalid standby"},
		{"sandbox {\n  cpu_policy = \"fifo\"\n}\n", ":2:16", "Invalid cpu_policy"},
		{"sandbox {\n  seccomp = \"none.json\"\n}\n", ":2:13", "Invalid seccomp"},
		{"\n\nbogus = 1\n", ":3:1", "Unsupported argument"},
		{"plugin \"queue\" {\n  path = \"x\"\n}\n", ":2:10", "Missing plugin checksum"},
		{"plugin \"queue\" {\n  path = \"x\"\n  checksum = \"md5:00\"\n}\n", ":2:", "Invalid plugin checksum"},
		{"plugin \"queue\" {\n  path = \"x\"\n  config = { a = 1 }\n}\n", ":3:3", "Unsupported argument"},
		{"plugin \"q\" {\n  path = \"x\"\n  checksum = \"sha256:" + strings.Repeat("ab", 32) + "\"\n}\nplugin \"q\" {\n  path = \"y\"\n  checksum = \"sha256:" + strings.Repeat("ab", 32) + "\"\n}\n", ":6:", "Duplicate plugin"},
		{"nats {\n  url = \"http://x\"\n}\n", ":2:", "Invalid NATS URL"},
		{"nats {\n  url = \"nats://10.0.0.9:4222\"\n  cluster_listen = \"0.0.0.0:6222\"\n  routes = [\"10.0.0.2:6222\"]\n}\n", ":4:12", "Conflicting NATS settings"},
		{"nats {\n  url = \"nats://10.0.0.9:4222\"\n  cluster_listen = \"0.0.0.0:6222\"\n}\n", ":3:20", "Conflicting NATS settings"},
		{"nats {\n  cluster_listen = \"0.0.0.0:6222\"\n  routes = [\"10.0.0.2\"]\n}\n", ":3:12", "Invalid route"},
		{"nats {\n  cluster_listen = \"0.0.0.0:6222\"\n  routes = [\":6222\"]\n}\n", ":3:12", "Invalid route"},
		{"nats {\n  cluster_listen = \"0.0.0.0:6222\"\n  routes = [\"10.0.0.2:70000\"]\n}\n", ":3:12", "Invalid route"},
		{"nats {\n  cluster_listen = \"0.0.0.0:6222\"\n  routes = [\"10.0.0.2:6222\", \"10.0.0.2:6222\"]\n}\n", ":3:12", "Duplicate route"},
		{"nats {\n  cluster_listen = \"0.0.0.0:nats\"\n  routes = [\"10.0.0.2:6222\"]\n}\n", ":2:20", "Invalid cluster_listen"},
		{"nats {\n  cluster_listen = \"0.0.0.0:6222\"\n}\n", ":2:20", "Missing NATS routes"},
		{"nats {\n  cluster_listen = \"0.0.0.0:6222\"\n  routes = []\n}\n", ":2:20", "Missing NATS routes"},
		{"nats {\n  routes = [\"10.0.0.2:6222\"]\n}\n", ":2:12", "Missing cluster_listen"},
		{"node_name = \"node one\"\nnats {\n  cluster_listen = \"0.0.0.0:6222\"\n  routes = [\"10.0.0.2:6222\"]\n}\n", ":1:13", "Invalid node name"},
		{"async {\n  replicas = 3\n}\n", ":2:14", "Invalid replicas"},
		{"access_key \"a\" {\n  id = \"AKIAIOSFODNN7EXAMPLE\"\n  secret = \"s\"\n  policy = \"admin\"\n}\nnats {\n  cluster_listen = \"0.0.0.0:6222\"\n  routes = [\"10.0.0.2:6222\"]\n}\n", ":8:12", "NATS routes without mutual TLS"},
		{"code_gc {\n  grace = \"10ms\"\n}\n", ":2:11", "Invalid duration"},
		{"cluster {\n  bootstrap_expect = 3\n}\n", ":2:", "Missing join addresses"},
		{"cluster {\n  bootstrap_expect = 0\n}\n", ":2:", "Invalid bootstrap_expect"},
		{"cluster {\n  join = [\"a:1\"]\n  bootstrap_expect = 2\n  bootstrap = true\n}\n", ":4:", "Conflicting bootstrap settings"},
		{"cluster {\n  join = [\"nohost\"]\n}\n", ":2:", "Invalid join address"},
		{"cluster {\n  advertise = \"0.0.0.0:9501\"\n}\n", ":2:", "Invalid cluster advertise"},
		{"cluster {\n  dead_server_cleanup = \"500ms\"\n}\n", ":2:", "Invalid dead_server_cleanup"},
		{"cluster {\n  tls {\n    ca = \"ca.pem\"\n    cert = \"c.pem\"\n    key = \"k.pem\"\n  }\n}\n", ":4:", "Invalid cluster certificate"},
		{"http {\n  tls {\n    cert = \"c.pem\"\n    key = \"k.pem\"\n  }\n}\n", ":3:", "Invalid HTTP certificate"},
		{"http {\n  tls {\n    cert = \"c.pem\"\n  }\n}\n", ":2:", "Missing required argument"},
		{"debug {\n  pprof = \"yes\"\n}\n", ":2:", "Unsuitable value type"},
		{"debug {\n  trace = true\n}\n", ":2:", "Unsupported argument"},
	}
	for _, c := range cases {
		t.Run(c.summary, func(t *testing.T) {
			p := write(t, t.TempDir(), "agent.hcl", c.src)
			_, files, diags := LoadAgent(p)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			var b strings.Builder
			_ = files.WriteDiagnostics(&b, diags)
			if !strings.Contains(b.String(), c.summary) || !strings.Contains(b.String(), "agent.hcl"+c.line) {
				t.Fatalf("diagnostics lack %q at line %s:\n%s", c.summary, c.line, b.String())
			}
		})
	}
}

func TestClusterBlock(t *testing.T) {
	for _, c := range []struct {
		src       string
		bootstrap bool
		join      int
		expect    int
	}{
		{"", true, 0, 0},
		{"cluster {\n  address = \"10.0.0.1:9501\"\n}\n", true, 0, 0},
		{"cluster {\n  join = [\"10.0.0.2:9501\", \"10.0.0.3:9501\"]\n}\n", false, 2, 0},
		{"cluster {\n  join = [\"10.0.0.2:9501\"]\n  bootstrap_expect = 3\n}\n", false, 1, 3},
		{"cluster {\n  bootstrap = false\n}\n", false, 0, 0},
	} {
		a, _, diags := LoadAgent(write(t, t.TempDir(), "agent.hcl", c.src))
		if diags.HasErrors() {
			t.Fatalf("%q: %v", c.src, diags)
		}
		if cl := a.Cluster; cl.Bootstrap != c.bootstrap || len(cl.Join) != c.join || cl.BootstrapExpect != c.expect {
			t.Errorf("%q decoded as %+v", c.src, cl)
		}
	}
}

func TestLoadFunctions(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "a.hcl", `
function "hello" {
  runtime     = "provided.al2023"
  code        = "./build"
  memory_mb   = 256
  timeout     = "30s"
  environment = { GREETING = "hi" }
}
`)
	write(t, dir, "b.hcl", `
function "other" {
  runtime      = "provided"
  code         = "build"
  freeze_delay = "10ms"
}
`)
	fns, _, diags := LoadFunctions(dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(fns) != 2 || fns[0].Name != "hello" || fns[0].MemoryMB != 256 || fns[0].Timeout != 30*time.Second ||
		fns[0].Code != filepath.Join(dir, "build") || fns[0].Environment["GREETING"] != "hi" || fns[0].FreezeDelay != nil {
		t.Fatalf("decoded %+v", fns[0])
	}
	if fns[1].Timeout != 3*time.Second || fns[1].MemoryMB != 128 || fns[1].EphemeralStorageMB != 512 || *fns[1].FreezeDelay != 10*time.Millisecond {
		t.Fatalf("defaults: %+v", fns[1])
	}
}

func TestFunctionURLBlock(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	write(t, dir, "f.hcl", `
function "open" {
  runtime = "provided"
  code    = "build"
  url {}
}
function "signed" {
  runtime = "provided"
  code    = "build"
  url {
    auth_type   = "SIGNED"
    invoke_mode = "RESPONSE_STREAM"
    cors {
      allow_origins     = ["https://example.com"]
      allow_methods     = ["get", "POST"]
      allow_headers     = ["x-custom"]
      expose_headers    = ["x-streamed"]
      allow_credentials = true
      max_age           = 300
    }
  }
}
function "none" {
  runtime = "provided"
  code    = "build"
}
`)
	fns, _, diags := LoadFunctions(dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if u := fns[0].URL; u == nil || u.AuthType != "NONE" || u.InvokeMode != "BUFFERED" || u.Cors != nil || u.Qualifier != "" {
		t.Fatalf("url {} decoded as %+v", u)
	}
	u := fns[1].URL
	if u == nil || u.AuthType != "AWS_IAM" || u.InvokeMode != "RESPONSE_STREAM" || u.Cors == nil {
		t.Fatalf("signed url decoded as %+v", u)
	}
	if c := u.Cors; c.AllowOrigins[0] != "https://example.com" || c.AllowMethods[0] != "GET" || c.AllowHeaders[0] != "x-custom" ||
		c.ExposeHeaders[0] != "x-streamed" || !c.AllowCredentials || c.MaxAge != 300 {
		t.Fatalf("cors decoded as %+v", c)
	}
	if fns[2].URL != nil {
		t.Fatalf("a function without a url block has a URL: %+v", fns[2].URL)
	}
}

func TestVersionBlocks(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	write(t, dir, "f.hcl", `
function "api" {
  runtime              = "provided"
  code                 = "build"
  publish              = true
  reserved_concurrency = 5
  alias "live" {
    version = 3
    routing = { "4" = 0.1 }
  }
  provisioned_concurrency {
    qualifier = "live"
    count     = 2
  }
  provisioned_concurrency {
    qualifier = 2
    count     = 1
  }
}
`)
	fns, _, diags := LoadFunctions(dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	fn := fns[0]
	if !fn.Publish || fn.ReservedConcurrency == nil || *fn.ReservedConcurrency != 5 || len(fn.Aliases) != 1 ||
		fn.Aliases[0].Version != "3" || fn.Aliases[0].Routing["4"] != 0.1 {
		t.Fatalf("decoded %+v", fn)
	}
	if len(fn.Provisioned) != 2 || fn.Provisioned[0].Qualifier != "live" || fn.Provisioned[0].Count != 2 ||
		fn.Provisioned[1].Qualifier != "2" || fn.Provisioned[1].Count != 1 {
		t.Fatalf("provisioned_concurrency decoded as %+v %+v", fn.Provisioned[0], fn.Provisioned[1])
	}
}

func TestFunctionDiagnostics(t *testing.T) {
	cases := []struct{ body, summary string }{
		{`runtime = "NodeJS 20"` + "\n  code = \"./build\"", "Unsupported runtime"},
		{`runtime = "provided"` + "\n  code = \"./missing\"", "Code not found"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  memory_mb = 64", "Invalid memory_mb"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  timeout = \"901s\"", "Invalid timeout"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  environment = { AWS_REGION = \"x\" }", "Reserved environment variable"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n  }", "Missing required argument"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n    plugin = \"queue\"\n    source = \"o\"\n    batch_size = 0\n  }", "Invalid batch_size"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n    plugin = \"queue\"\n    source = \"o\"\n    batch_window = \"6m\"\n  }", "Invalid batch_window"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n    plugin = \"stream\"\n    source = \"o\"\n    starting_position = \"OLDEST\"\n  }", "Invalid starting_position"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n    plugin = \"stream\"\n    source = \"o\"\n    starting_position = \"AT_TIMESTAMP\"\n  }", "Missing starting_position_timestamp"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n    plugin = \"queue\"\n    source = \"o\"\n    maximum_retry_attempts = -2\n  }", "Invalid maximum_retry_attempts"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n    plugin = \"queue\"\n    source = \"o\"\n    qualifier = \"live\"\n  }", "Unknown qualifier"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n    plugin = \"queue\"\n    source = \"o\"\n    on_failure {\n      destination = \"sqs x\"\n    }\n  }", "Invalid on_failure destination"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  trigger \"q\" {\n    plugin = \"queue\"\n    source = \"o\"\n  }\n  trigger \"q\" {\n    plugin = \"queue\"\n    source = \"p\"\n  }", "Duplicate trigger"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  provisioned_concurrency {\n    count = 1\n  }", "Missing qualifier"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  provisioned_concurrency {\n    qualifier = \"$LATEST\"\n    count = 1\n  }", "Invalid qualifier"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  provisioned_concurrency {\n    qualifier = \"live\"\n    count = 1\n  }", "Unknown alias"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  provisioned_concurrency {\n    qualifier = 1\n    count = 0\n  }", "Invalid count"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  provisioned_concurrency {\n    qualifier = 1\n    count = 1\n  }\n  provisioned_concurrency {\n    qualifier = \"1\"\n    count = 2\n  }", "Duplicate provisioned_concurrency"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  reserved_concurrency = 2\n  provisioned_concurrency {\n    qualifier = 1\n    count = 3\n  }", "Provisioned concurrency above the reservation"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  alias \"live\" {\n  }", "Missing alias version"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  reserved_concurrency = -1", "Invalid reserved_concurrency"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  alias \"12\" {\n    version = 1\n  }", "Invalid alias name"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  alias \"live\" {\n    version = \"new\"\n  }", "Invalid alias version"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  alias \"live\" {\n    version = 1\n    routing = { \"2\" = 1.5 }\n  }", "Invalid routing weight"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  alias \"live\" {\n    version = \"$LATEST\"\n    routing = { \"2\" = 0.5 }\n  }", "Invalid routing"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  alias \"a\" {\n    version = 1\n  }\n  alias \"a\" {\n    version = 2\n  }", "Duplicate alias"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  url {\n    auth_type = \"IAM\"\n  }", "Invalid auth_type"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  url {\n    invoke_mode = \"STREAM\"\n  }", "Invalid invoke_mode"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  url {\n    cors {\n      max_age = 90000\n    }\n  }", "Invalid max_age"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  url {\n    cors {\n      allow_methods = [\"FETCH\"]\n    }\n  }", "Invalid allow_methods"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  url {\n    cors {\n      allow_origins = [\"example.com\"]\n    }\n  }", "Invalid allow_origins"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  url {\n    qualifier = \"a--b\"\n  }", "Invalid qualifier"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  url {\n    authtype = \"NONE\"\n  }", "Unsupported argument"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  url {\n  }\n  url {\n  }", "Duplicate url block"},
		{`code = "./build"`, "Missing runtime"},
		{`runtime = "provided"`, "Missing code"},
		{`package_type = "Image"`, "Invalid image_uri"},
		{`package_type = "Image"` + "\n  image_uri = \"r.example/fn:1\"\n  code = \"./build\"", "Code of an image function"},
		{`package_type = "Image"` + "\n  image_uri = \"r.example/fn:1\"\n  runtime = \"provided\"", "Invalid package_type"},
		{`package_type = "Jar"` + "\n  runtime = \"provided\"\n  code = \"./build\"", "Invalid package_type"},
		{`runtime = "provided"` + "\n  code = \"./build\"\n  image_uri = \"r.example/fn:1\"", "Invalid package_type"},
		{`package_type = "Image"` + "\n  image_uri = \"r.example/fn:1\"\n  image_config {\n    working_directory = \"app\"\n  }", "Invalid image_config"},
		{`package_type = "Image"` + "\n  image_uri = \"r.example/fn:1\"\n  image_config {\n  }\n  image_config {\n  }", "Duplicate image_config block"},
	}
	for _, c := range cases {
		t.Run(c.summary, func(t *testing.T) {
			dir := t.TempDir()
			_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
			p := write(t, dir, "f.hcl", "function \"f\" {\n  "+c.body+"\n}\n")
			_, files, diags := LoadFunctions(p)
			var b strings.Builder
			_ = files.WriteDiagnostics(&b, diags)
			if !diags.HasErrors() || !strings.Contains(b.String(), c.summary) || !strings.Contains(b.String(), "f.hcl:") || !strings.Contains(b.String(), ": error: "+c.summary) {
				t.Fatalf("want %q with a file:line, got:\n%s", c.summary, b.String())
			}
		})
	}
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	fn := "function \"dup\" {\n  runtime = \"provided\"\n  code = \"./build\"\n}\n"
	write(t, dir, "a.hcl", fn)
	write(t, dir, "b.hcl", fn)
	if _, _, diags := LoadFunctions(dir); !diags.HasErrors() || !strings.Contains(diags.Error(), "Duplicate function") {
		t.Fatalf("duplicate across files: %v", diags)
	}
}

func TestTriggerBlocks(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	write(t, dir, "f.hcl", `
function "worker" {
  runtime = "provided"
  code    = "build"
  alias "live" {
    version = 1
  }
  trigger "orders" {
    plugin                         = "queue"
    source                         = "orders"
    qualifier                      = "live"
    batch_size                     = 25
    batch_window                   = "2s"
    maximum_retry_attempts         = 3
    maximum_record_age             = "1h"
    report_batch_item_failures     = true
    options                        = { visibility_timeout = "30s" }
    on_failure {
      destination = "queue:orders-dlq"
    }
  }
  trigger "clicks" {
    plugin                      = "stream"
    source                      = "clicks"
    starting_position           = "AT_TIMESTAMP"
    starting_position_timestamp = "2026-01-02T03:04:05Z"
    bisect_batch_on_function_error = true
    enabled                     = false
  }
}
`)
	fns, _, diags := LoadFunctions(dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	tr := fns[0].Triggers
	if len(tr) != 2 {
		t.Fatalf("triggers: %+v", tr)
	}
	o, c := tr[0].Trigger, tr[1].Trigger
	if o.Function != "worker" || o.Name != "orders" || o.Plugin != "queue" || o.Source != "orders" || o.Qualifier != "live" ||
		o.BatchSize != 25 || o.BatchWindow != 2*time.Second || o.MaximumRetryAttempts != 3 || o.MaximumRecordAge != time.Hour ||
		!o.ReportBatchItemFailures || o.Options["visibility_timeout"] != "30s" || o.OnFailure != "queue:orders-dlq" || !o.Enabled {
		t.Errorf("orders decoded as %+v", o)
	}
	if c.StartingPosition != "AT_TIMESTAMP" || !c.StartingPositionTimestamp.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) ||
		!c.BisectBatchOnFunctionError || c.Enabled || c.MaximumRetryAttempts != -1 || c.BatchSize != 0 {
		t.Errorf("clicks decoded as %+v", c)
	}
}

func TestPluginBlocks(t *testing.T) {
	dir := t.TempDir()
	sum := strings.Repeat("AB", 32)
	p := write(t, dir, "agent.hcl", `
plugin "queue" {
  path     = "bin/gateway-trigger-queue"
  checksum = "sha256:`+sum+`"
  config {
    url = "nats://10.0.0.1:4222"
  }
}
plugin "audit" {
  path     = "/opt/audit"
  checksum = "sha256:`+sum+`"
}
nats {
  listen = "127.0.0.1:4333"
}
`)
	a, _, diags := LoadAgent(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(a.Plugins) != 2 || a.Plugins[0].Path != filepath.Join(dir, "bin/gateway-trigger-queue") || a.Plugins[0].Checksum != strings.ToLower(sum) ||
		a.Plugins[0].Config == nil || a.Plugins[1].Path != "/opt/audit" || a.Plugins[1].Config != nil {
		t.Errorf("plugins decoded as %+v", a.Plugins)
	}
	if a.NATS.Listen != "127.0.0.1:4333" || a.NATS.URL != "" || DefaultAgent().NATS.Listen != "127.0.0.1:4222" {
		t.Errorf("nats decoded as %+v", a.NATS)
	}
}

// TestNATSClusterSettings: cluster_listen and routes as given (every node's list may hold its
// own address), replicas left to the agent unless set, and set to more than 1 beside routes.
func TestNATSClusterSettings(t *testing.T) {
	a, _, diags := LoadAgent(write(t, t.TempDir(), "agent.hcl", `
node_name = "n1"
nats {
  cluster_listen = "0.0.0.0:6222"
  routes         = ["10.0.0.1:6222", "10.0.0.2:6222", "nats-2.example:6222"]
}
`))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if a.NATS.ClusterListen != "0.0.0.0:6222" || strings.Join(a.NATS.Routes, ",") != "10.0.0.1:6222,10.0.0.2:6222,nats-2.example:6222" ||
		a.NATS.URL != "" || a.Async.Replicas != 0 {
		t.Errorf("nats decoded as %+v, async as %+v", a.NATS, a.Async)
	}
	if d := DefaultAgent(); d.NATS.ClusterListen != "" || d.NATS.Routes != nil || d.Async.Replicas != 0 {
		t.Errorf("defaults: %+v %+v", d.NATS, d.Async)
	}
	a, _, diags = LoadAgent(write(t, t.TempDir(), "agent.hcl", `
nats {
  cluster_listen = ":6222"
  routes         = ["[fd00::2]:6222"]
}
async {
  replicas = 2
}
`))
	if diags.HasErrors() || a.Async.Replicas != 2 || a.NATS.Routes[0] != "[fd00::2]:6222" {
		t.Fatalf("%+v %+v %v", a.NATS, a.Async, diags)
	}
}

// TestCodeGCBlock: code_gc's durations, and its defaults without it.
func TestCodeGCBlock(t *testing.T) {
	a, _, diags := LoadAgent(write(t, t.TempDir(), "agent.hcl", "code_gc {\n  grace = \"10m\"\n  interval = 30\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if a.CodeGC.Grace != 10*time.Minute || a.CodeGC.Interval != 30*time.Second {
		t.Errorf("code_gc decoded as %+v", a.CodeGC)
	}
	if d := DefaultAgent().CodeGC; d.Grace != time.Hour || d.Interval != time.Minute {
		t.Errorf("code_gc defaults %+v", d)
	}
}

// TestExampleAgentFile: the example agent file decodes, without plugin blocks (their checksums
// would be stale after the next build: make build adds them in bin/agent.hcl), and the examples
// folder, which `gateway apply examples` reads, holds only function files.
func TestExampleAgentFile(t *testing.T) {
	a, _, diags := LoadAgent("../examples/agent/agent.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if a.NodeName != "gw1" || a.HTTP.Address != "127.0.0.1:9500" || len(a.Plugins) != 0 {
		t.Errorf("agent %+v", a)
	}
	// The example functions' build folders exist only after make build; a fresh clone has
	// none, so the files are read from a copy beside stand-in build folders.
	dir := t.TempDir()
	hcls, _ := filepath.Glob("../examples/*.hcl")
	for _, f := range hcls {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		write(t, dir, filepath.Base(f), string(b))
	}
	srcs, _ := filepath.Glob("../examples/functions/*/main.go")
	for _, src := range srcs {
		if err := os.MkdirAll(filepath.Join(dir, "functions", filepath.Base(filepath.Dir(src)), "build"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fns, files, diags := LoadFunctions(dir)
	if diags.HasErrors() {
		var b strings.Builder
		_ = files.WriteDiagnostics(&b, diags)
		t.Fatal(b.String())
	}
	if len(fns) < 3 {
		t.Errorf("%d example functions", len(fns))
	}
}

// TestAgentFileAsFunctionFile: an agent file among function files is an error at its first
// agent setting that names it and the settings that make it one; the other files still load.
func TestAgentFileAsFunctionFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "fn.hcl", "function \"f\" {\n  runtime = \"provided.al2023\"\n  code = \".\"\n}\n")
	agent := write(t, dir, "agent.hcl", "# an agent\nnode_name = \"gw1\"\n\nhttp {\n  address = \"127.0.0.1:9500\"\n}\nplugin \"q\" {\n  path = \"x\"\n}\n")
	fns, files, diags := LoadFunctions(dir)
	if !diags.HasErrors() || len(diags) != 1 {
		t.Fatalf("diagnostics %v", diags)
	}
	d := diags[0]
	if d.Subject == nil || d.Subject.Filename != agent || d.Subject.Start.Line != 2 || d.Subject.Start.Column != 1 {
		t.Errorf("subject %v, want %s line 2 (node_name)", d.Subject, agent)
	}
	if want := agent + " is an agent file (it has node_name, http, plugin): give apply, plan and validate only function files"; d.Summary != "Agent file given as a function file" || !strings.HasPrefix(d.Detail, want) {
		t.Errorf("diagnostic %s: %s", d.Summary, d.Detail)
	}
	var b strings.Builder
	if err := files.WriteDiagnostics(&b, diags); err != nil || !strings.Contains(b.String(), agent+":2:1: error") {
		t.Errorf("written as %q (%v)", b.String(), err)
	}
	if len(fns) != 1 || fns[0].Name != "f" {
		t.Errorf("functions %v", fns)
	}
}

func TestSandboxNodeLimits(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Size
		err  bool
	}{
		{"20GiB", Size{Bytes: 20 << 30}, false},
		{"512MiB", Size{Bytes: 512 << 20}, false},
		{"1.5GB", Size{Bytes: 1500000000}, false},
		{"2147483648", Size{Bytes: 2147483648}, false},
		{"90%", Size{Percent: 90}, false},
		{"0%", Size{}, true},
		{"101%", Size{}, true},
		{"lots", Size{}, true},
		{"12 parsecs", Size{}, true},
	} {
		got, err := parseSize(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("parseSize(%q) = %+v, %v", c.in, got, err)
		}
	}
	if got := (Size{Percent: 50}).Of(8 << 30); got != 4<<30 {
		t.Errorf("50%% of 8 GiB = %d", got)
	}
	if got := DefaultTotalMemory(24 << 30); got != 24<<30-(24<<30)/10 {
		t.Errorf("default on 24 GiB: %d", got)
	}
	if got := DefaultTotalMemory(2 << 30); got != 2<<30-512<<20 {
		t.Errorf("default on 2 GiB keeps 512 MiB: %d", got)
	}

	dir := t.TempDir()
	p := write(t, dir, "agent.hcl", `
sandbox {
  total_memory        = "64MiB"
  total_pids          = 4
  max_parallel_starts = 0
}
`)
	_, _, diags := LoadAgent(p)
	want := map[string]int{"Invalid total_memory": 3, "Invalid total_pids": 4, "Invalid max_parallel_starts": 5}
	for _, d := range diags {
		if line, ok := want[d.Summary]; ok && d.Subject != nil && d.Subject.Start.Line == line {
			delete(want, d.Summary)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing diagnostics %v in %v", want, diags)
	}
	p = write(t, dir, "ok.hcl", `
sandbox {
  total_memory        = "75%"
  total_pids          = 20000
  max_parallel_starts = 3
}
`)
	a, _, diags := LoadAgent(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if a.Sandbox.TotalMemory.Percent != 75 || a.Sandbox.TotalPids != 20000 || a.Sandbox.MaxParallelStarts != 3 {
		t.Errorf("decoded %+v", a.Sandbox)
	}
}

// TestEnableDebugIsDeprecated: the old attribute still turns pprof on, with a warning naming
// its line and the block that replaces it; the block alone warns of nothing.
func TestEnableDebugIsDeprecated(t *testing.T) {
	dir := t.TempDir()
	a, files, diags := LoadAgent(write(t, dir, "agent.hcl", "node_name = \"gw\"\nenable_debug = true\n"))
	if diags.HasErrors() || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || !a.Debug.Pprof {
		t.Fatalf("enable_debug = true: pprof %v, %v", a != nil && a.Debug.Pprof, diags)
	}
	var b strings.Builder
	_ = files.WriteDiagnostics(&b, diags)
	if !strings.Contains(b.String(), "agent.hcl:2:") || !strings.Contains(b.String(), "warning: Deprecated attribute") ||
		!strings.Contains(b.String(), "debug { pprof = true }") {
		t.Errorf("the warning does not name the line and the replacement:\n%s", b.String())
	}
	a, _, diags = LoadAgent(write(t, dir, "agent.hcl", "debug {\n  pprof = true\n}\n"))
	if len(diags) != 0 || !a.Debug.Pprof {
		t.Errorf("debug { pprof = true }: pprof %v, %v", a.Debug.Pprof, diags)
	}
	a, _, diags = LoadAgent(write(t, dir, "agent.hcl", "debug {}\n"))
	if len(diags) != 0 || a.Debug.Pprof {
		t.Errorf("an empty debug block turns pprof on (%v) or complains: %v", a.Debug.Pprof, diags)
	}
}

// TestHTTPTLSBlock: paths are taken from the agent file's folder and the pair is loaded.
func TestHTTPTLSBlock(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "certs/gw.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(t, dir, "certs/gw-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	a, _, diags := LoadAgent(write(t, dir, "agent.hcl", "http {\n  tls {\n    cert = \"certs/gw.pem\"\n    key = \"certs/gw-key.pem\"\n  }\n}\n"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if a.HTTP.TLS == nil || a.HTTP.TLS.Cert != filepath.Join(dir, "certs/gw.pem") || a.HTTP.TLS.Key != filepath.Join(dir, "certs/gw-key.pem") {
		t.Fatalf("decoded %+v", a.HTTP.TLS)
	}
	// A key that is not the certificate's is refused at load.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherDER, _ := x509.MarshalPKCS8PrivateKey(other)
	write(t, dir, "certs/other-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER})))
	_, _, diags = LoadAgent(write(t, dir, "agent.hcl", "http {\n  tls {\n    cert = \"certs/gw.pem\"\n    key = \"certs/other-key.pem\"\n  }\n}\n"))
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "agent.hcl:3,") {
		t.Errorf("a key that does not match: %v", diags)
	}
}

func TestImageFunctionBlock(t *testing.T) {
	p := write(t, t.TempDir(), "f.hcl", `
function "img" {
  package_type = "Image"
  image_uri    = "registry.example:5000/team/fn:1.4"
  image_config {
    entry_point       = ["/lambda-entrypoint.sh"]
    command           = ["app.handler"]
    working_directory = "/var/task"
  }
  memory_mb = 256
}
`)
	fns, _, diags := LoadFunctions(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	fn := fns[0]
	if !fn.IsImage() || fn.ImageURI != "registry.example:5000/team/fn:1.4" || fn.Code != "" || fn.Runtime != "" || fn.MemoryMB != 256 ||
		fn.ImageConfig == nil || fn.ImageConfig.EntryPoint[0] != "/lambda-entrypoint.sh" || fn.ImageConfig.Command[0] != "app.handler" ||
		fn.ImageConfig.WorkingDirectory != "/var/task" {
		t.Fatalf("decoded %+v %+v", fn, fn.ImageConfig)
	}
}
