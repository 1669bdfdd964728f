// Package gateway is the invocation core and function management of a node: it resolves a
// function and qualifier from the replicated state, hands the invocation to the sandbox, runs
// Event invocations from a bounded backlog, and validates and stores function changes.
package gateway

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/internal/unpack"
	"github.com/lambdagw/gateway/plugins/sdk"
)

// Invoker runs invocations (the sandbox manager).
type Invoker interface {
	Invoke(ctx context.Context, fn *structs.Function, req *invoke.Request) (*invoke.Response, error)
}

// Store reads functions locally and writes them through Raft (the cluster node).
type Store interface {
	Function(name string) (*structs.Function, bool)
	Functions() []*structs.Function
	PutFunction(ctx context.Context, fn *structs.Function, expectRevision string) (*structs.Function, error)
	DeleteFunction(ctx context.Context, name string) error
	DeleteVersion(ctx context.Context, name, version string) error
	FunctionURL(id string) (*structs.FunctionURL, bool)
	FunctionURLs(fn string) []*structs.FunctionURL
	PutFunctionURL(ctx context.Context, u *structs.FunctionURL, create, update bool) (*structs.FunctionURL, error)
	DeleteFunctionURL(ctx context.Context, id string) error
	Version(name, number string) (*structs.Function, bool)
	Versions(name string) []*structs.Function
	PublishVersion(ctx context.Context, name, description, expectRevision, codeSha256 string) (*structs.Function, error)
	Alias(fn, name string) (*structs.Alias, bool)
	Aliases(fn string) []*structs.Alias
	PutAlias(ctx context.Context, a *structs.Alias, create, update bool, expectRevision string) (*structs.Alias, error)
	DeleteAlias(ctx context.Context, fn, name string) error
	ReservedConcurrency(fn string) (int, bool)
	ReservedTotal() int
	PutConcurrency(ctx context.Context, fn string, reserved *int) error
	PolicyStatements(fn, qualifier string) []*structs.PolicyStatement
	AddPolicyStatement(ctx context.Context, st *structs.PolicyStatement) error
	RemovePolicyStatement(ctx context.Context, fn, qualifier, sid string) error
	ProvisionedConcurrency(fn, qualifier string) (*structs.ProvisionedConcurrency, bool)
	ProvisionedConcurrencies(fn string) []*structs.ProvisionedConcurrency
	PutProvisionedConcurrency(ctx context.Context, p *structs.ProvisionedConcurrency) error
	DeleteProvisionedConcurrency(ctx context.Context, fn, qualifier string) error
	Trigger(fn, name string) (*structs.Trigger, bool)
	Triggers(fn string) []*structs.Trigger
	TriggerByUUID(uuid string) (*structs.Trigger, bool)
	PutTrigger(ctx context.Context, t *structs.Trigger) (*structs.Trigger, error)
	DeleteTrigger(ctx context.Context, fn, name string) error
	EventConfigs
	EventInvokeConfigs(fn string) []*structs.EventInvokeConfig
	// PutEventInvokeConfig replaces a qualifier's configuration; with update only one that
	// exists.
	PutEventInvokeConfig(ctx context.Context, c *structs.EventInvokeConfig, update bool) (*structs.EventInvokeConfig, error)
	DeleteEventInvokeConfig(ctx context.Context, fn, qualifier string) error
	LayerStore
	CodeSigningStore
}

// ProvisionReporter tells how far provisioned concurrency is (the sandbox manager).
type ProvisionReporter interface {
	ProvisionedStatus(function, version string) (ready int, failure string)
}

// CodeStore keeps code zips by hash.
type CodeStore interface {
	Put(ctx context.Context, r io.Reader, maxBytes int64) (sha256hex string, size int64, err error)
	Has(sha string) bool
	// Reuse returns the size of a stored zip, for a write naming it by hash, and keeps the
	// store from deleting it as unreferenced before that write is committed.
	Reuse(sha string) (int64, bool)
	// UnzippedSize is what a stored zip unpacks to.
	UnzippedSize(sha string) (int64, error)
}

// Errors of the Store the gateway maps to Lambda's exceptions. NoLeader is a write that found
// no leader (the node is cut off, or the cluster lost its majority).
type StoreErrors struct {
	NotFound, Conflict, Exists, NoLeader error
	// NoAnswer is a write the leader did not answer in time: it may have been made.
	NoAnswer error
}

// Config configures a Gateway.
type Config struct {
	Region  string
	Invoker Invoker
	Store   Store
	Code    CodeStore
	Logger  hclog.Logger
	// Tracer records the admit phase of invocations as spans; nil when tracing is off.
	Tracer invoke.Tracer
	// StoreErrors lets the gateway recognise the store's not-found and conflict errors.
	StoreErrors StoreErrors
	// MaxAsync bounds the backlog of accepted Event invocations.
	MaxAsync int
	// AsyncWorkers run Event invocations.
	AsyncWorkers int
	// Provisioning reports the readiness of provisioned environments; without it every
	// configuration reads as in progress.
	Provisioning ProvisionReporter
	// URLAddress gives the address a function URL id is served at (FunctionUrl in the API).
	URLAddress func(id string) string
	// Leases, in a cluster, holds this node's share of reserved concurrency; without it (or on
	// a single node) reservations are counted on the node.
	Leases Leaser
	// MaxConcurrency caps the invocations running on the node (Lambda's account limit):
	// reserved concurrency is carved out of it, unreserved functions share the rest. 0 is no
	// cap beyond the sandbox's capacity.
	MaxConcurrency int
	// Plugins tells which trigger plugins this node runs, and takes the records of destinations
	// naming one; without it any name is accepted and those records wait.
	Plugins Plugins
	// Queues receives the records of "queue:NAME" destinations.
	Queues QueuePublisher
	// Images resolves and fetches the images of PackageType Image functions; without it
	// they are refused.
	Images Images
	// Runtimes names the managed runtimes this node declares (runtime blocks); without it,
	// only the built-in custom runtimes.
	Runtimes func() []string
	// Networks is the node's private networks and egress policies (network and egress_policy
	// blocks); without it a function naming a network is refused.
	Networks NetworkCatalog
	// FileSystems lists the file systems this node declares (file_system blocks), which
	// functions may mount; without it, none.
	FileSystems func() []structs.NodeFileSystem
	// Events keeps Event invocations durably and runs them on this node; without it they are
	// kept in memory (MaxAsync, AsyncWorkers), lost with the process.
	Events EventQueue
	// RetryDelay is the wait before an event's first retry (DefaultRetryDelay when 0); the
	// second waits twice as long.
	RetryDelay time.Duration
	// PeerCounters, in a cluster, gathers the other nodes' counts of a function's events.
	PeerCounters ClusterCounters
	// Verifier checks code signatures with the node's publishers; without it no code signing
	// configuration can be made, and code deployed under one does not verify.
	Verifier CodeVerifier
	// Metrics counts throttles; nil: nothing is counted.
	Metrics Metrics
}

// Images is what the gateway asks of the node's image store when an image function is
// deployed. Errors a client caused (no such image, refused credentials, too large) come back
// as Lambda API errors.
type Images interface {
	// Resolve pins uri to its image's digest and makes sure the image is on this node, so that
	// a deploy that answered can run.
	Resolve(ctx context.Context, uri string) (resolved string, err error)
}

// Overflow is an Invoker that can run a call beyond this node's share of the unreserved
// concurrency on a peer whose share has room (the cluster's Router); invoke.ErrNoCapacity
// when none has.
type Overflow interface {
	InvokeElsewhere(ctx context.Context, fn *structs.Function, req *invoke.Request) (*invoke.Response, error)
}

// Plugins is what the gateway asks of the plugin host.
type Plugins interface {
	// HasTrigger says whether a trigger plugin of that name is configured on this node.
	HasTrigger(name string) bool
	// SendRecord hands a record to a plugin's target ("<plugin>:<target>" destinations).
	SendRecord(ctx context.Context, plugin string, r sdk.Record) error
}

// Gateway is the invocation core.
type Gateway struct {
	cfg    Config
	logger hclog.Logger

	// routing counts the invocations of each weighted alias (by ARN), so its split is exact.
	routing sync.Map
	// inflight counts each function's invocations running on this node, for its reserved
	// concurrency.
	inflightMu sync.Mutex
	inflight   map[string]int
	// unreserved counts the running invocations of functions without a reservation.
	unreserved int
	// held are this node's leases of reserved concurrency (guarded by inflightMu); leaseMu
	// serialises changing them.
	held map[string]*heldLease
	// noLease holds, per function, until when a failed lease ask is not repeated (under leaseMu):
	// without a leader every ask would wait its full bound, one caller after another.
	noLease    map[string]time.Time
	leaseMu    sync.Mutex
	stopLeases chan struct{}

	async   chan *asyncCall
	asyncWG sync.WaitGroup
	// stopEvents stops running events of the durable queue; eventsDone is closed once the
	// running ones settled.
	stopEvents context.CancelFunc
	eventsDone chan struct{}
	// asyncStats holds each function's *asyncCounters.
	asyncStats sync.Map
	closeOnce  sync.Once
	mu         sync.RWMutex
	closed     bool
}

type asyncCall struct {
	fn  *structs.Function
	req *invoke.Request
}

// New starts a gateway (and its async workers).
func New(cfg Config) (*Gateway, error) {
	if cfg.Invoker == nil || cfg.Store == nil || cfg.Code == nil {
		return nil, errors.New("gateway needs an invoker, a store and a code store")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MaxAsync <= 0 {
		cfg.MaxAsync = 10000
	}
	if cfg.AsyncWorkers <= 0 {
		cfg.AsyncWorkers = 8
	}
	g := &Gateway{cfg: cfg, logger: cfg.Logger.Named("gateway"), async: make(chan *asyncCall, cfg.MaxAsync), inflight: map[string]int{},
		held: map[string]*heldLease{}, noLease: map[string]time.Time{}, stopLeases: make(chan struct{})}
	if cfg.Leases != nil {
		g.asyncWG.Add(1)
		go func() { defer g.asyncWG.Done(); g.renewLeases(g.stopLeases) }()
	}
	for i := 0; i < cfg.AsyncWorkers; i++ {
		g.asyncWG.Add(1)
		go g.asyncWorker()
	}
	if cfg.Events != nil {
		ctx, cancel := context.WithCancel(context.Background())
		g.stopEvents, g.eventsDone = cancel, make(chan struct{})
		go func() { defer close(g.eventsDone); cfg.Events.Serve(ctx, g.runEvent) }()
	}
	return g, nil
}

// Region is the region functions see and ARNs name.
func (g *Gateway) Region() string { return g.cfg.Region }

// Invocation types.
const (
	RequestResponse = "RequestResponse"
	Event           = "Event"
	DryRun          = "DryRun"
)

// InvokeInput is one call of the Invoke API.
type InvokeInput struct {
	FunctionName   string // name, name:qualifier or ARN
	Qualifier      string
	InvocationType string
	LogTail        bool
	ClientContext  string // decoded JSON
	Payload        []byte
	RequestID      string // set by the HTTP layer so its header and the runtime agree
	// AcceptStream takes a response the runtime streams as InvokeOutput.Stream (function URLs
	// in RESPONSE_STREAM mode, InvokeWithResponseStream) instead of reading it whole.
	AcceptStream bool
	// TraceID is the invocation's X-Ray trace header (invoke.TraceFromHeaders); a new one is made
	// when empty.
	TraceID string
	// TraceFromCaller says the caller sent TraceID (its span is the parent of the first span).
	TraceFromCaller bool
}

// InvokeOutput is the outcome: Status 200 (with the function's response or error), 202 or 204.
type InvokeOutput struct {
	Status          int
	Payload         []byte
	FunctionError   string
	ExecutedVersion string
	LogTail         []byte
	// ContentType is the Content-Type of the runtime's buffered response.
	ContentType string
	// Stream is the function's response as the runtime writes it, when AcceptStream was set;
	// Payload is then empty and the log tail comes from Stream.LogTail. The caller reads it
	// to its end and always Closes it (closing early cancels the invocation).
	Stream invoke.Stream
}

// qualified finds function nameOrARN at a qualifier (in the name or given apart): $LATEST, a
// published version, or an alias, which it returns too. It does not route: callers that
// describe read an alias's main version, invocations route by weight (resolve).
func (g *Gateway) qualified(nameOrARN, qualifier string) (fn *structs.Function, alias *structs.Alias, err error) {
	name, q, err := lambda.ParseFunctionName(nameOrARN)
	if err != nil {
		return nil, nil, err
	}
	if qualifier != "" && q != "" && qualifier != q {
		return nil, nil, lambda.InvalidParameter("the qualifier %q differs from the one in the function name (%q)", qualifier, q)
	}
	if qualifier == "" {
		qualifier = q
	}
	latest, ok := g.cfg.Store.Function(name)
	if !ok {
		return nil, nil, lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, name, qualifier))
	}
	if qualifier == "" || qualifier == structs.LatestVersion {
		return latest, nil, nil
	}
	if v, ok := g.cfg.Store.Version(name, qualifier); ok {
		return v, nil, nil
	}
	if a, ok := g.cfg.Store.Alias(name, qualifier); ok {
		return latest, a, nil
	}
	return nil, nil, lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, name, qualifier))
}

// atVersion is version v of the function whose $LATEST is latest.
func (g *Gateway) atVersion(latest *structs.Function, v string) (*structs.Function, error) {
	if v == structs.LatestVersion {
		return latest, nil
	}
	if fn, ok := g.cfg.Store.Version(latest.Name, v); ok {
		return fn, nil
	}
	return nil, lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, latest.Name, v))
}

// resolve finds the function version an invocation runs, and the version it reports: an
// alias picks one of its versions by weight.
func (g *Gateway) resolve(nameOrARN, qualifier string) (*structs.Function, string, error) {
	fn, alias, err := g.qualified(nameOrARN, qualifier)
	if err != nil {
		return nil, "", err
	}
	if alias != nil {
		if fn, err = g.atVersion(fn, g.route(alias)); err != nil {
			return nil, "", err
		}
	}
	return fn, fn.Qualifier(), nil
}

// Invoke runs (or queues, or dry-runs) one invocation.
func (g *Gateway) Invoke(ctx context.Context, in *InvokeInput) (*InvokeOutput, error) {
	fn, version, err := g.resolve(in.FunctionName, in.Qualifier)
	if err != nil {
		return nil, err
	}
	if in.RequestID == "" {
		in.RequestID = uuid.NewString()
	}
	if in.TraceID == "" {
		in.TraceID = invoke.NewTraceID()
	}
	arn := lambda.FunctionARN(g.cfg.Region, fn.Name, in.Qualifier)
	req := &invoke.Request{
		RequestID: in.RequestID, Payload: in.Payload, InvokedFunctionARN: arn, Version: version,
		ClientContext: in.ClientContext, Tail: in.LogTail, AcceptStream: in.AcceptStream, TraceID: in.TraceID,
	}
	switch in.InvocationType {
	case "", RequestResponse:
	case DryRun:
		return &InvokeOutput{Status: 204, ExecutedVersion: version}, nil
	case Event:
		if g.cfg.Events != nil {
			_, q, _ := lambda.ParseFunctionName(in.FunctionName)
			return g.enqueueDurable(ctx, fn, cmp.Or(in.Qualifier, q), req)
		}
		return g.enqueue(fn, req)
	default:
		return nil, lambda.InvalidParameter("invalid invocation type %q: use RequestResponse, Event or DryRun", in.InvocationType)
	}
	run := g.cfg.Invoker.Invoke
	var admitSpan invoke.Span
	if t := g.cfg.Tracer; t != nil {
		_, admitSpan = t.Start(ctx, invoke.PhaseAdmit, invoke.SpanInfo{TraceID: req.TraceID, FromCaller: in.TraceFromCaller,
			RequestID: req.RequestID, Function: fn.Name, Version: version})
	}
	release, err := g.admit(ctx, fn.Name)
	if err == errPoolFull {
		// This node's unreserved share is taken: a peer's share may have room.
		if o, ok := g.cfg.Invoker.(Overflow); ok {
			release, run, err = func() {}, o.InvokeElsewhere, nil
		}
	}
	if admitSpan != nil {
		admitSpan.End(lambda.ErrorType(err))
	}
	if err != nil {
		g.countThrottle(fn.Name, arn, err)
		return nil, err
	}
	resp, err := run(ctx, fn, req)
	if err != nil {
		release()
		g.countThrottle(fn.Name, arn, err)
		return nil, g.invokeError(fn, err)
	}
	if resp.Stream != nil {
		// The invocation runs until its stream ends.
		go func() { <-resp.Stream.Done(); release() }()
	} else {
		release()
	}
	out := &InvokeOutput{Status: 200, Payload: resp.Payload, ExecutedVersion: resp.ExecutedVersion, LogTail: resp.LogTail, Stream: resp.Stream, ContentType: resp.ContentType}
	if resp.FunctionError {
		out.FunctionError = "Unhandled"
	}
	return out, nil
}

func (g *Gateway) invokeError(fn *structs.Function, err error) error {
	switch {
	case errors.Is(err, invoke.ErrNoCapacity):
		return lambda.TooManyRequests("ConcurrentInvocationLimitExceeded", "Rate Exceeded.")
	case errors.Is(err, invoke.ErrShuttingDown):
		return &lambda.Error{Status: 503, Type: "ServiceException", Message: "the node is shutting down"}
	case errors.Is(err, invoke.ErrFileSystem):
		var fe *invoke.FileSystemError
		msg := "the function's file system cannot be mounted on this node"
		if errors.As(err, &fe) {
			msg = fe.Message
		}
		return &lambda.Error{Status: http.StatusForbidden, Type: "EFSMountFailureException", Message: msg}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	// The node refused to run code that does not verify under its code signing configuration.
	var le *lambda.Error
	if errors.As(err, &le) && (le.Type == "CodeVerificationFailedException" || le.Type == "InvalidCodeSignatureException") {
		return le
	}
	g.logger.Error("invocation failed in the sandbox", "function", fn.Name, "error", err)
	return lambda.ServiceError("the invocation of %s failed in the gateway", fn.Name)
}

// enqueue accepts an Event invocation. Accepted events run even while the node drains.
func (g *Gateway) enqueue(fn *structs.Function, req *invoke.Request) (*InvokeOutput, error) {
	if len(req.Payload) > 1<<20 {
		return nil, lambda.RequestTooLarge("asynchronous payloads are limited to 1 MB")
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return nil, &lambda.Error{Status: 503, Type: "ServiceException", Message: "the node is shutting down"}
	}
	select {
	case g.async <- &asyncCall{fn: fn, req: req}:
		return &InvokeOutput{Status: 202}, nil
	default:
		if g.cfg.Metrics != nil {
			g.cfg.Metrics.Throttled(fn.Name, req.InvokedFunctionARN, ThrottleAsyncBacklog)
		}
		return nil, lambda.TooManyRequests("ConcurrentInvocationLimitExceeded", "the asynchronous invocation backlog is full")
	}
}

func (g *Gateway) asyncWorker() {
	defer g.asyncWG.Done()
	for c := range g.async {
		// An accepted event waits for room under its function's reserved concurrency; it is
		// never dropped for it.
		release, err := g.admit(context.Background(), c.fn.Name)
		for err != nil {
			time.Sleep(20 * time.Millisecond)
			release, err = g.admit(context.Background(), c.fn.Name)
		}
		resp, err := g.cfg.Invoker.Invoke(context.Background(), c.fn, c.req)
		release()
		switch {
		case err != nil:
			g.logger.Error("asynchronous invocation failed", "function", c.fn.Name, "request_id", c.req.RequestID, "error", err)
		case resp.FunctionError:
			g.logger.Warn("asynchronous invocation returned an error", "function", c.fn.Name, "request_id", c.req.RequestID, "error_type", resp.ErrorType)
		}
	}
}

// Shutdown stops accepting events and waits (bounded by ctx) for the queued ones to run.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closed = true
		close(g.async)
		close(g.stopLeases)
		g.mu.Unlock()
	})
	done := make(chan struct{})
	go func() {
		g.asyncWG.Wait()
		if g.stopEvents != nil {
			// Events not yet run stay stored, for this node's next start or another node;
			// running ones settle (or are delivered again once their ack wait passes).
			g.stopEvents()
			<-g.eventsDone
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %d queued asynchronous invocations: %w", len(g.async), ctx.Err())
	}
}

// ---- management ----

// validate applies the function rules of internal/structs, the ones the HCL files obey too.
func validate(fn *structs.Function) error { return lambda.InvalidFields(fn.Validate()) }

// checkRuntime refuses a zip function on a runtime this node does not declare, naming those it
// has: the built-in custom runtimes and its runtime blocks.
func (g *Gateway) checkRuntime(fn *structs.Function) error {
	if fn.IsImage() || structs.ValidRuntime(fn.Runtime) {
		return nil
	}
	have := append([]string(nil), structs.Runtimes...)
	if g.cfg.Runtimes != nil {
		for _, r := range g.cfg.Runtimes() {
			if r == fn.Runtime {
				return nil
			}
			have = append(have, r)
		}
	}
	return lambda.InvalidParameter("Runtime %q is not a runtime of this gateway; its runtimes: %s (an agent's runtime blocks declare more)", fn.Runtime, strings.Join(have, ", "))
}

// NetworkCatalog is the node's private networks and egress policies, by name.
type NetworkCatalog interface {
	HasNetwork(name string) bool
	HasEgressPolicy(name string) bool
}

// checkNetwork refuses a function on a network, or with an egress policy, this node does not
// declare: it would not run here (each node declares its own in its agent file).
func (g *Gateway) checkNetwork(fn *structs.Function) error {
	n := fn.Network
	if n == nil {
		return nil
	}
	if g.cfg.Networks == nil || !g.cfg.Networks.HasNetwork(n.Name) {
		return lambda.InvalidParameter("VpcConfig.SubnetIds: %q is not a network of this node (a network block of the agent's file)", n.Name)
	}
	for _, p := range n.EgressPolicies {
		if !g.cfg.Networks.HasEgressPolicy(p) {
			return lambda.InvalidParameter("VpcConfig.SecurityGroupIds: %q is not an egress policy of this node (an egress_policy block of the agent's file)", p)
		}
	}
	return nil
}

// storeZip checks that data is a zip and stores it.
// HasCode reports whether the node holds the zip with this hex SHA-256, so a client can refer
// to it (GatewayCodeSha256) instead of uploading it again.
func (g *Gateway) HasCode(sha string) bool { return g.cfg.Code.Has(sha) }

// storedCode is a zip in the node's code store.
type storedCode struct {
	sha      string // hex SHA-256
	size     int64  // of the zip
	unzipped int64  // what it unpacks to
}

// code stores an uploaded zip, or checks the node's zip that ref (a hex SHA-256, the gateway's
// GatewayCodeSha256 extension) names, and returns its hash and sizes.
func (g *Gateway) code(ctx context.Context, data []byte, ref string) (storedCode, error) {
	if ref == "" {
		return g.storeZip(ctx, data)
	}
	if len(data) > 0 {
		return storedCode{}, lambda.InvalidParameter("give either ZipFile or GatewayCodeSha256, not both")
	}
	size, ok := g.cfg.Code.Reuse(ref)
	if !ok {
		return storedCode{}, lambda.InvalidParameter("GatewayCodeSha256 %s: this node holds no such code; upload it as ZipFile", ref)
	}
	unzipped, err := g.cfg.Code.UnzippedSize(ref)
	if err != nil {
		return storedCode{}, fmt.Errorf("reading code %s: %w", ref, err)
	}
	return storedCode{sha: ref, size: size, unzipped: unzipped}, nil
}

func (g *Gateway) storeZip(ctx context.Context, data []byte) (storedCode, error) {
	if len(data) == 0 {
		return storedCode{}, lambda.InvalidParameter("Code.ZipFile is required")
	}
	if len(data) > structs.MaxZipBytes {
		return storedCode{}, lambda.RequestTooLarge("the zip is %d bytes; the limit is %d", len(data), structs.MaxZipBytes)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return storedCode{}, lambda.InvalidParameter("Could not unzip uploaded file: %v", err)
	}
	if err := unpack.CheckZip(zr, unpack.CodeOptions); err != nil {
		return storedCode{}, lambda.InvalidParameter("Could not unzip uploaded file: %v", err)
	}
	sha, size, err := g.cfg.Code.Put(ctx, bytes.NewReader(data), structs.MaxZipBytes)
	if err != nil {
		return storedCode{}, fmt.Errorf("storing code: %w", err)
	}
	return storedCode{sha: sha, size: size, unzipped: unpack.DeclaredSize(zr)}, nil
}

func (g *Gateway) put(ctx context.Context, fn *structs.Function, expect string) (*lambda.FunctionConfiguration, error) {
	return g.putSigned(ctx, fn, expect, nil)
}

// putSigned is put attaching code signing configuration csc (nil: none) in the same write.
func (g *Gateway) putSigned(ctx context.Context, fn *structs.Function, expect string, csc *structs.CodeSigningConfig) (*lambda.FunctionConfiguration, error) {
	fn.RevisionID = uuid.NewString()
	fn.LastModified = time.Now().UTC()
	var stored *structs.Function
	var err error
	if csc != nil {
		stored, err = g.cfg.Store.PutFunctionWithCodeSigning(ctx, fn, csc.ID)
		if se := g.cfg.StoreErrors.NotFound; se != nil && errors.Is(err, se) {
			return nil, g.noCodeSigningConfig(lambda.CodeSigningConfigARN(g.cfg.Region, csc.ID)) // deleted meanwhile
		}
	} else {
		stored, err = g.cfg.Store.PutFunction(ctx, fn, expect)
	}
	if err != nil {
		return nil, g.storeError(fn.Name, err)
	}
	c := lambda.ConfigurationFrom(stored, g.cfg.Region)
	return &c, nil
}

func (g *Gateway) storeError(name string, err error) error {
	se := g.cfg.StoreErrors
	switch {
	case se.Conflict != nil && errors.Is(err, se.Conflict):
		return lambda.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	case se.NotFound != nil && errors.Is(err, se.NotFound):
		return lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, name, ""))
	case se.NoLeader != nil && errors.Is(err, se.NoLeader):
		g.logger.Warn("a write found no cluster leader", "function", name, "error", err)
		return &lambda.Error{Status: http.StatusServiceUnavailable, Type: "ServiceException",
			Message: "no cluster leader is reachable from this node (it may be cut off, or the cluster lost its majority); the write was not made: retry, or use another node"}
	case se.NoAnswer != nil && errors.Is(err, se.NoAnswer):
		g.logger.Warn("a write got no answer from the cluster leader", "function", name, "error", err)
		return &lambda.Error{Status: http.StatusServiceUnavailable, Type: "ServiceException",
			Message: "the cluster leader did not answer in time (this node may be cut off); the write may or may not have been made: read before retrying"}
	}
	var le *lambda.Error
	if errors.As(err, &le) {
		return le
	}
	g.logger.Error("writing to the replicated state", "function", name, "error", err)
	return lambda.ServiceError("writing function %s failed", name)
}

// CreateFunction creates a function from a zip.
func (g *Gateway) CreateFunction(ctx context.Context, in *lambda.CreateFunctionInput) (*lambda.FunctionConfiguration, error) {
	if err := in.Unsupported(); err != nil {
		return nil, err
	}
	if _, exists := g.cfg.Store.Function(in.FunctionName); exists {
		return nil, lambda.ResourceConflict("Function already exist: %s", in.FunctionName)
	}
	var csc *structs.CodeSigningConfig
	if in.CodeSigningConfigArn != "" {
		var err error
		if csc, err = g.codeSigningConfig(in.CodeSigningConfigArn); err != nil {
			return nil, err
		}
	}
	fn := &structs.Function{
		Name: in.FunctionName, Runtime: in.Runtime, Handler: in.Handler, Description: in.Description, Role: in.Role,
		MemoryMB: structs.DefaultMemoryMB, Timeout: structs.DefaultTimeout, EphemeralStorageMB: structs.DefaultEphemeralMB,
		Environment: map[string]string{},
	}
	if in.MemorySize != nil {
		fn.MemoryMB = *in.MemorySize
	}
	if in.Timeout != nil {
		fn.Timeout = time.Duration(*in.Timeout) * time.Second
	}
	if in.EphemeralStorage != nil {
		fn.EphemeralStorageMB = in.EphemeralStorage.Size
	}
	if in.Environment != nil && in.Environment.Variables != nil {
		fn.Environment = in.Environment.Variables
	}
	applyOptions(fn, in.GatewayOptions)
	if in.DeadLetterConfig != nil {
		target, err := g.deadLetterTarget(in.DeadLetterConfig)
		if err != nil {
			return nil, err
		}
		fn.DeadLetterTarget, fn.DeadLetterTargetARN = target, in.DeadLetterConfig.TargetArn
	}
	if in.VpcConfig != nil {
		n, err := lambda.NetworkFrom(in.VpcConfig)
		if err != nil {
			return nil, err
		}
		fn.Network = n
	}
	fss, err := g.fileSystems(in.FileSystemConfigs)
	if err != nil {
		return nil, err
	}
	fn.FileSystems = fss
	if in.LoggingConfig != nil {
		fn.Logging = lambda.LoggingFrom(in.LoggingConfig, nil, fn.Name)
	}
	if in.PackageType == structs.PackageImage {
		fn.PackageType, fn.ImageURI = structs.PackageImage, in.Code.ImageUri
		fn.ImageConfig = imageConfig(in.ImageConfig)
	} else if in.PackageType != "" && in.PackageType != structs.PackageZip {
		fn.PackageType = in.PackageType // refused by validate, naming it
	} else if in.Code.ImageUri != "" || imageConfig(in.ImageConfig) != nil {
		return nil, lambda.InvalidParameter("Code.ImageUri and ImageConfig go with PackageType Image")
	}
	if err := validate(fn); err != nil {
		return nil, err
	}
	if err := g.checkRuntime(fn); err != nil {
		return nil, err
	}
	if err := g.checkNetwork(fn); err != nil {
		return nil, err
	}
	if err := g.checkFileSystems(fn); err != nil {
		return nil, err
	}
	if fn.IsImage() {
		if len(in.Code.ZipFile) > 0 || in.Code.GatewayCodeSha256 != "" {
			return nil, lambda.InvalidParameter("an Image function's code is its image (Code.ImageUri), not a zip")
		}
		resolved, err := g.resolveImage(ctx, fn.ImageURI)
		if err != nil {
			return nil, err
		}
		fn.ResolvedImageURI = resolved
	} else {
		code, err := g.code(ctx, in.Code.ZipFile, in.Code.GatewayCodeSha256)
		if err != nil {
			return nil, err
		}
		fn.CodeSha256, fn.CodeSize, fn.CodeUnzippedSize = code.sha, code.size, code.unzipped
	}
	if err := g.setLayers(fn, in.Layers); err != nil {
		return nil, err
	}
	if err := g.checkSignature(ctx, fn, csc, true); err != nil {
		return nil, err
	}
	out, err := g.putSigned(ctx, fn, "", csc)
	if err != nil {
		return nil, err
	}
	if !in.Publish {
		return out, nil
	}
	return g.PublishVersion(ctx, fn.Name, &lambda.PublishVersionInput{RevisionId: out.RevisionId})
}

// imageConfig is the API's ImageConfig as the function keeps it; nil when it sets nothing
// (tools send an empty one to mean none).
func imageConfig(ic *lambda.ImageConfig) *structs.ImageConfig {
	if ic == nil || (len(ic.EntryPoint) == 0 && len(ic.Command) == 0 && ic.WorkingDirectory == "") {
		return nil
	}
	return &structs.ImageConfig{EntryPoint: ic.EntryPoint, Command: ic.Command, WorkingDirectory: ic.WorkingDirectory}
}

// resolveImage pins an image function's image to its digest at deploy, as Lambda does: the
// function (and every version published from it) runs that image even after its tag moves.
func (g *Gateway) resolveImage(ctx context.Context, uri string) (string, error) {
	if g.cfg.Images == nil {
		return "", lambda.InvalidParameter("PackageType Image: this gateway has no image store")
	}
	return g.cfg.Images.Resolve(ctx, uri)
}

func applyOptions(fn *structs.Function, o *lambda.GatewayOptions) {
	if o != nil && o.FreezeDelayMs != nil {
		d := time.Duration(*o.FreezeDelayMs) * time.Millisecond
		fn.FreezeDelay = &d
	}
}

// existing finds the $LATEST of function nameOrARN for an operation on the function as a
// whole; a qualifier in the name is refused rather than silently ignored.
func (g *Gateway) existing(nameOrARN string) (*structs.Function, error) {
	name, q, err := lambda.ParseFunctionName(nameOrARN)
	if err != nil {
		return nil, err
	}
	if q != "" {
		return nil, lambda.InvalidParameter("%s: this operation takes the function's name without a qualifier (:%s)", nameOrARN, q)
	}
	fn, ok := g.cfg.Store.Function(name)
	if !ok {
		return nil, lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, name, ""))
	}
	return fn, nil
}

// UpdateFunctionCode replaces the code of $LATEST.
func (g *Gateway) UpdateFunctionCode(ctx context.Context, name string, in *lambda.UpdateFunctionCodeInput) (*lambda.FunctionConfiguration, error) {
	cur, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if err := in.Unsupported(); err != nil {
		return nil, err
	}
	if in.RevisionId != "" && in.RevisionId != cur.RevisionID {
		return nil, g.storeError(cur.Name, g.cfg.StoreErrors.Conflict)
	}
	fn := cur.Copy()
	if cur.IsImage() {
		if in.ImageUri == "" || len(in.ZipFile) > 0 || in.GatewayCodeSha256 != "" {
			return nil, lambda.InvalidParameter("%s is an Image function: give its new image as ImageUri", cur.Name)
		}
		resolved, err := g.resolveImage(ctx, in.ImageUri)
		if err != nil {
			return nil, err
		}
		fn.ImageURI, fn.ResolvedImageURI = in.ImageUri, resolved
	} else {
		if in.ImageUri != "" {
			return nil, lambda.InvalidParameter("%s is a Zip function: give its code as ZipFile (a function's package type cannot change)", cur.Name)
		}
		code, err := g.code(ctx, in.ZipFile, in.GatewayCodeSha256)
		if err != nil {
			return nil, err
		}
		fn.CodeSha256, fn.CodeSize, fn.CodeUnzippedSize = code.sha, code.size, code.unzipped
		if err := lambda.InvalidFields(fn.ValidateLayers()); err != nil {
			return nil, err
		}
	}
	// The code is checked under the configuration attached now; the layers were when added.
	if err := g.checkSignature(ctx, fn, g.attachedCodeSigning(fn.Name), false); err != nil {
		return nil, err
	}
	out, err := g.put(ctx, fn, cur.RevisionID)
	if err != nil || !in.Publish {
		return out, err
	}
	// Published from the revision just written: a change in between fails instead of
	// publishing someone else's code.
	return g.PublishVersion(ctx, fn.Name, &lambda.PublishVersionInput{RevisionId: out.RevisionId})
}

// UpdateFunctionConfiguration changes the fields that are set.
func (g *Gateway) UpdateFunctionConfiguration(ctx context.Context, name string, in *lambda.UpdateFunctionConfigurationInput) (*lambda.FunctionConfiguration, error) {
	cur, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	if err := in.UnsupportedSettings.Unsupported(cur.Name); err != nil {
		return nil, err
	}
	if in.RevisionId != "" && in.RevisionId != cur.RevisionID {
		return nil, g.storeError(cur.Name, g.cfg.StoreErrors.Conflict)
	}
	fn := cur.Copy()
	if in.Role != nil {
		fn.Role = *in.Role
	}
	if in.Runtime != nil {
		fn.Runtime = *in.Runtime
	}
	if in.Handler != nil {
		fn.Handler = *in.Handler
	}
	if in.Description != nil {
		fn.Description = *in.Description
	}
	if in.Timeout != nil {
		fn.Timeout = time.Duration(*in.Timeout) * time.Second
	}
	if in.MemorySize != nil {
		fn.MemoryMB = *in.MemorySize
	}
	if in.EphemeralStorage != nil {
		fn.EphemeralStorageMB = in.EphemeralStorage.Size
	}
	if in.Environment != nil {
		fn.Environment = in.Environment.Variables
		if fn.Environment == nil {
			fn.Environment = map[string]string{}
		}
	}
	if in.GatewayOptions != nil {
		fn.FreezeDelay = nil
		applyOptions(fn, in.GatewayOptions)
	}
	if in.ImageConfig != nil {
		if !fn.IsImage() && imageConfig(in.ImageConfig) != nil {
			return nil, lambda.InvalidParameter("ImageConfig goes with PackageType Image; %s is a Zip function", fn.Name)
		}
		if fn.IsImage() {
			fn.ImageConfig = imageConfig(in.ImageConfig)
		}
	}
	if in.Layers != nil {
		if err := g.setLayers(fn, *in.Layers); err != nil {
			return nil, err
		}
		if err := g.checkLayers(ctx, fn, cur.Layers); err != nil {
			return nil, err
		}
	}
	if in.DeadLetterConfig != nil {
		if fn.DeadLetterTarget, err = g.deadLetterTarget(in.DeadLetterConfig); err != nil {
			return nil, err
		}
		fn.DeadLetterTargetARN = in.DeadLetterConfig.TargetArn
	}
	if in.VpcConfig != nil {
		if fn.Network, err = lambda.NetworkFrom(in.VpcConfig); err != nil {
			return nil, err
		}
	}
	if in.FileSystemConfigs != nil {
		if fn.FileSystems, err = g.fileSystems(*in.FileSystemConfigs); err != nil {
			return nil, err
		}
	}
	if in.LoggingConfig != nil {
		fn.Logging = lambda.LoggingFrom(in.LoggingConfig, fn.Logging, fn.Name)
	}
	if err := validate(fn); err != nil {
		return nil, err
	}
	if err := g.checkRuntime(fn); err != nil {
		return nil, err
	}
	if err := g.checkNetwork(fn); err != nil {
		return nil, err
	}
	if err := g.checkFileSystems(fn); err != nil {
		return nil, err
	}
	return g.put(ctx, fn, cur.RevisionID)
}

// GetFunction describes a function, at a qualifier when one is given (an alias reads as its
// main version).
func (g *Gateway) GetFunction(name, qualifier string) (*lambda.GetFunctionOutput, error) {
	fn, err := g.FunctionVersion(name, qualifier)
	if err != nil {
		return nil, err
	}
	code := lambda.CodeLocation{RepositoryType: "S3", Location: "gateway://code/" + fn.CodeSha256}
	if fn.IsImage() {
		code = lambda.CodeLocation{RepositoryType: "ECR", ImageUri: fn.ImageURI, ResolvedImageUri: fn.ResolvedImageURI}
	}
	return &lambda.GetFunctionOutput{Configuration: lambda.ConfigurationFrom(fn, g.cfg.Region), Code: code}, nil
}

// ListFunctions pages through functions by name; marker is the last name of the previous page.
func (g *Gateway) ListFunctions(marker string, maxItems int) *lambda.ListFunctionsOutput {
	if maxItems <= 0 || maxItems > 50 {
		maxItems = 50
	}
	all := g.cfg.Store.Functions()
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	out := &lambda.ListFunctionsOutput{Functions: []lambda.FunctionConfiguration{}}
	for _, fn := range all {
		if marker != "" && fn.Name <= markerName(marker) {
			continue
		}
		if len(out.Functions) == maxItems {
			next := encodeMarker(out.Functions[len(out.Functions)-1].FunctionName)
			out.NextMarker = &next
			break
		}
		out.Functions = append(out.Functions, lambda.ConfigurationFrom(fn, g.cfg.Region))
	}
	return out
}

func encodeMarker(name string) string { return base64.RawURLEncoding.EncodeToString([]byte(name)) }

func markerName(m string) string {
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil {
		return m
	}
	return string(b)
}

// DeleteFunction deletes a function, or with a version number as the qualifier only that
// version; environments are retired as the state changes.
func (g *Gateway) DeleteFunction(ctx context.Context, name, qualifier string) error {
	fn, alias, err := g.qualified(name, qualifier)
	if err != nil {
		return err
	}
	switch {
	case alias != nil:
		return lambda.InvalidParameter("Deletion of aliases is not supported by DeleteFunction: call DeleteAlias for %s", alias.Name)
	case fn.Version != "":
		for _, a := range g.cfg.Store.Aliases(fn.Name) {
			if _, weighted := a.AdditionalVersionWeights[fn.Version]; a.FunctionVersion == fn.Version || weighted {
				return lambda.ResourceConflict("Unable to delete version because the following aliases reference it: [%s]", a.Name)
			}
		}
		if err := g.cfg.Store.DeleteVersion(ctx, fn.Name, fn.Version); err != nil {
			return g.storeError(fn.Name, err)
		}
		return nil
	}
	if q := qualifierOf(name, qualifier); q == structs.LatestVersion {
		return lambda.InvalidParameter("$LATEST version cannot be deleted without deleting the function.")
	}
	if err := g.cfg.Store.DeleteFunction(ctx, fn.Name); err != nil {
		return g.storeError(fn.Name, err)
	}
	return nil
}

// qualifierOf is the qualifier of a request: the one given apart, or the one in the name.
func qualifierOf(nameOrARN, qualifier string) string {
	if qualifier != "" {
		return qualifier
	}
	_, q, _ := lambda.ParseFunctionName(nameOrARN)
	return q
}

// ValidClientContext checks X-Amz-Client-Context: base64 of a JSON object.
func ValidClientContext(b64 string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !json.Valid(raw) {
		return "", lambda.InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.")
	}
	return string(raw), nil
}
