// Package config decodes the agent's and the functions' HCL files. Every mistake comes back as
// an hcl.Diagnostic with the file, line and column of the offending expression.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/lambdagw/gateway/internal/structs"
)

// Files keeps the parsed sources so diagnostics render with the offending lines.
type Files struct{ parser *hclparse.Parser }

func newFiles() *Files { return &Files{parser: hclparse.NewParser()} }

// WriteDiagnostics renders each diagnostic once, as Terraform does (hcl's text writer: the
// block, the offending source lines, the detail), headed by "file:line:column: severity:
// summary" (the form editors and CI annotate) in place of Terraform's "Error: summary". A
// diagnostic marked sensitiveSource keeps its file:line but not its source lines.
func (f *Files) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	var files map[string]*hcl.File
	if f != nil {
		files = f.parser.Files()
	}
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		head := fmt.Sprintf("%s: %s", sev, d.Summary)
		if d.Subject != nil {
			head = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, head)
		}
		_, sensitive := d.Extra.(sensitiveSource)
		if sensitive {
			// The source line would print a secret to a terminal or CI log.
			c := *d
			c.Subject, c.Context = nil, nil
			d = &c
		}
		var b strings.Builder
		if err := hcl.NewDiagnosticTextWriter(&b, files, 100, false).WriteDiagnostic(d); err != nil {
			return err
		}
		// hcl's first line is "Error: summary"; the rest starts with the blank line after it.
		_, rest, _ := strings.Cut(b.String(), "\n")
		if sensitive {
			rest = "\n  (the source line is not shown: it holds a secret)\n" + rest
		}
		if _, err := io.WriteString(w, head+"\n"+rest); err != nil {
			return err
		}
	}
	return nil
}

// evalContext is where variables and functions (file, env, ...) will be offered to expressions.
func evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Variables: map[string]cty.Value{}}
}

// durationAttr decodes a duration written as "30s"/"1m" or as a number of seconds.
func durationAttr(expr hcl.Expression, ctx *hcl.EvalContext, min, max time.Duration) (time.Duration, hcl.Diagnostics) {
	d, diags := durationValue(expr, ctx)
	if diags.HasErrors() {
		return 0, diags
	}
	if d < min || (max > 0 && d > max) {
		rng := expr.Range()
		detail := fmt.Sprintf("%s is out of range: it must be at least %s.", d, min)
		if max > 0 {
			detail = fmt.Sprintf("%s is out of range: it must be between %s and %s.", d, min, max)
		}
		return 0, hcl.Diagnostics{rangeDiag("Invalid duration", detail, rng)}
	}
	return d, nil
}

// durationValue decodes a duration without checking its range, for settings whose range is a
// rule of internal/structs.
func durationValue(expr hcl.Expression, ctx *hcl.EvalContext) (time.Duration, hcl.Diagnostics) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return 0, diags
	}
	rng := expr.Range()
	bad := func(msg string) (time.Duration, hcl.Diagnostics) {
		return 0, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid duration", Detail: msg, Subject: &rng}}
	}
	switch {
	case v.IsNull() || !v.IsKnown():
		return bad("A duration is required, such as \"30s\" or \"5m\".")
	case v.Type() == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return time.Duration(f * float64(time.Second)), nil
	case v.Type() == cty.String:
		d, err := time.ParseDuration(v.AsString())
		if err != nil {
			return bad(fmt.Sprintf("%q is not a duration; write it like \"30s\", \"1m30s\" or \"500ms\".", v.AsString()))
		}
		return d, nil
	default:
		return bad("A duration must be a string such as \"30s\" or a number of seconds.")
	}
}

// fieldDiags maps the rules internal/structs found broken to diagnostics. attrs names, for each
// FieldError.Field (the Lambda API's name), the attribute that holds the setting; at gives the
// attribute's range (the block's when the file does not set it).
func fieldDiags(errs []structs.FieldError, attrs map[string]string, at func(attr string) hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, e := range errs {
		attr, ok := attrs[e.Field]
		if !ok {
			attr = e.Field // a rule without its attribute here still shows, on the block
		}
		summary := e.Summary
		if summary == "" {
			summary = "Invalid " + strings.TrimPrefix(attr, "cors.")
		}
		detail := e.Message
		if r, n := utf8.DecodeRuneInString(detail); n > 0 {
			detail = string(unicode.ToUpper(r)) + detail[n:]
		}
		diags = append(diags, rangeDiag(summary, detail+".", at(attr)))
	}
	return diags
}

func rangeDiag(summary, detail string, rng hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &rng}
}

// sensitiveSource marks (in hcl.Diagnostic.Extra) a diagnostic whose subject holds a secret:
// WriteDiagnostics then gives its file:line without the source line.
type sensitiveSource struct{}

// ---- agent ----

// Agent is a node's configuration.
type Agent struct {
	NodeName string
	DataDir  string
	Region   string
	LogLevel string
	LogJSON  bool
	// Debug is the debug block: what the agent exposes for debugging it.
	Debug Debug
	// GoMaxProcs is how many threads run the agent's Go code at once (GOMAXPROCS); 0 lets the
	// agent choose: half the CPUs it may use, at least one.
	GoMaxProcs int
	HTTP       HTTP
	Cluster    Cluster
	Sandbox    Sandbox
	// AccessKeys are the credentials API requests and requests to function URLs with
	// auth_type = "SIGNED" must be signed with (AWS Signature V4), in file order. With none (the
	// default) the API is open and SIGNED URLs refuse every request.
	AccessKeys []AccessKey
	// Plugins are the plugin blocks, in file order.
	Plugins []Plugin
	// NATS is where queues and streams live: the agent's own embedded JetStream (the default)
	// or an external NATS cluster.
	NATS NATS
	// CodeGC is when the node deletes code no function or version runs any more.
	CodeGC CodeGC
}

// CodeGC is the code_gc block: every Interval, the node deletes the code zips and unpacked trees
// that the replicated state and its environments have not referenced for Grace.
type CodeGC struct {
	Grace    time.Duration
	Interval time.Duration
}

// Defaults of the code_gc block.
const (
	DefaultCodeGCGrace    = time.Hour
	DefaultCodeGCInterval = time.Minute
)

// Plugin is a plugin block: a trigger or extension plugin binary the agent runs.
type Plugin struct {
	Name string
	// Path is the binary's absolute path (relative paths are taken from the agent file's folder).
	Path string
	// Checksum is the binary's SHA-256, hex: the agent refuses to start anything else.
	Checksum string
	// Config is the plugin's config block (nil without one), decoded against the plugin's own
	// schema once the plugin said what that is.
	Config    hcl.Body
	DeclRange hcl.Range
}

// NATS is the nats block. With URL empty the agent runs JetStream itself, listening on Listen,
// whenever a plugin is configured.
type NATS struct {
	Listen string
	URL    string
	// CredentialsFile authenticates to an external NATS (a .creds file).
	CredentialsFile string
}

// AccessKey is one access_key block: an AWS-style key pair clients sign requests with, so the
// AWS SDKs and CLI work against function URLs unchanged.
type AccessKey struct {
	// Name is the block's label, to tell keys apart in the file and in logs.
	Name string
	// ID is the access key ID clients send in their credential scope (not a secret).
	ID string
	// Secret is the secret access key. It never leaves the process: String and Format redact
	// it and JSON omits it, so a config dump or a log line cannot leak it.
	Secret string `json:"-"`
	// Policy is what requests signed with the key may do: PolicyAdmin or PolicyInvoke.
	Policy string
}

// The policies of an access key.
const (
	// PolicyAdmin allows every API operation.
	PolicyAdmin = "admin"
	// PolicyInvoke allows invoking functions only (Invoke, InvokeWithResponseStream, SIGNED
	// function URLs).
	PolicyInvoke = "invoke"
)

// String names the key by block name and ID, without its secret.
func (k AccessKey) String() string {
	return fmt.Sprintf("access_key %q (id %s, policy %s, secret redacted)", k.Name, k.ID, k.Policy)
}

// Format prints String for every verb (%v, %+v, %#v, %s, %x, ...), so no verb prints the secret.
func (k AccessKey) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, k.String())
}

// AccessKeyMap maps each access key ID to its secret, the form the SigV4 verifier takes.
// AccessKeyPolicies maps them to their policies.
func (a *Agent) AccessKeyMap() map[string]string {
	m := make(map[string]string, len(a.AccessKeys))
	for _, k := range a.AccessKeys {
		m[k.ID] = k.Secret
	}
	return m
}

// AccessKeyPolicies maps each access key ID to its policy.
func (a *Agent) AccessKeyPolicies() map[string]string {
	m := make(map[string]string, len(a.AccessKeys))
	for _, k := range a.AccessKeys {
		m[k.ID] = k.Policy
	}
	return m
}

// Debug is the agent's debug block.
type Debug struct {
	// Pprof serves Go's profiling endpoints at /debug/pprof/ on the HTTP listener (admin keys
	// only, when there are keys).
	Pprof bool
}

// HTTP is the listener of the invoke, management and /v1 APIs and of function URLs.
type HTTP struct {
	Address string
	// URLDomain is the domain function URLs are served under: <url-id>.<URLDomain>.
	URLDomain string
	// AllowedHosts are the names and addresses a request's Host header may carry (function URLs
	// under URLDomain always may); empty: the listener's own names and addresses and localhost.
	// ["*"] turns the check off.
	AllowedHosts []string
	// AllowedOrigins are browser origins whose cross-site API requests are accepted.
	AllowedOrigins []string
	// TLS, when set, makes the listener serve HTTPS.
	TLS *HTTPTLS
	// AccessLog logs one line per request at INFO (logger http.access).
	AccessLog bool
}

// HTTPTLS is the http block's tls block: PEM files, absolute paths.
type HTTPTLS struct {
	Cert, Key string
}

// Cluster is the Raft node's configuration.
type Cluster struct {
	// Address is where Raft and the node RPC listen (one port).
	Address string
	// Advertise is the address other nodes reach this one at; Address when empty.
	Advertise string
	// Bootstrap starts a single-node cluster on the first start (the default without Join
	// and BootstrapExpect).
	Bootstrap bool
	// Join lists other nodes' cluster addresses to join through (or to find for
	// BootstrapExpect).
	Join []string
	// BootstrapExpect bootstraps a new cluster once this many nodes found each other.
	BootstrapExpect int
	// TLS makes every cluster connection mutual TLS with certificates of one CA.
	TLS *ClusterTLS
	// DeadServerCleanup removes a server the leader cannot reach for that long; 0 never.
	DeadServerCleanup time.Duration
}

// ClusterTLS is the cluster block's tls block: PEM files, absolute paths.
type ClusterTLS struct {
	CA, Cert, Key string
}

// Sandbox configures execution environments.
type Sandbox struct {
	Driver          string
	MaxEnvironments int
	// MaxConcurrency caps the invocations running on the node at once, as Lambda's account
	// limit: reservations are carved out of it, the other functions share the rest. 0 means
	// max_environments.
	MaxConcurrency  int
	IdleTimeout     time.Duration
	InitTimeout     time.Duration
	ShutdownTimeout time.Duration
	FreezeDelay     time.Duration
	PidsLimit       int
	Rootfs          string
	// Standby is the node's budget of prepared environments kept for recently deployed or
	// used function revisions, so their cold starts skip the container set-up.
	Standby int
	// MaxStreamMB bounds one streamed response (Lambda's soft limit is 20 MB).
	MaxStreamMB int
	// CPUPolicy is the Linux scheduling policy of the runtimes' threads: "batch" (a runtime
	// that wakes does not preempt the task on its CPU) or "normal".
	CPUPolicy string
	// Seccomp is the runtimes' syscall filter: "default" (Docker's default profile for a process
	// without capabilities, io_uring, eBPF, keyrings, namespaces and mounts refused),
	// "unconfined" (none), or the absolute path of a profile in Docker's JSON format.
	Seccomp string
	// TotalMemory caps the memory of all environments together (one parent cgroup), so that
	// functions whose limits add up to more than the machine cannot starve the agent: the
	// kernel's OOM killer then takes a function. Zero: DefaultTotalMemory of the machine.
	TotalMemory Size
	// TotalPids caps the processes and threads of all environments together; 0: half of what the
	// kernel allows (the smaller of kernel.pid_max and kernel.threads-max).
	TotalPids int
	// MaxParallelStarts caps the environments being created at once; 0: twice the CPUs, at
	// least 4.
	MaxParallelStarts int
	// UserNamespaces gives each environment its own user namespace and host uid range where the
	// machine allows it (the agent says at start when it cannot, and runs without).
	UserNamespaces bool
}

// Size is an amount of memory: Bytes, or Percent of the machine's memory when Percent > 0.
type Size struct {
	Bytes   int64
	Percent float64
}

// Of resolves s against a machine's total memory.
func (s Size) Of(total int64) int64 {
	if s.Percent > 0 {
		return int64(float64(total) * s.Percent / 100)
	}
	return s.Bytes
}

// DefaultTotalMemory leaves the agent and the host a tenth of the machine, at least 512 MiB.
func DefaultTotalMemory(machine int64) int64 {
	return machine - max(512<<20, machine/10)
}

var sizeRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*(%|B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?\s*$`)

// parseSize reads "512MiB", "20GB", "1.5GiB", "2147483648" (bytes) or "90%".
func parseSize(v string) (Size, error) {
	m := sizeRE.FindStringSubmatch(v)
	if m == nil {
		return Size{}, fmt.Errorf("%q is not a size such as \"20GiB\", \"512MiB\" or \"90%%\"", v)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return Size{}, fmt.Errorf("%q: %w", v, err)
	}
	if m[2] == "%" {
		if n <= 0 || n > 100 {
			return Size{}, fmt.Errorf("%q: a share of the machine's memory is above 0%% and at most 100%%", v)
		}
		return Size{Percent: n}, nil
	}
	unit := map[string]float64{"": 1, "B": 1, "KB": 1e3, "KiB": 1 << 10, "MB": 1e6, "MiB": 1 << 20,
		"GB": 1e9, "GiB": 1 << 30, "TB": 1e12, "TiB": 1 << 40}[m[2]]
	return Size{Bytes: int64(n * unit)}, nil
}

// DefaultAgent has every default filled in.
func DefaultAgent() *Agent {
	host, _ := os.Hostname()
	if host == "" {
		host = "gateway"
	}
	return &Agent{
		NodeName: host,
		Region:   "us-east-1",
		LogLevel: "info",
		HTTP:     HTTP{Address: "127.0.0.1:9500", URLDomain: DefaultURLDomain},
		NATS:     NATS{Listen: "127.0.0.1:4222"},
		CodeGC:   CodeGC{Grace: DefaultCodeGCGrace, Interval: DefaultCodeGCInterval},
		Cluster:  Cluster{Address: "127.0.0.1:9501", Bootstrap: true},
		Sandbox: Sandbox{
			Driver:          "libcontainer",
			UserNamespaces:  true,
			MaxEnvironments: 500,
			IdleTimeout:     10 * time.Minute,
			InitTimeout:     structs.DefaultInitTimeout,
			ShutdownTimeout: structs.DefaultShutdownTimeout,
			PidsLimit:       1024,
			Standby:         8,
			MaxStreamMB:     20,
			CPUPolicy:       "batch",
			Seccomp:         "default",
		},
	}
}

// DevAgent is a throwaway single node on the default loopback ports, with data in dataDir.
func DevAgent(dataDir string) *Agent {
	a := DefaultAgent()
	a.NodeName = "dev"
	a.DataDir = dataDir
	return a
}

type agentFile struct {
	NodeName *string          `hcl:"node_name,optional"`
	DataDir  *string          `hcl:"data_dir,optional"`
	Region   *string          `hcl:"region,optional"`
	LogLevel *string          `hcl:"log_level,optional"`
	LogJSON  *bool            `hcl:"log_json,optional"`
	OldDebug *bool            `hcl:"enable_debug,optional"` // deprecated: debug { pprof }
	Debug    *debugBlock      `hcl:"debug,block"`
	Procs    *int             `hcl:"gomaxprocs,optional"`
	HTTP     *httpBlock       `hcl:"http,block"`
	Cluster  *clusterBlock    `hcl:"cluster,block"`
	Sandbox  *sandboxBlock    `hcl:"sandbox,block"`
	Keys     []accessKeyBlock `hcl:"access_key,block"`
	Plugins  []pluginBlock    `hcl:"plugin,block"`
	NATS     *natsBlock       `hcl:"nats,block"`
	CodeGC   *codeGCBlock     `hcl:"code_gc,block"`
}

type codeGCBlock struct {
	Grace    hcl.Expression `hcl:"grace,optional"`
	Interval hcl.Expression `hcl:"interval,optional"`
}

type debugBlock struct {
	Pprof *bool `hcl:"pprof,optional"`
}

type accessKeyBlock struct {
	Name       string   `hcl:"name,label"`
	ID         string   `hcl:"id"`
	Secret     *string  `hcl:"secret,optional"`
	SecretFile *string  `hcl:"secret_file,optional"`
	Policy     *string  `hcl:"policy,optional"`
	Body       hcl.Body `hcl:",body"`
}

// accessKeyIDRE is the shape of an AWS access key ID: upper-case letters and digits.
var accessKeyIDRE = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)

type httpBlock struct {
	Address        *string       `hcl:"address,optional"`
	URLDomain      *string       `hcl:"url_domain,optional"`
	AllowedHosts   *[]string     `hcl:"allowed_hosts,optional"`
	AllowedOrigins *[]string     `hcl:"allowed_origins,optional"`
	AccessLog      *bool         `hcl:"access_log,optional"`
	TLS            *httpTLSBlock `hcl:"tls,block"`
	Body           hcl.Body      `hcl:",body"`
}

type httpTLSBlock struct {
	Cert string   `hcl:"cert"`
	Key  string   `hcl:"key"`
	Body hcl.Body `hcl:",body"`
}

// DefaultURLDomain needs no DNS set-up: *.localhost resolves to the loopback address.
const DefaultURLDomain = "lambda-url.localhost"

var domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

type clusterBlock struct {
	Address         *string          `hcl:"address,optional"`
	Advertise       *string          `hcl:"advertise,optional"`
	Bootstrap       *bool            `hcl:"bootstrap,optional"`
	Join            *[]string        `hcl:"join,optional"`
	BootstrapExpect *int             `hcl:"bootstrap_expect,optional"`
	DeadCleanup     hcl.Expression   `hcl:"dead_server_cleanup,optional"`
	TLS             *clusterTLSBlock `hcl:"tls,block"`
	Body            hcl.Body         `hcl:",body"`
}

type clusterTLSBlock struct {
	CA   string   `hcl:"ca"`
	Cert string   `hcl:"cert"`
	Key  string   `hcl:"key"`
	Body hcl.Body `hcl:",body"`
}

type sandboxBlock struct {
	Driver          *string        `hcl:"driver,optional"`
	MaxEnvironments *int           `hcl:"max_environments,optional"`
	MaxConcurrency  *int           `hcl:"max_concurrency,optional"`
	IdleTimeout     hcl.Expression `hcl:"idle_timeout,optional"`
	InitTimeout     hcl.Expression `hcl:"init_timeout,optional"`
	ShutdownTimeout hcl.Expression `hcl:"shutdown_timeout,optional"`
	FreezeDelay     hcl.Expression `hcl:"freeze_delay,optional"`
	PidsLimit       *int           `hcl:"pids_limit,optional"`
	Standby         *int           `hcl:"standby,optional"`
	MaxStreamMB     *int           `hcl:"max_stream_mb,optional"`
	Rootfs          *string        `hcl:"rootfs,optional"`
	CPUPolicy       *string        `hcl:"cpu_policy,optional"`
	Seccomp         *string        `hcl:"seccomp,optional"`
	TotalMemory     *string        `hcl:"total_memory,optional"`
	TotalPids       *int           `hcl:"total_pids,optional"`
	MaxParallel     *int           `hcl:"max_parallel_starts,optional"`
	UserNamespaces  *bool          `hcl:"user_namespaces,optional"`
	Body            hcl.Body       `hcl:",body"`
}

type pluginBlock struct {
	Name     string         `hcl:"name,label"`
	Path     hcl.Expression `hcl:"path"`
	Checksum *string        `hcl:"checksum,optional"`
	Remain   hcl.Body       `hcl:",remain"`
}

type natsBlock struct {
	Listen          *string  `hcl:"listen,optional"`
	URL             *string  `hcl:"url,optional"`
	CredentialsFile *string  `hcl:"credentials_file,optional"`
	Body            hcl.Body `hcl:",body"`
}

// LoadAgent reads and validates an agent file.
func LoadAgent(path string) (*Agent, *Files, hcl.Diagnostics) {
	files := newFiles()
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, files, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read the agent configuration", Detail: err.Error()}}
	}
	f, diags := files.parser.ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, files, diags
	}
	a, d := decodeAgent(f.Body, filepath.Dir(path))
	return a, files, append(diags, d...)
}

func decodeAgent(body hcl.Body, baseDir string) (*Agent, hcl.Diagnostics) {
	var raw agentFile
	ctx := evalContext()
	diags := gohcl.DecodeBody(body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	a := DefaultAgent()
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&a.NodeName, raw.NodeName)
	set(&a.DataDir, raw.DataDir)
	set(&a.Region, raw.Region)
	set(&a.LogLevel, raw.LogLevel)
	if raw.OldDebug != nil {
		// Kept for one release: pprof is now asked for in its own block.
		a.Debug.Pprof = *raw.OldDebug
		d := attrDiag(body, "enable_debug", "Deprecated attribute",
			"enable_debug will be removed in the next release: write debug { pprof = true } instead.")
		d.Severity = hcl.DiagWarning
		diags = append(diags, d)
	}
	if raw.Debug != nil && raw.Debug.Pprof != nil {
		a.Debug.Pprof = *raw.Debug.Pprof
	}
	if raw.LogJSON != nil {
		a.LogJSON = *raw.LogJSON
	}
	if raw.Procs != nil {
		if *raw.Procs < 0 {
			diags = append(diags, attrDiag(body, "gomaxprocs", "Invalid gomaxprocs",
				fmt.Sprintf("%d threads: gomaxprocs must be at least 1, or 0 to let the agent choose (half the CPUs).", *raw.Procs)))
		}
		a.GoMaxProcs = *raw.Procs
	}
	if a.DataDir != "" && !filepath.IsAbs(a.DataDir) {
		a.DataDir = filepath.Join(baseDir, a.DataDir)
	}
	switch a.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		diags = append(diags, attrDiag(body, "log_level", "Invalid log level",
			fmt.Sprintf("%q is not a log level; valid: trace, debug, info, warn, error.", a.LogLevel)))
	}
	if a.NodeName == "" {
		diags = append(diags, attrDiag(body, "node_name", "Invalid node name", "node_name must not be empty."))
	}
	if raw.HTTP != nil {
		set(&a.HTTP.Address, raw.HTTP.Address)
		set(&a.HTTP.URLDomain, raw.HTTP.URLDomain)
		if !domainRE.MatchString(a.HTTP.URLDomain) {
			diags = append(diags, attrDiag(raw.HTTP.Body, "url_domain", "Invalid url_domain",
				fmt.Sprintf("%q is not a lower-case DNS name such as lambda-url.example.com.", a.HTTP.URLDomain)))
		}
		if h := raw.HTTP.AllowedHosts; h != nil {
			a.HTTP.AllowedHosts = *h
			for _, v := range *h {
				_, _, hasPort := net.SplitHostPort(v)
				if v == "" || strings.ContainsAny(v, "/ \t") || hasPort == nil {
					diags = append(diags, attrDiag(raw.HTTP.Body, "allowed_hosts", "Invalid allowed_hosts",
						fmt.Sprintf("%q is not a host name or address without a port (or \"*\").", v)))
				}
			}
		}
		if v := raw.HTTP.AccessLog; v != nil {
			a.HTTP.AccessLog = *v
		}
		if o := raw.HTTP.AllowedOrigins; o != nil {
			a.HTTP.AllowedOrigins = *o
			for _, v := range *o {
				if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
					diags = append(diags, attrDiag(raw.HTTP.Body, "allowed_origins", "Invalid allowed_origins",
						fmt.Sprintf("%q is not an origin such as https://console.example.com.", v)))
				}
			}
		}
		if t := raw.HTTP.TLS; t != nil {
			a.HTTP.TLS = &HTTPTLS{Cert: absPath(baseDir, t.Cert), Key: absPath(baseDir, t.Key)}
			if _, err := tls.LoadX509KeyPair(a.HTTP.TLS.Cert, a.HTTP.TLS.Key); err != nil {
				diags = append(diags, attrDiag(t.Body, "cert", "Invalid HTTP certificate",
					fmt.Sprintf("loading cert %s with key %s: %v. Paths are relative to this file.", a.HTTP.TLS.Cert, a.HTTP.TLS.Key, err)))
			}
		}
	}
	if c := raw.Cluster; c != nil {
		diags = append(diags, decodeCluster(&a.Cluster, c, baseDir)...)
	}
	if s := raw.Sandbox; s != nil {
		set(&a.Sandbox.Driver, s.Driver)
		set(&a.Sandbox.Rootfs, s.Rootfs)
		set(&a.Sandbox.CPUPolicy, s.CPUPolicy)
		if s.Seccomp != nil {
			a.Sandbox.Seccomp = *s.Seccomp
			if v := *s.Seccomp; v != "default" && v != "unconfined" {
				a.Sandbox.Seccomp = absPath(baseDir, v)
				if err := checkJSONFile(a.Sandbox.Seccomp); err != nil {
					diags = append(diags, sandboxDiag(s, "seccomp", "Invalid seccomp",
						fmt.Sprintf("%q is neither \"default\", \"unconfined\" nor a readable seccomp profile (Docker's JSON format): %v.", v, err)))
				}
			}
		}
		if s.MaxEnvironments != nil {
			a.Sandbox.MaxEnvironments = *s.MaxEnvironments
		}
		if s.MaxConcurrency != nil {
			a.Sandbox.MaxConcurrency = *s.MaxConcurrency
		}
		if s.Standby != nil {
			a.Sandbox.Standby = *s.Standby
		}
		if s.MaxStreamMB != nil {
			a.Sandbox.MaxStreamMB = *s.MaxStreamMB
		}
		if s.PidsLimit != nil {
			a.Sandbox.PidsLimit = *s.PidsLimit
		}
		if s.TotalMemory != nil {
			size, err := parseSize(*s.TotalMemory)
			if err == nil && size.Percent == 0 && size.Bytes < 128<<20 {
				err = fmt.Errorf("%q is less than one function of the smallest size (128 MiB)", *s.TotalMemory)
			}
			if err != nil {
				diags = append(diags, sandboxDiag(s, "total_memory", "Invalid total_memory", err.Error()+"."))
			}
			a.Sandbox.TotalMemory = size
		}
		if s.TotalPids != nil {
			a.Sandbox.TotalPids = *s.TotalPids
			if *s.TotalPids < 16 {
				diags = append(diags, sandboxDiag(s, "total_pids", "Invalid total_pids", "total_pids must be at least 16."))
			}
		}
		if s.UserNamespaces != nil {
			a.Sandbox.UserNamespaces = *s.UserNamespaces
		}
		if s.MaxParallel != nil {
			a.Sandbox.MaxParallelStarts = *s.MaxParallel
			if *s.MaxParallel < 1 {
				diags = append(diags, sandboxDiag(s, "max_parallel_starts", "Invalid max_parallel_starts", "max_parallel_starts must be at least 1."))
			}
		}
		for _, d := range []struct {
			expr     hcl.Expression
			dst      *time.Duration
			min, max time.Duration
		}{
			{s.IdleTimeout, &a.Sandbox.IdleTimeout, time.Second, 0},
			{s.InitTimeout, &a.Sandbox.InitTimeout, time.Second, structs.MaxTimeout},
			{s.ShutdownTimeout, &a.Sandbox.ShutdownTimeout, 0, time.Minute},
			{s.FreezeDelay, &a.Sandbox.FreezeDelay, 0, time.Hour},
		} {
			if isSet(d.expr) {
				v, dd := durationAttr(d.expr, ctx, d.min, d.max)
				diags = append(diags, dd...)
				*d.dst = v
			}
		}
	}
	if a.Sandbox.Driver != "libcontainer" && a.Sandbox.Driver != "process" {
		diags = append(diags, sandboxDiag(raw.Sandbox, "driver", "Invalid sandbox driver",
			fmt.Sprintf("%q is not a sandbox driver; valid: libcontainer, process.", a.Sandbox.Driver)))
	}
	if a.Sandbox.CPUPolicy != "batch" && a.Sandbox.CPUPolicy != "normal" {
		diags = append(diags, sandboxDiag(raw.Sandbox, "cpu_policy", "Invalid cpu_policy",
			fmt.Sprintf("%q is not a CPU policy; valid: batch, normal.", a.Sandbox.CPUPolicy)))
	}
	if a.Sandbox.MaxConcurrency < 0 {
		diags = append(diags, sandboxDiag(raw.Sandbox, "max_concurrency", "Invalid max_concurrency", "max_concurrency must be at least 1 (or 0: max_environments)."))
	}
	if a.Sandbox.MaxConcurrency == 0 {
		a.Sandbox.MaxConcurrency = a.Sandbox.MaxEnvironments
	}
	if a.Sandbox.MaxEnvironments < 1 {
		diags = append(diags, sandboxDiag(raw.Sandbox, "max_environments", "Invalid max_environments", "max_environments must be at least 1."))
	}
	if a.Sandbox.Standby < 0 || a.Sandbox.Standby > a.Sandbox.MaxEnvironments {
		diags = append(diags, sandboxDiag(raw.Sandbox, "standby", "Invalid standby",
			fmt.Sprintf("standby must be between 0 and max_environments (%d).", a.Sandbox.MaxEnvironments)))
	}
	if a.Sandbox.MaxStreamMB < 1 {
		diags = append(diags, sandboxDiag(raw.Sandbox, "max_stream_mb", "Invalid max_stream_mb", "max_stream_mb must be at least 1."))
	}
	if a.Sandbox.PidsLimit < 16 {
		diags = append(diags, sandboxDiag(raw.Sandbox, "pids_limit", "Invalid pids_limit", "pids_limit must be at least 16: a Go or Node runtime alone uses several threads."))
	}
	keys, d := decodeAccessKeys(raw.Keys, baseDir)
	diags = append(diags, d...)
	a.AccessKeys = keys
	if len(keys) > 0 && a.Cluster.TLS == nil && (len(a.Cluster.Join) > 0 || a.Cluster.BootstrapExpect > 1) {
		// A lone node gets mutual TLS of its own (internal/agent); nodes of a cluster must share a CA.
		diags = append(diags, rangeDiag("Cluster port without mutual TLS",
			"This node has access keys, so its API refuses unsigned requests, but its cluster port would take writes, code and "+
				"invocations from anyone who reaches it. Add cluster { tls { ca, cert, key } } with certificates of one CA on every "+
				"node: `gateway tls ca create`, then `gateway tls cert create -node` for each.", raw.Cluster.Body.MissingItemRange()))
	}
	plugins, d := decodePlugins(raw.Plugins, baseDir)
	diags = append(diags, d...)
	a.Plugins = plugins
	if n := raw.NATS; n != nil {
		set(&a.NATS.Listen, n.Listen)
		set(&a.NATS.URL, n.URL)
		if n.CredentialsFile != nil {
			a.NATS.CredentialsFile = absPath(baseDir, *n.CredentialsFile)
		}
		if a.NATS.URL != "" && !strings.HasPrefix(a.NATS.URL, "nats://") && !strings.HasPrefix(a.NATS.URL, "tls://") {
			diags = append(diags, attrDiag(n.Body, "url", "Invalid NATS URL", fmt.Sprintf("url %q must start with nats:// or tls://.", a.NATS.URL)))
		}
		if _, _, err := net.SplitHostPort(a.NATS.Listen); err != nil {
			diags = append(diags, attrDiag(n.Body, "listen", "Invalid listen address", fmt.Sprintf("listen %q must be host:port: %v.", a.NATS.Listen, err)))
		}
	}
	if g := raw.CodeGC; g != nil {
		for _, d := range []struct {
			expr hcl.Expression
			dst  *time.Duration
		}{{g.Grace, &a.CodeGC.Grace}, {g.Interval, &a.CodeGC.Interval}} {
			if isSet(d.expr) {
				v, dd := durationAttr(d.expr, ctx, time.Second, 0)
				diags = append(diags, dd...)
				*d.dst = v
			}
		}
	}
	return a, diags
}

func absPath(baseDir, p string) string {
	if filepath.IsAbs(p) || baseDir == "" {
		return p
	}
	return filepath.Join(baseDir, p)
}

// decodePlugins checks plugin blocks: unique names, a path, and a "sha256:<hex>" checksum.
func decodePlugins(blocks []pluginBlock, baseDir string) ([]Plugin, hcl.Diagnostics) {
	var out []Plugin
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	for _, b := range blocks {
		content, rest, d := b.Remain.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "config"}}})
		diags = append(diags, d...)
		// Anything else in the block is a mistake: say which.
		asAttr, rest, d := rest.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "config"}}})
		diags = append(diags, d...)
		if attr, ok := asAttr.Attributes["config"]; ok {
			diags = append(diags, rangeDiag("Unsupported argument", "Write the plugin's settings as a block: config { ... }.", attr.NameRange))
		}
		_, d = rest.Content(&hcl.BodySchema{})
		diags = append(diags, d...)
		rng := b.Path.Range()
		var path string
		diags = append(diags, gohcl.DecodeExpression(b.Path, evalContext(), &path)...)
		p := Plugin{Name: b.Name, Path: absPath(baseDir, path), DeclRange: rng}
		if !structs.ValidName(b.Name) {
			diags = append(diags, rangeDiag("Invalid plugin name", fmt.Sprintf("plugin %q: a name is letters, digits, '-' and '_'.", b.Name), rng))
		}
		if seen[b.Name] {
			diags = append(diags, rangeDiag("Duplicate plugin", fmt.Sprintf("plugin %q is defined twice.", b.Name), rng))
		}
		seen[b.Name] = true
		if path == "" {
			diags = append(diags, rangeDiag("Missing plugin path", fmt.Sprintf("plugin %q needs the path of its binary.", b.Name), rng))
		}
		switch {
		case b.Checksum == nil:
			diags = append(diags, rangeDiag("Missing plugin checksum",
				fmt.Sprintf("plugin %q needs checksum = \"sha256:...\": the agent runs only the binary it names. `gateway plugin checksum %s` prints the line.", b.Name, path), rng))
		default:
			hexSum, ok := strings.CutPrefix(*b.Checksum, "sha256:")
			if sum, err := hex.DecodeString(hexSum); !ok || err != nil || len(sum) != 32 {
				diags = append(diags, rangeDiag("Invalid plugin checksum",
					fmt.Sprintf("plugin %q: checksum %q must be \"sha256:\" and 64 hex digits.", b.Name, *b.Checksum), rng))
			}
			p.Checksum = strings.ToLower(hexSum)
		}
		for _, cb := range content.Blocks {
			if p.Config != nil {
				r := cb.DefRange
				diags = append(diags, rangeDiag("Duplicate config block", fmt.Sprintf("plugin %q has more than one config block.", b.Name), r))
				continue
			}
			p.Config = cb.Body
		}
		out = append(out, p)
	}
	return out, diags
}

// decodeCluster applies a cluster block. bootstrap defaults to true only for a node that is
// given neither join nor bootstrap_expect (a single node).
func decodeCluster(cl *Cluster, c *clusterBlock, baseDir string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if c.Address != nil {
		cl.Address = *c.Address
	}
	if c.Advertise != nil {
		cl.Advertise = *c.Advertise
	}
	for name, addr := range map[string]string{"address": cl.Address, "advertise": cl.Advertise} {
		if addr == "" && name == "advertise" {
			continue
		}
		if host, port, err := net.SplitHostPort(addr); err != nil || port == "" || (name == "advertise" && (host == "" || host == "0.0.0.0" || host == "::")) {
			diags = append(diags, attrDiag(c.Body, name, "Invalid cluster "+name,
				fmt.Sprintf("%q is not a host:port other nodes can reach (advertise a specific address when listening on all of them).", addr)))
		}
	}
	if c.Join != nil {
		cl.Join = *c.Join
		for _, j := range cl.Join {
			if _, _, err := net.SplitHostPort(j); err != nil {
				diags = append(diags, attrDiag(c.Body, "join", "Invalid join address", fmt.Sprintf("%q is not a host:port of another node's cluster address.", j)))
			}
		}
	}
	if c.BootstrapExpect != nil {
		cl.BootstrapExpect = *c.BootstrapExpect
		if cl.BootstrapExpect < 1 {
			diags = append(diags, attrDiag(c.Body, "bootstrap_expect", "Invalid bootstrap_expect", fmt.Sprintf("%d: the number of nodes of the new cluster, at least 1 (3 or 5 survive a node's loss).", cl.BootstrapExpect)))
		}
		if cl.BootstrapExpect > 1 && len(cl.Join) == 0 {
			diags = append(diags, attrDiag(c.Body, "bootstrap_expect", "Missing join addresses", fmt.Sprintf("bootstrap_expect = %d needs join = [...] listing the other nodes' cluster addresses, to find them.", cl.BootstrapExpect)))
		}
	}
	if isSet(c.DeadCleanup) {
		d, dd := durationAttr(c.DeadCleanup, evalContext(), 0, 30*24*time.Hour)
		diags = append(diags, dd...)
		cl.DeadServerCleanup = d
		if d > 0 && d < 2*time.Second {
			diags = append(diags, attrDiag(c.Body, "dead_server_cleanup", "Invalid dead_server_cleanup",
				fmt.Sprintf("%s is shorter than a few heartbeats: a server that pauses briefly would be removed. Use 2s or more, or 0 to keep every server.", d)))
		}
	}
	cl.Bootstrap = len(cl.Join) == 0 && cl.BootstrapExpect == 0
	if c.Bootstrap != nil {
		cl.Bootstrap = *c.Bootstrap
		if cl.Bootstrap && cl.BootstrapExpect > 0 {
			diags = append(diags, attrDiag(c.Body, "bootstrap", "Conflicting bootstrap settings", "bootstrap = true starts a cluster of this node alone; bootstrap_expect starts one with the others. Keep one."))
		}
	}
	if t := c.TLS; t != nil {
		abs := func(p string) string {
			if p != "" && !filepath.IsAbs(p) {
				return filepath.Join(baseDir, p)
			}
			return p
		}
		cl.TLS = &ClusterTLS{CA: abs(t.CA), Cert: abs(t.Cert), Key: abs(t.Key)}
		if _, err := tls.LoadX509KeyPair(cl.TLS.Cert, cl.TLS.Key); err != nil {
			diags = append(diags, attrDiag(t.Body, "cert", "Invalid cluster certificate", fmt.Sprintf("loading cert %s with key %s: %v. Paths are relative to this file.", cl.TLS.Cert, cl.TLS.Key, err)))
		}
		if pem, err := os.ReadFile(cl.TLS.CA); err != nil {
			diags = append(diags, attrDiag(t.Body, "ca", "Invalid cluster CA", fmt.Sprintf("%v. The path is relative to this file.", err)))
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			diags = append(diags, attrDiag(t.Body, "ca", "Invalid cluster CA", fmt.Sprintf("%s holds no PEM certificate.", cl.TLS.CA)))
		}
	}
	return diags
}

// decodeAccessKeys validates the access_key blocks and reads their secret files. No diagnostic
// quotes a secret, and those pointing at a secret attribute are marked sensitiveSource.
func decodeAccessKeys(blocks []accessKeyBlock, baseDir string) ([]AccessKey, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var out []AccessKey
	names := map[string]hcl.Range{}
	ids := map[string]string{} // id -> block name
	for _, b := range blocks {
		decl := b.Body.MissingItemRange() // the block's opening brace, on its header line
		if prev, dup := names[b.Name]; dup {
			diags = append(diags, rangeDiag("Duplicate access_key block",
				fmt.Sprintf("access_key %q is also declared at %s.", b.Name, prev), decl))
			continue
		}
		names[b.Name] = decl
		k := AccessKey{Name: b.Name, ID: b.ID}
		// No default policy: a key's power is stated where it is declared.
		switch {
		case b.Policy == nil:
			diags = append(diags, rangeDiag("Missing access key policy",
				fmt.Sprintf("access_key %q needs a policy: \"admin\" (every operation) or \"invoke\" (invoking functions only).", b.Name), decl))
		case *b.Policy == PolicyAdmin || *b.Policy == PolicyInvoke:
			k.Policy = *b.Policy
		default:
			diags = append(diags, attrDiag(b.Body, "policy", "Invalid access key policy",
				fmt.Sprintf("access_key %q: policy %q is not one of \"admin\" (every operation) or \"invoke\" (invoking functions only).", b.Name, *b.Policy)))
		}
		if !accessKeyIDRE.MatchString(k.ID) {
			diags = append(diags, attrDiag(b.Body, "id", "Invalid access key id",
				fmt.Sprintf("%q is not an access key id: it has 16 to 128 upper-case letters and digits, like AKIAIOSFODNN7EXAMPLE.", k.ID)))
		} else if prev, dup := ids[k.ID]; dup {
			diags = append(diags, attrDiag(b.Body, "id", "Duplicate access key id",
				fmt.Sprintf("access_key %q uses id %s, as access_key %q does; each key needs its own id.", b.Name, k.ID, prev)))
		} else {
			ids[k.ID] = b.Name
		}
		switch {
		case b.Secret != nil && b.SecretFile != nil:
			diags = append(diags, attrDiag(b.Body, "secret_file", "Conflicting access key secrets",
				fmt.Sprintf("access_key %q sets both secret and secret_file; keep one of them.", b.Name)))
		case b.Secret == nil && b.SecretFile == nil:
			diags = append(diags, rangeDiag("Missing access key secret",
				fmt.Sprintf("access_key %q needs a secret: set secret, or secret_file to a file holding it.", b.Name), decl))
		case b.Secret != nil:
			k.Secret = *b.Secret
			if msg := secretProblem(k.Secret); msg != "" {
				d := attrDiag(b.Body, "secret", "Invalid access key secret", fmt.Sprintf("access_key %q: the secret %s.", b.Name, msg))
				d.Extra = sensitiveSource{}
				diags = append(diags, d)
			}
		default:
			path := *b.SecretFile
			if !filepath.IsAbs(path) {
				path = filepath.Join(baseDir, path)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				diags = append(diags, attrDiag(b.Body, "secret_file", "Cannot read secret_file",
					fmt.Sprintf("access_key %q: %v. The path is relative to this file.", b.Name, err)))
				break
			}
			k.Secret = strings.TrimSpace(string(src))
			if msg := secretProblem(k.Secret); msg != "" {
				diags = append(diags, attrDiag(b.Body, "secret_file", "Invalid access key secret",
					fmt.Sprintf("access_key %q: the secret in %s %s.", b.Name, path, msg)))
			}
		}
		out = append(out, k)
	}
	return out, diags
}

// secretProblem says what is wrong with a secret, without quoting it; "" when it is fine.
func secretProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return "contains whitespace (spaces, tabs or line breaks)"
	}
	return ""
}

func isSet(e hcl.Expression) bool {
	if e == nil {
		return false
	}
	v, diags := e.Value(nil)
	return diags.HasErrors() || !v.IsNull()
}

func attrDiag(body hcl.Body, name, summary, detail string) *hcl.Diagnostic {
	rng := body.MissingItemRange()
	if attrs, _ := body.JustAttributes(); attrs != nil {
		if a, ok := attrs[name]; ok {
			rng = a.Expr.Range()
		}
	}
	return rangeDiag(summary, detail, rng)
}

func sandboxDiag(s *sandboxBlock, attr, summary, detail string) *hcl.Diagnostic {
	if s == nil {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
	}
	return attrDiag(s.Body, attr, summary, detail)
}

// checkJSONFile reads a file and checks that it holds one JSON object.
func checkJSONFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var v map[string]any
	return json.Unmarshal(b, &v)
}

// ---- functions ----

// Function is one function block.
type Function struct {
	Name               string
	Description        string
	Runtime            string
	Handler            string
	Code               string // absolute path of a folder or a .zip
	MemoryMB           int
	Timeout            time.Duration
	EphemeralStorageMB int
	Environment        map[string]string
	FreezeDelay        *time.Duration
	// URL is the function's URL, when it has a url block.
	URL *FunctionURL
	// Publish publishes a new version on apply whenever the code or configuration changed.
	Publish bool
	// ReservedConcurrency caps the function's simultaneous executions; nil is no reservation.
	ReservedConcurrency *int
	// Aliases are the function's alias blocks, in file order.
	Aliases []*Alias
	// Provisioned are the provisioned_concurrency blocks, in file order, one per qualifier.
	Provisioned []*Provisioned
	// Triggers are the trigger blocks, in file order.
	Triggers  []*Trigger
	DeclRange hcl.Range
}

// Provisioned is a provisioned_concurrency block: Count environments of a published version or
// alias kept initialised.
type Provisioned struct {
	Qualifier string
	Count     int
	DeclRange hcl.Range
}

// Alias is an alias block: a name for a version, with an optional weighted second version.
type Alias struct {
	Name        string
	Version     string // "$LATEST" or a version number
	Routing     map[string]float64
	Description string
	DeclRange   hcl.Range
}

// FunctionURL is a function's url block, in the Lambda API's terms (SIGNED is AWS_IAM).
type FunctionURL struct {
	AuthType   string
	InvokeMode string
	Qualifier  string
	Cors       *structs.CORS
	DeclRange  hcl.Range
}

type urlBlock struct {
	AuthType   *string    `hcl:"auth_type,optional"`
	InvokeMode *string    `hcl:"invoke_mode,optional"`
	Qualifier  *string    `hcl:"qualifier,optional"`
	Cors       *corsBlock `hcl:"cors,block"`
}

type corsBlock struct {
	AllowOrigins     *[]string `hcl:"allow_origins,optional"`
	AllowMethods     *[]string `hcl:"allow_methods,optional"`
	AllowHeaders     *[]string `hcl:"allow_headers,optional"`
	ExposeHeaders    *[]string `hcl:"expose_headers,optional"`
	AllowCredentials *bool     `hcl:"allow_credentials,optional"`
	MaxAge           *int      `hcl:"max_age,optional"`
}

// decodeURL reads a function's url block.
func decodeURL(blk *hcl.Block, ctx *hcl.EvalContext) (*FunctionURL, hcl.Diagnostics) {
	var raw urlBlock
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	attrRange := func(body hcl.Body, name string) hcl.Range {
		attrs, _ := body.JustAttributes() // the body may have blocks too; the attributes still come
		if a, ok := attrs[name]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	}
	corsBody := blk.Body
	if pc, _, _ := blk.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "cors"}}}); len(pc.Blocks) > 0 {
		corsBody = pc.Blocks[0].Body
	}
	u := &FunctionURL{AuthType: structs.AuthNone, InvokeMode: structs.InvokeBuffered, DeclRange: blk.DefRange}
	if raw.AuthType != nil {
		u.AuthType = *raw.AuthType
		if u.AuthType == "SIGNED" {
			u.AuthType = structs.AuthSigned // the HCL's name: signed with the agent's keys, not IAM
		}
	}
	if raw.InvokeMode != nil {
		u.InvokeMode = *raw.InvokeMode
	}
	if raw.Qualifier != nil && *raw.Qualifier != structs.LatestVersion {
		u.Qualifier = *raw.Qualifier
	}
	if c := raw.Cors; c != nil {
		cors := &structs.CORS{}
		get := func(p *[]string) []string {
			if p == nil {
				return nil
			}
			return *p
		}
		cors.AllowOrigins, cors.AllowMethods = get(c.AllowOrigins), get(c.AllowMethods)
		cors.AllowHeaders, cors.ExposeHeaders = get(c.AllowHeaders), get(c.ExposeHeaders)
		if c.AllowCredentials != nil {
			cors.AllowCredentials = *c.AllowCredentials
		}
		if c.MaxAge != nil {
			cors.MaxAge = *c.MaxAge
		}
		cors.Normalize()
		u.Cors = cors
	}
	// The rules the Lambda API applies too (internal/structs), on the attributes' ranges.
	su := structs.FunctionURL{AuthType: u.AuthType, InvokeMode: u.InvokeMode, Qualifier: u.Qualifier, Cors: u.Cors}
	diags = append(diags, fieldDiags(su.Validate(), urlAttrs, func(attr string) hcl.Range {
		if name, ok := strings.CutPrefix(attr, "cors."); ok {
			return attrRange(corsBody, name)
		}
		return attrRange(blk.Body, attr)
	})...)
	return u, diags
}

// urlAttrs maps the Lambda API's names of a function URL's settings to a url block's attributes.
var urlAttrs = map[string]string{
	"AuthType": "auth_type", "InvokeMode": "invoke_mode", "Qualifier": "qualifier",
	"Cors.MaxAge": "cors.max_age", "Cors.AllowOrigins": "cors.allow_origins", "Cors.AllowMethods": "cors.allow_methods",
	"Cors.AllowHeaders": "cors.allow_headers", "Cors.ExposeHeaders": "cors.expose_headers",
}

// Structs maps the block to the shared domain type, without the code hash (the caller's job).
func (f *Function) Structs() *structs.Function {
	env := make(map[string]string, len(f.Environment))
	for k, v := range f.Environment {
		env[k] = v
	}
	return &structs.Function{
		Name: f.Name, Description: f.Description, Runtime: f.Runtime, Handler: f.Handler,
		MemoryMB: f.MemoryMB, Timeout: f.Timeout, EphemeralStorageMB: f.EphemeralStorageMB,
		Environment: env, FreezeDelay: f.FreezeDelay,
	}
}

// functionAttrs maps the Lambda API's names of a function's settings (structs.FieldError.Field)
// to a function block's attributes; "" is the block's label.
var functionAttrs = map[string]string{
	"FunctionName": "", "Runtime": "runtime", "Handler": "handler", "Description": "description",
	"MemorySize": "memory_mb", "Timeout": "timeout", "EphemeralStorage.Size": "ephemeral_storage_mb",
	"GatewayOptions.FreezeDelayMs": "freeze_delay", "Environment.Variables": "environment",
	"ReservedConcurrentExecutions": "reserved_concurrency",
}

// aliasAttrs maps the Lambda API's names of an alias's settings to an alias block's attributes;
// "" is the block's label.
var aliasAttrs = map[string]string{"Name": "", "FunctionVersion": "version", "RoutingConfig.AdditionalVersionWeights": "routing",
	"Description": "description"}

// decodeAlias reads an alias block: alias "live" { version = 3  routing = { "4" = 0.1 } }.
func decodeAlias(blk *hcl.Block, ctx *hcl.EvalContext) (*Alias, hcl.Diagnostics) {
	var raw struct {
		Version     hcl.Expression      `hcl:"version"`
		Routing     *map[string]float64 `hcl:"routing,optional"`
		Description *string             `hcl:"description,optional"`
	}
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	a := &Alias{Name: blk.Labels[0], DeclRange: blk.DefRange}
	if v, _ := raw.Version.Value(ctx); v.IsNull() {
		rng := blk.DefRange
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing alias version",
			Detail: fmt.Sprintf("Alias %q needs version = <a published version's number> or \"$LATEST\".", a.Name), Subject: &rng})
	}
	if d := gohcl.DecodeExpression(raw.Version, ctx, &a.Version); d.HasErrors() {
		return nil, append(diags, d...)
	}
	if raw.Description != nil {
		a.Description = *raw.Description
	}
	if raw.Routing != nil {
		a.Routing = *raw.Routing
	}
	// The rules the Lambda API applies too (internal/structs), on the attributes' ranges.
	sa := structs.Alias{Name: a.Name, FunctionVersion: a.Version, AdditionalVersionWeights: a.Routing, Description: a.Description}
	attrs, _ := blk.Body.JustAttributes()
	diags = append(diags, fieldDiags(sa.Validate(), aliasAttrs, func(attr string) hcl.Range {
		if attr == "" {
			return blk.LabelRanges[0]
		}
		if a, ok := attrs[attr]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	})...)
	return a, diags
}

// Trigger is a trigger block: an event source mapping run by a trigger plugin.
type Trigger struct {
	structs.Trigger
	DeclRange hcl.Range
}

// decodeTrigger reads a trigger block:
//
//	trigger "orders" { plugin = "queue"  source = "orders"  batch_size = 10  on_failure { destination = "queue:dlq" } }
//
// aliases are the function's alias blocks: a qualifier that is not a number must be one of them.
func decodeTrigger(blk *hcl.Block, ctx *hcl.EvalContext, function string, aliases map[string]hcl.Range) (*Trigger, hcl.Diagnostics) {
	var raw struct {
		Plugin           string             `hcl:"plugin"`
		Source           string             `hcl:"source"`
		Qualifier        *string            `hcl:"qualifier,optional"`
		BatchSize        *int               `hcl:"batch_size,optional"`
		BatchWindow      hcl.Expression     `hcl:"batch_window,optional"`
		StartingPosition *string            `hcl:"starting_position,optional"`
		StartingAt       *string            `hcl:"starting_position_timestamp,optional"`
		Retries          *int               `hcl:"maximum_retry_attempts,optional"`
		RecordAge        hcl.Expression     `hcl:"maximum_record_age,optional"`
		Bisect           *bool              `hcl:"bisect_batch_on_function_error,optional"`
		ReportFailures   *bool              `hcl:"report_batch_item_failures,optional"`
		Enabled          *bool              `hcl:"enabled,optional"`
		Options          *map[string]string `hcl:"options,optional"`
		OnFailure        []struct {
			Destination string `hcl:"destination"`
		} `hcl:"on_failure,block"`
	}
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	attrs, _ := blk.Body.JustAttributes()
	at := func(name string) hcl.Range {
		if a, ok := attrs[name]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	}
	t := &Trigger{Trigger: structs.Trigger{Function: function, Name: blk.Labels[0], Plugin: raw.Plugin, Source: raw.Source,
		MaximumRetryAttempts: -1, Enabled: true}, DeclRange: blk.DefRange}
	if raw.Qualifier != nil {
		t.Qualifier = *raw.Qualifier
		if _, err := strconv.Atoi(t.Qualifier); err != nil && t.Qualifier != structs.LatestVersion {
			if _, ok := aliases[t.Qualifier]; !ok {
				diags = append(diags, rangeDiag("Unknown qualifier", fmt.Sprintf("%q is neither a version number, \"$LATEST\" nor an alias block of this function.", t.Qualifier), at("qualifier")))
			}
		}
	}
	if raw.BatchSize != nil {
		t.BatchSize = *raw.BatchSize
		if t.BatchSize == 0 { // 0 stands for the plugin's default in the shared rule; here one omits it
			diags = append(diags, rangeDiag("Invalid batch_size", fmt.Sprintf("0: a batch holds 1 to %d records; omit batch_size for the plugin's default.", structs.MaxTriggerBatchSize), at("batch_size")))
		}
	}
	if isSet(raw.BatchWindow) {
		d, dd := durationValue(raw.BatchWindow, ctx)
		diags = append(diags, dd...)
		t.BatchWindow = d
	}
	if raw.StartingPosition != nil {
		t.StartingPosition = *raw.StartingPosition
	}
	if raw.StartingAt != nil {
		ts, err := time.Parse(time.RFC3339, *raw.StartingAt)
		if err != nil {
			diags = append(diags, rangeDiag("Invalid starting_position_timestamp", fmt.Sprintf("%q: use RFC 3339, like 2026-01-02T15:04:05Z.", *raw.StartingAt), at("starting_position_timestamp")))
		}
		t.StartingPositionTimestamp = ts
		if t.StartingPosition != structs.AtTimestamp {
			diags = append(diags, rangeDiag("Unused starting_position_timestamp", "starting_position_timestamp goes with starting_position = \"AT_TIMESTAMP\".", at("starting_position_timestamp")))
		}
	}
	if raw.Retries != nil {
		t.MaximumRetryAttempts = *raw.Retries
	}
	if isSet(raw.RecordAge) {
		d, dd := durationValue(raw.RecordAge, ctx)
		diags = append(diags, dd...)
		t.MaximumRecordAge = d
	}
	if raw.Bisect != nil {
		t.BisectBatchOnFunctionError = *raw.Bisect
	}
	if raw.ReportFailures != nil {
		t.ReportBatchItemFailures = *raw.ReportFailures
	}
	if raw.Enabled != nil {
		t.Enabled = *raw.Enabled
	}
	if raw.Options != nil {
		t.Options = *raw.Options
	}
	for i, of := range raw.OnFailure {
		if i > 0 {
			diags = append(diags, rangeDiag("Duplicate on_failure block", "A trigger has one on_failure destination.", blk.DefRange))
			break
		}
		t.OnFailure = of.Destination
	}
	// The rules the API's triggers and event source mappings obey too (internal/structs); a
	// field is named as its attribute.
	diags = append(diags, fieldDiags(t.Check(), nil, func(attr string) hcl.Range {
		if attr == "name" {
			return blk.LabelRanges[0]
		}
		return at(attr)
	})...)
	return t, diags
}

// decodeProvisioned reads a provisioned_concurrency block. aliases are the function's alias
// blocks: a qualifier that is not a number must be one of them.
func decodeProvisioned(blk *hcl.Block, ctx *hcl.EvalContext, aliases map[string]hcl.Range) (*Provisioned, hcl.Diagnostics) {
	var raw struct {
		Qualifier hcl.Expression `hcl:"qualifier"`
		Count     int            `hcl:"count"`
	}
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	p := &Provisioned{Count: raw.Count, DeclRange: blk.DefRange}
	if v, _ := raw.Qualifier.Value(ctx); v.IsNull() {
		rng := blk.DefRange
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing qualifier",
			Detail: "provisioned_concurrency needs qualifier = <a published version's number> or <an alias of this function>.", Subject: &rng})
	}
	if d := gohcl.DecodeExpression(raw.Qualifier, ctx, &p.Qualifier); d.HasErrors() {
		return nil, append(diags, d...)
	}
	attrs, _ := blk.Body.JustAttributes()
	// The form is the API's rule too (internal/structs); the alias must be a block of this function.
	qdiags := fieldDiags(structs.ValidateProvisionedQualifier(p.Qualifier), map[string]string{"Qualifier": "qualifier"},
		func(string) hcl.Range { return raw.Qualifier.Range() })
	diags = append(diags, qdiags...)
	if _, err := strconv.Atoi(p.Qualifier); len(qdiags) == 0 && err != nil && aliases[p.Qualifier] == (hcl.Range{}) {
		diags = append(diags, rangeDiag("Unknown alias", fmt.Sprintf("%q is neither a version number nor an alias block of this function.", p.Qualifier), raw.Qualifier.Range()))
	}
	diags = append(diags, fieldDiags(structs.ValidateProvisionedCount(p.Count), map[string]string{"ProvisionedConcurrentExecutions": "count"},
		func(string) hcl.Range { return attrs["count"].Expr.Range() })...)
	return p, diags
}

// notYetSchema lists function blocks a later version of the gateway supports.
var notYetSchema = []hcl.BlockHeaderSchema{}

// LoadFunctions reads function files; a directory stands for every *.hcl file in it.
func LoadFunctions(paths ...string) ([]*Function, *Files, hcl.Diagnostics) {
	return LoadFunctionsWith(Inputs{}, paths...)
}

// LoadFunctionsWith reads function files with values for their variables. The files given
// together share their variable blocks, which any of them may declare.
func LoadFunctionsWith(in Inputs, paths ...string) ([]*Function, *Files, hcl.Diagnostics) {
	files := newFiles()
	var diags hcl.Diagnostics
	var out []*Function
	seen := map[string]hcl.Range{}
	type parsed struct {
		path string
		body hcl.Body
	}
	var bodies []parsed
	var decls []*hcl.Block
	for _, p := range expandPaths(paths, &diags) {
		f, d := files.parser.ParseHCLFile(p)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if d := agentFileDiag(p, f.Body); d != nil {
			diags = append(diags, d)
			continue // its function-file errors would only bury this one
		}
		content, rest, d := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "variable", LabelNames: []string{"name"}}}})
		diags = append(diags, d...)
		decls = append(decls, content.Blocks...)
		bodies = append(bodies, parsed{p, rest})
	}
	values, d := variableValues(files, decls, in)
	diags = append(diags, d...)
	if d.HasErrors() {
		return nil, files, diags // every use of a missing variable would only repeat it
	}
	ctx := evalContext()
	ctx.Variables["var"] = cty.ObjectVal(values)
	ctx.Functions = functions()
	for _, b := range bodies {
		fns, d := decodeFunctions(b.body, ctx, filepath.Dir(b.path))
		diags = append(diags, d...)
		for _, fn := range fns {
			if prev, dup := seen[fn.Name]; dup {
				rng := fn.DeclRange
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate function",
					Detail: fmt.Sprintf("Function %q is also declared at %s.", fn.Name, prev), Subject: &rng})
				continue
			}
			seen[fn.Name] = fn.DeclRange
			out = append(out, fn)
		}
	}
	return out, files, diags
}

// agentFileDiag says, at its first agent setting, that a file given as a function file is an
// agent file (a folder of function files may well hold one, as examples/ did); nil otherwise.
func agentFileDiag(path string, body hcl.Body) *hcl.Diagnostic {
	schema, _ := gohcl.ImpliedBodySchema(agentFile{})
	agentNames := map[string]bool{}
	for _, a := range schema.Attributes {
		agentNames[a.Name] = true
	}
	for _, b := range schema.Blocks {
		agentNames[b.Type] = true
	}
	type item struct {
		name string
		rng  hcl.Range
	}
	var found []item
	if sb, ok := body.(*hclsyntax.Body); ok {
		for name, a := range sb.Attributes {
			if agentNames[name] {
				found = append(found, item{name, a.NameRange})
			}
		}
		for _, b := range sb.Blocks {
			if agentNames[b.Type] {
				found = append(found, item{b.Type, b.TypeRange})
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].rng.Start.Byte < found[j].rng.Start.Byte })
	var names []string
	for _, it := range found {
		if !slices.Contains(names, it.name) {
			names = append(names, it.name)
		}
	}
	rng := found[0].rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Agent file given as a function file",
		Detail: fmt.Sprintf("%s is an agent file (it has %s): give apply, plan and validate only function files, and an agent file to gateway agent -config.",
			path, strings.Join(names, ", ")), Subject: &rng}
}

func expandPaths(paths []string, diags *hcl.Diagnostics) []string {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read function file", Detail: err.Error()})
			continue
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		m, _ := filepath.Glob(filepath.Join(p, "*.hcl"))
		sort.Strings(m)
		if len(m) == 0 {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No function files", Detail: fmt.Sprintf("Directory %s has no *.hcl file.", p)})
		}
		out = append(out, m...)
	}
	return out
}

func decodeFunctions(body hcl.Body, ctx *hcl.EvalContext, baseDir string) ([]*Function, hcl.Diagnostics) {
	schema := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "function", LabelNames: []string{"name"}}}}
	content, diags := body.Content(schema)
	var out []*Function
	for _, blk := range content.Blocks {
		fn, d := decodeFunction(blk, ctx, baseDir)
		diags = append(diags, d...)
		if fn != nil {
			out = append(out, fn)
		}
	}
	return out, diags
}

func decodeFunction(blk *hcl.Block, ctx *hcl.EvalContext, baseDir string) (*Function, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	// Blocks of later versions get a clear word instead of "Unsupported block type".
	partial, rest, d := blk.Body.PartialContent(&hcl.BodySchema{Blocks: append([]hcl.BlockHeaderSchema{{Type: "url"},
		{Type: "alias", LabelNames: []string{"name"}}, {Type: "provisioned_concurrency"}, {Type: "trigger", LabelNames: []string{"name"}}}, notYetSchema...)})
	diags = append(diags, d...)
	var urlBlocks, aliasBlocks, provBlocks, triggerBlocks []*hcl.Block
	for _, b := range partial.Blocks {
		if b.Type == "trigger" {
			triggerBlocks = append(triggerBlocks, b)
			continue
		}
		if b.Type == "provisioned_concurrency" {
			provBlocks = append(provBlocks, b)
			continue
		}
		if b.Type == "url" {
			urlBlocks = append(urlBlocks, b)
			continue
		}
		if b.Type == "alias" {
			aliasBlocks = append(aliasBlocks, b)
			continue
		}
		rng := b.DefRange
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Not supported yet",
			Detail: fmt.Sprintf("The %q block is not supported yet by this version of the gateway.", b.Type), Subject: &rng})
	}
	var raw struct {
		Runtime            string             `hcl:"runtime"`
		Code               hcl.Expression     `hcl:"code"`
		Handler            *string            `hcl:"handler,optional"`
		Description        *string            `hcl:"description,optional"`
		MemoryMB           *int               `hcl:"memory_mb,optional"`
		Timeout            hcl.Expression     `hcl:"timeout,optional"`
		EphemeralStorageMB *int               `hcl:"ephemeral_storage_mb,optional"`
		Environment        *map[string]string `hcl:"environment,optional"`
		FreezeDelay        hcl.Expression     `hcl:"freeze_delay,optional"`
		Publish            *bool              `hcl:"publish,optional"`
		Reserved           *int               `hcl:"reserved_concurrency,optional"`
	}
	d = gohcl.DecodeBody(rest, ctx, &raw)
	diags = append(diags, d...)
	if d.HasErrors() {
		return nil, diags
	}
	attrs, _ := blk.Body.JustAttributes()
	at := func(name string) hcl.Range {
		if a, ok := attrs[name]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	}
	fn := &Function{
		Name: blk.Labels[0], Runtime: raw.Runtime, MemoryMB: structs.DefaultMemoryMB,
		Timeout: structs.DefaultTimeout, EphemeralStorageMB: structs.DefaultEphemeralMB,
		Environment: map[string]string{}, DeclRange: blk.DefRange,
	}
	var code string
	if d := gohcl.DecodeExpression(raw.Code, ctx, &code); d.HasErrors() {
		diags = append(diags, d...)
	} else {
		if !filepath.IsAbs(code) {
			code = filepath.Join(baseDir, code)
		}
		if st, err := os.Stat(code); err != nil {
			diags = append(diags, rangeDiag("Code not found", fmt.Sprintf("%s: %v. Build the function first, or fix the path (relative to this file).", code, err), raw.Code.Range()))
		} else if !st.IsDir() && !strings.HasSuffix(strings.ToLower(code), ".zip") {
			diags = append(diags, rangeDiag("Invalid code", fmt.Sprintf("%s is neither a folder nor a .zip file.", code), raw.Code.Range()))
		}
		fn.Code = code
	}
	if raw.Handler != nil {
		fn.Handler = *raw.Handler
	}
	if raw.Description != nil {
		fn.Description = *raw.Description
	}
	if raw.MemoryMB != nil {
		fn.MemoryMB = *raw.MemoryMB
	}
	if raw.EphemeralStorageMB != nil {
		fn.EphemeralStorageMB = *raw.EphemeralStorageMB
	}
	// A duration that does not parse keeps the default, so its one diagnostic is the parse's.
	if isSet(raw.Timeout) {
		if t, d := durationValue(raw.Timeout, ctx); d.HasErrors() {
			diags = append(diags, d...)
		} else {
			fn.Timeout = t
		}
	}
	if isSet(raw.FreezeDelay) {
		if t, d := durationValue(raw.FreezeDelay, ctx); d.HasErrors() {
			diags = append(diags, d...)
		} else {
			fn.FreezeDelay = &t
		}
	}
	if raw.Publish != nil {
		fn.Publish = *raw.Publish
	}
	if raw.Reserved != nil {
		fn.ReservedConcurrency = raw.Reserved
		diags = append(diags, fieldDiags(structs.ValidateReservedConcurrency(*raw.Reserved), functionAttrs, at)...)
	}
	seen := map[string]hcl.Range{}
	for _, b := range aliasBlocks {
		a, d := decodeAlias(b, ctx)
		diags = append(diags, d...)
		if a == nil {
			continue
		}
		if first, dup := seen[a.Name]; dup {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate alias",
				Detail: fmt.Sprintf("Alias %q is already declared at %s.", a.Name, first), Subject: &rng})
			continue
		}
		seen[a.Name] = b.DefRange
		fn.Aliases = append(fn.Aliases, a)
	}
	provSeen := map[string]hcl.Range{}
	provTotal := 0
	for _, b := range provBlocks {
		p, d := decodeProvisioned(b, ctx, seen)
		diags = append(diags, d...)
		if p == nil {
			continue
		}
		if first, dup := provSeen[p.Qualifier]; dup {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate provisioned_concurrency",
				Detail: fmt.Sprintf("Qualifier %q already has a provisioned_concurrency block at %s.", p.Qualifier, first), Subject: &rng})
			continue
		}
		provSeen[p.Qualifier] = b.DefRange
		provTotal += p.Count
		if fn.ReservedConcurrency != nil && provTotal > *fn.ReservedConcurrency && *fn.ReservedConcurrency >= 0 {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Provisioned concurrency above the reservation",
				Detail: fmt.Sprintf("The provisioned_concurrency blocks ask for %d environments, more than reserved_concurrency = %d allows to run.", provTotal, *fn.ReservedConcurrency), Subject: &rng})
		}
		fn.Provisioned = append(fn.Provisioned, p)
	}
	trigSeen := map[string]hcl.Range{}
	for _, b := range triggerBlocks {
		tr, d := decodeTrigger(b, ctx, fn.Name, seen)
		diags = append(diags, d...)
		if tr == nil {
			continue
		}
		if first, dup := trigSeen[tr.Name]; dup {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate trigger",
				Detail: fmt.Sprintf("Trigger %q is already declared at %s.", tr.Name, first), Subject: &rng})
			continue
		}
		trigSeen[tr.Name] = b.DefRange
		fn.Triggers = append(fn.Triggers, tr)
	}
	for i, b := range urlBlocks {
		if i > 0 {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate url block",
				Detail: fmt.Sprintf("A function has one url block; the first is at %s.", urlBlocks[0].DefRange), Subject: &rng})
			continue
		}
		u, d := decodeURL(b, ctx)
		diags = append(diags, d...)
		fn.URL = u
	}
	if raw.Environment != nil {
		for k, v := range *raw.Environment {
			fn.Environment[k] = v
		}
	}
	// The rules the Lambda API applies too (internal/structs), on the attributes' ranges.
	diags = append(diags, fieldDiags(fn.Structs().Validate(), functionAttrs, func(attr string) hcl.Range {
		if attr == "" {
			return blk.LabelRanges[0]
		}
		return at(attr)
	})...)
	return fn, diags
}
