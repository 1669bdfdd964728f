package config

// The agent file: node name, listeners, cluster, sandbox, plugins, keys (LoadAgent).

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/structs"
)

// Agent is a node's configuration.
type Agent struct {
	NodeName string
	DataDir  string
	Region   string
	LogLevel string
	LogJSON  bool
	// Debug is the debug block: what the agent exposes for debugging it.
	Debug Debug
	// Tracing is the tracing block (span export over OTLP); nil: no tracing.
	Tracing *Tracing
	// Metrics is the metrics block: whether the agent collects metrics (GET /v1/metrics).
	Metrics Metrics
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
	// Async is how the node runs asynchronous invocations (the async block).
	Async Async
	// Runtimes are the runtime blocks: managed runtimes (nodejs20.x, python3.12, ...) zip
	// functions may name, each a base image whose ENTRYPOINT runs the function's handler.
	Runtimes []RuntimeImage
	// Registries are the registry blocks: credentials and plain HTTP for the container
	// registries image functions come from. A registry without a block is reached anonymously
	// or with the Docker config file's credentials (DOCKER_CONFIG, ~/.docker/config.json).
	Registries []Registry
	// Networks are the network blocks: private networks functions may be put on (their
	// network block, Lambda's VpcConfig); EgressPolicies the egress_policy blocks functions
	// may add to their network's egress.
	Networks       []Network
	EgressPolicies []EgressPolicy
	// FileSystems are the file_system blocks: host folders and NFS exports functions mount
	// under /mnt, in file order.
	FileSystems []FileSystem
	// Signing is what the node trusts to sign code: the signing_publisher blocks (code signing
	// configurations name them), and the keys and certificates of the code_signing block's
	// revoked list, refused whoever they belong to. Never nil.
	Signing *signing.Trust
}

// RuntimeImage is one runtime block: runtime "nodejs20.x" { image = "..." }.
type RuntimeImage struct {
	Name  string
	Image string // an image reference, as an image function's image_uri
}

// Registry is one registry block.
type Registry struct {
	Host     string // host[:port], as image URIs name it
	Username string
	Password string
	Insecure bool // plain HTTP
}

// String never shows the password.
func (r Registry) String() string {
	return fmt.Sprintf("registry %q (user %q, password redacted, insecure %v)", r.Host, r.Username, r.Insecure)
}

// CodeGC is the code_gc block: every Interval, the node deletes the code zips and unpacked trees
// that the replicated state and its environments have not referenced for Grace.
type CodeGC struct {
	Grace    time.Duration
	Interval time.Duration
}

// Async is the async block: asynchronous invocations are kept on NATS JetStream (the nats
// block's) until they have run.
type Async struct {
	// RetryDelay is the wait before a failed event's first retry (Lambda's one minute); the
	// second waits twice as long. Shorter for tests.
	RetryDelay time.Duration
	// Replicas of the events' JetStream stream, 1 to 5 (3 survives a server); 0 is the default:
	// 1 on the embedded server alone or an external NATS, and with nats { routes } as many as
	// the nodes the routes name, up to 3 (the agent counts them: NATS.Routes may hold its own).
	Replicas int
	// PerFunction bounds one function's events running at once on this node.
	PerFunction int
	// RedeliverAfter is how long an event taken by a node that stopped answering (killed,
	// partitioned) waits before another node, or this one restarted, runs it.
	RedeliverAfter time.Duration
}

// Defaults of the async block.
const (
	DefaultAsyncRetryDelay     = time.Minute
	DefaultAsyncPerFunction    = 10
	DefaultAsyncRedeliverAfter = 30 * time.Second
)

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
	// ClusterListen is host:port of the embedded server's route listener, and Routes the route
	// addresses of the other nodes' servers (this node's own may be among them, so that every
	// node is given one list): with them the nodes' embedded servers form one NATS cluster, with
	// clustered JetStream. Both or neither; never with URL.
	ClusterListen string
	Routes        []string
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
	// PolicyMetrics allows reading metrics only (GET /v1/metrics and a function's recent
	// history): what a Prometheus scraper is given.
	PolicyMetrics = "metrics"
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

// Metrics is the agent's metrics block.
type Metrics struct {
	// Enabled collects metrics and serves them at /v1/metrics (the default); off, nothing is
	// counted (for comparing the cost) and /v1/metrics answers 404.
	Enabled bool
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
		Async: Async{RetryDelay: DefaultAsyncRetryDelay, PerFunction: DefaultAsyncPerFunction,
			RedeliverAfter: DefaultAsyncRedeliverAfter},
		Cluster: Cluster{Address: "127.0.0.1:9501", Bootstrap: true},
		Metrics: Metrics{Enabled: true},
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
	NodeName *string             `hcl:"node_name,optional"`
	DataDir  *string             `hcl:"data_dir,optional"`
	Region   *string             `hcl:"region,optional"`
	LogLevel *string             `hcl:"log_level,optional"`
	LogJSON  *bool               `hcl:"log_json,optional"`
	OldDebug *bool               `hcl:"enable_debug,optional"` // deprecated: debug { pprof }
	Debug    *debugBlock         `hcl:"debug,block"`
	Tracing  *tracingBlock       `hcl:"tracing,block"`
	Metrics  *metricsBlock       `hcl:"metrics,block"`
	Procs    *int                `hcl:"gomaxprocs,optional"`
	HTTP     *httpBlock          `hcl:"http,block"`
	Cluster  *clusterBlock       `hcl:"cluster,block"`
	Sandbox  *sandboxBlock       `hcl:"sandbox,block"`
	Keys     []accessKeyBlock    `hcl:"access_key,block"`
	Plugins  []pluginBlock       `hcl:"plugin,block"`
	NATS     *natsBlock          `hcl:"nats,block"`
	CodeGC   *codeGCBlock        `hcl:"code_gc,block"`
	Async    *asyncBlock         `hcl:"async,block"`
	Regs     []registryBlock     `hcl:"registry,block"`
	Runtimes []runtimeBlock      `hcl:"runtime,block"`
	Networks []networkBlock      `hcl:"network,block"`
	Egress   []egressPolicyBlock `hcl:"egress_policy,block"`
	FileSys  []fileSystemBlock   `hcl:"file_system,block"`
	// Code signing: the publishers this node trusts, and what it refuses.
	Publishers  []signingPublisherBlock `hcl:"signing_publisher,block"`
	CodeSigning *codeSigningBlock       `hcl:"code_signing,block"`
}

type runtimeBlock struct {
	Name  string   `hcl:"name,label"`
	Image string   `hcl:"image"`
	Body  hcl.Body `hcl:",body"`
}

// decodeRuntimes validates the runtime blocks.
func decodeRuntimes(blocks []runtimeBlock) ([]RuntimeImage, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var out []RuntimeImage
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		decl := b.Body.MissingItemRange()
		switch {
		case structs.ValidRuntime(b.Name):
			diags = append(diags, rangeDiag("Built-in runtime", fmt.Sprintf("%q is a built-in runtime (the function's own bootstrap); a runtime block declares another one, like nodejs20.x.", b.Name), decl))
			continue
		case !structs.ValidRuntimeName(b.Name):
			diags = append(diags, rangeDiag("Invalid runtime name", fmt.Sprintf("%q is not a runtime name: lower-case letters, digits, '.' and '-', starting with a letter (nodejs20.x, python3.12).", b.Name), decl))
			continue
		}
		if prev, dup := seen[b.Name]; dup {
			diags = append(diags, rangeDiag("Duplicate runtime block", fmt.Sprintf("runtime %q is also declared at %s.", b.Name, prev), decl))
			continue
		}
		seen[b.Name] = decl
		if strings.TrimSpace(b.Image) == "" {
			diags = append(diags, attrDiag(b.Body, "image", "Invalid runtime image", fmt.Sprintf("runtime %q needs an image: a registry's host/repository:tag, oci-layout:/PATH[:tag] or docker-archive:/FILE.", b.Name)))
			continue
		}
		out = append(out, RuntimeImage{Name: b.Name, Image: b.Image})
	}
	return out, diags
}

type registryBlock struct {
	Host         string   `hcl:"host,label"`
	Username     *string  `hcl:"username,optional"`
	Password     *string  `hcl:"password,optional"`
	PasswordFile *string  `hcl:"password_file,optional"`
	Insecure     *bool    `hcl:"insecure,optional"`
	Body         hcl.Body `hcl:",body"`
}

// registryHostRE is host[:port] as image references name a registry.
var registryHostRE = regexp.MustCompile(`^(localhost|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?$`)

// decodeRegistries validates the registry blocks and reads their password files; no diagnostic
// quotes a password.
func decodeRegistries(blocks []registryBlock, baseDir string) ([]Registry, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var out []Registry
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		decl := b.Body.MissingItemRange()
		if prev, dup := seen[b.Host]; dup {
			diags = append(diags, rangeDiag("Duplicate registry block", fmt.Sprintf("registry %q is also declared at %s.", b.Host, prev), decl))
			continue
		}
		seen[b.Host] = decl
		if !registryHostRE.MatchString(b.Host) {
			diags = append(diags, rangeDiag("Invalid registry host",
				fmt.Sprintf("%q is not a registry host: write it as image URIs name it, host or host:port (registry.example:5000), without a scheme or path.", b.Host), decl))
			continue
		}
		r := Registry{Host: b.Host}
		if b.Username != nil {
			r.Username = *b.Username
		}
		if b.Insecure != nil {
			r.Insecure = *b.Insecure
		}
		switch {
		case b.Password != nil && b.PasswordFile != nil:
			diags = append(diags, attrDiag(b.Body, "password_file", "Conflicting registry passwords",
				fmt.Sprintf("registry %q sets both password and password_file; keep one of them.", b.Host)))
		case b.Password != nil:
			r.Password = *b.Password
		case b.PasswordFile != nil:
			path := *b.PasswordFile
			if !filepath.IsAbs(path) {
				path = filepath.Join(baseDir, path)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				diags = append(diags, attrDiag(b.Body, "password_file", "Cannot read password_file",
					fmt.Sprintf("registry %q: %v. The path is relative to this file.", b.Host, err)))
				break
			}
			r.Password = strings.TrimSpace(string(src))
		}
		if (r.Username == "") != (r.Password == "") {
			diags = append(diags, rangeDiag("Incomplete registry credentials",
				fmt.Sprintf("registry %q needs both username and a password (password or password_file), or neither.", b.Host), decl))
		}
		out = append(out, r)
	}
	return out, diags
}

type asyncBlock struct {
	RetryDelay     hcl.Expression `hcl:"retry_delay,optional"`
	RedeliverAfter hcl.Expression `hcl:"redeliver_after,optional"`
	Replicas       *int           `hcl:"replicas,optional"`
	PerFunction    *int           `hcl:"per_function,optional"`
	Body           hcl.Body       `hcl:",body"`
}

type codeGCBlock struct {
	Grace    hcl.Expression `hcl:"grace,optional"`
	Interval hcl.Expression `hcl:"interval,optional"`
}

type metricsBlock struct {
	Enabled *bool `hcl:"enabled,optional"`
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
	Listen          *string   `hcl:"listen,optional"`
	URL             *string   `hcl:"url,optional"`
	CredentialsFile *string   `hcl:"credentials_file,optional"`
	ClusterListen   *string   `hcl:"cluster_listen,optional"`
	Routes          *[]string `hcl:"routes,optional"`
	Body            hcl.Body  `hcl:",body"`
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
	if raw.Tracing != nil {
		var d hcl.Diagnostics
		a.Tracing, d = decodeTracing(raw.Tracing)
		diags = append(diags, d...)
	}
	if raw.Metrics != nil && raw.Metrics.Enabled != nil {
		a.Metrics.Enabled = *raw.Metrics.Enabled
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
	if raw.NATS != nil && raw.NATS.Routes != nil && strings.IndexFunc(a.NodeName, unicode.IsSpace) >= 0 {
		// The embedded NATS server is named after the node, and NATS names have no spaces.
		diags = append(diags, attrDiag(body, "node_name", "Invalid node name",
			fmt.Sprintf("%q: with nats { routes } the node's name is its NATS server's too, which has no spaces.", a.NodeName)))
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
	regs, d := decodeRegistries(raw.Regs, baseDir)
	diags = append(diags, d...)
	a.Registries = regs
	a.Signing, d = decodeSigning(raw.Publishers, raw.CodeSigning, baseDir)
	diags = append(diags, d...)
	rts, d := decodeRuntimes(raw.Runtimes)
	diags = append(diags, d...)
	a.Runtimes = rts
	a.Networks, a.EgressPolicies, d = decodeNetworks(raw.Networks, raw.Egress, baseDir)
	diags = append(diags, d...)
	fss, d := decodeFileSystems(raw.FileSys, baseDir)
	diags = append(diags, d...)
	a.FileSystems = fss
	if len(fss) > 0 && a.Sandbox.Driver == "process" {
		diags = append(diags, rangeDiag("File systems need the libcontainer driver",
			"The process driver runs functions as plain processes of the host, with no /mnt of their own to mount a file system in: use sandbox { driver = \"libcontainer\" }, or remove the file_system blocks.",
			fss[0].DeclRange))
	}
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
		diags = append(diags, decodeNATSCluster(&a.NATS, n)...)
		// (With join or bootstrap_expect the same is said of the cluster port above.)
		if len(keys) > 0 && a.Cluster.TLS == nil && len(a.NATS.Routes) > 0 && len(a.Cluster.Join) == 0 && a.Cluster.BootstrapExpect <= 1 {
			diags = append(diags, attrDiag(n.Body, "routes", "NATS routes without mutual TLS",
				"This node has access keys, but its NATS routes would admit any server that reaches them, to read and write every "+
					"event. Add cluster { tls { ca, cert, key } } with certificates of one CA on every node (`gateway tls ca create`, "+
					"then `gateway tls cert create -node` for each): the routes use them too."))
		}
	}
	if b := raw.Async; b != nil {
		if isSet(b.RetryDelay) {
			v, dd := durationAttr(b.RetryDelay, ctx, time.Millisecond, 0)
			diags = append(diags, dd...)
			a.Async.RetryDelay = v
		}
		if isSet(b.RedeliverAfter) {
			// At least a second: a running event is kept alive at a third of it.
			v, dd := durationAttr(b.RedeliverAfter, ctx, time.Second, time.Hour)
			diags = append(diags, dd...)
			a.Async.RedeliverAfter = v
		}
		if b.Replicas != nil {
			switch r := *b.Replicas; {
			case r < 1 || r > 5:
				diags = append(diags, attrDiag(b.Body, "replicas", "Invalid replicas", fmt.Sprintf("replicas = %d: JetStream keeps 1 to 5 replicas of a stream.", r)))
			case r > 1 && a.NATS.URL == "" && len(a.NATS.Routes) == 0:
				diags = append(diags, attrDiag(b.Body, "replicas", "Invalid replicas",
					fmt.Sprintf("replicas = %d: the embedded NATS of a node alone keeps one replica. Cluster the nodes' servers with "+
						"nats { cluster_listen, routes }, or use an external NATS cluster (nats { url }).", r)))
			}
			a.Async.Replicas = *b.Replicas
		}
		if b.PerFunction != nil {
			if *b.PerFunction < 1 || *b.PerFunction > 1000 {
				diags = append(diags, attrDiag(b.Body, "per_function", "Invalid per_function", fmt.Sprintf("per_function = %d: use 1 to 1000 events of one function running at once on a node.", *b.PerFunction)))
			}
			a.Async.PerFunction = *b.PerFunction
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

// decodeNATSCluster applies the nats block's cluster_listen and routes: the route listener of
// the embedded server and the other nodes' route addresses.
func decodeNATSCluster(dst *NATS, n *natsBlock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if n.ClusterListen != nil {
		dst.ClusterListen = *n.ClusterListen
		if err := checkHostPort(dst.ClusterListen, true); err != nil {
			diags = append(diags, attrDiag(n.Body, "cluster_listen", "Invalid cluster_listen",
				fmt.Sprintf("cluster_listen %q is not where the embedded NATS listens for the other nodes' routes: %v (such as \"0.0.0.0:6222\").", dst.ClusterListen, err)))
		}
	}
	if n.Routes != nil {
		dst.Routes = *n.Routes
		seen := map[string]bool{}
		for _, r := range dst.Routes {
			switch err := checkHostPort(r, false); {
			case err != nil:
				diags = append(diags, attrDiag(n.Body, "routes", "Invalid route",
					fmt.Sprintf("%q is not the host:port of another node's NATS cluster_listen: %v.", r, err)))
			case seen[r]:
				// JetStream sizes its first quorum from the number of routes.
				diags = append(diags, attrDiag(n.Body, "routes", "Duplicate route", fmt.Sprintf("%q is listed twice.", r)))
			}
			seen[r] = true
		}
	}
	clustered := dst.ClusterListen != "" || len(dst.Routes) > 0
	switch {
	case clustered && dst.URL != "":
		name := "routes"
		if len(dst.Routes) == 0 {
			name = "cluster_listen"
		}
		diags = append(diags, attrDiag(n.Body, name, "Conflicting NATS settings",
			"cluster_listen and routes make the nodes' embedded NATS servers one cluster; url names an external NATS instead, "+
				"and the agent then runs none. Keep one or the other."))
	case dst.ClusterListen != "" && len(dst.Routes) == 0:
		diags = append(diags, attrDiag(n.Body, "cluster_listen", "Missing NATS routes",
			"cluster_listen needs routes = [...]: the other nodes' cluster_listen addresses (give every node the same list, "+
				"its own address included)."))
	case len(dst.Routes) > 0 && dst.ClusterListen == "":
		diags = append(diags, attrDiag(n.Body, "routes", "Missing cluster_listen",
			"routes needs cluster_listen: where this node's embedded NATS listens for the other nodes' routes (such as \"0.0.0.0:6222\")."))
	}
	return diags
}

// checkHostPort checks host:port with a numeric port of 1 to 65535; the host may be empty (all
// addresses) only for a listener.
func checkHostPort(addr string, listener bool) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if port, err := strconv.Atoi(portStr); err != nil || port < 1 || port > 65535 {
		return errors.New("the port must be a number from 1 to 65535")
	}
	if host == "" && !listener {
		return errors.New("the host is missing")
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q is not a host name or address", host)
	}
	return nil
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
				fmt.Sprintf("access_key %q needs a policy: \"admin\" (every operation), \"invoke\" (invoking functions only) or \"metrics\" (reading metrics only).", b.Name), decl))
		case *b.Policy == PolicyAdmin || *b.Policy == PolicyInvoke || *b.Policy == PolicyMetrics:
			k.Policy = *b.Policy
		default:
			diags = append(diags, attrDiag(b.Body, "policy", "Invalid access key policy",
				fmt.Sprintf("access_key %q: policy %q is not one of \"admin\" (every operation), \"invoke\" (invoking functions only) or \"metrics\" (reading metrics only).", b.Name, *b.Policy)))
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
