// Package httpapi is the node's one HTTP route table: the Lambda Invoke API, the
// Lambda-compatible management API, and the gateway's own /v1 endpoints.
package httpapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"

	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/gateway/httpapi/console"
	"github.com/lambdagw/gateway/gateway/sigv4"
	"github.com/lambdagw/gateway/internal/funclog"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/logfmt"
)

// LogReader reads function logs across the cluster.
type LogReader interface {
	// Read calls out with the last p.Limit lines p selects, in time order (and an entry of
	// type error for each node that could not be read), then with p.Follow every new line as
	// it comes (after an entry of type funclog.TypeCaughtUp), until ctx ends or out fails.
	Read(ctx context.Context, function string, p funclog.Params, out func(funclog.Entry) error) error
}

// Config configures the API.
type Config struct {
	Gateway *gateway.Gateway
	Logs    LogReader
	Status  func() any
	// Runtimes lists the managed runtimes of every node of the cluster (GET /v1/runtimes).
	Runtimes func(ctx context.Context) any
	Logger   hclog.Logger
	// URLDomain is the domain function URLs are served under (<url-id>.<URLDomain>).
	URLDomain string
	// Verifier checks the signatures of API requests and of requests to SIGNED function URLs.
	// Without one the API is open and SIGNED URLs refuse every request.
	Verifier *sigv4.Verifier
	// Policies maps the Verifier's access key IDs to their policies, PolicyAdmin,
	// PolicyInvoke or PolicyMetrics; a key missing here may only invoke.
	Policies map[string]string
	// Debug serves Go's profiling endpoints under /debug/pprof/ (the agent's debug { pprof }).
	Debug bool
	// Authorizer, when set, decides function-URL requests after their own auth_type passed
	// (the agent's authorizer extension plugins).
	Authorizer URLAuthorizer
	// Cluster serves /v1/cluster/...; without it those routes answer 404.
	Cluster ClusterOps
	// AllowedHosts are the names and addresses (no port) a request's Host may carry, besides
	// function URLs under URLDomain; others are refused (DNS rebinding). Empty, or holding "*":
	// any host.
	AllowedHosts []string
	// AllowedOrigins are the browser origins ("https://console.example.com") whose cross-site
	// API requests are accepted; every other cross-site browser request is refused.
	AllowedOrigins []string
	// Metrics serves GET /v1/metrics and a function's recent history; nil (the agent's metrics
	// block turned them off): those routes answer 404 saying so.
	Metrics Metrics
	// AccessLog logs every request at INFO on the http.access logger (method, path, function,
	// status, duration, request ID); without it that line is logged at DEBUG on http.
	AccessLog bool
	// Health answers /v1/health and /v1/health/ready; without it both answer ok.
	Health Health
	// Tracer records the receive phase of invocations (the handler) as spans; nil when tracing
	// is off.
	Tracer invoke.Tracer
}

// URLAuthorizer decides function-URL requests (the plugin host). Authorizing is asked first,
// so a request costs nothing more while no authorizer is configured.
type URLAuthorizer interface {
	Authorizing() bool
	// Authorize reports whether any authorizer was asked.
	Authorize(ctx context.Context, req sdk.AuthorizeRequest) (sdk.AuthorizeResponse, bool)
}

// ClusterOps are the node's membership operations.
type ClusterOps interface {
	Members() (any, error)
	Join(ctx context.Context, addr string) error
	Leave(ctx context.Context) error
	SaveSnapshot(ctx context.Context, w io.Writer) error
	RestoreSnapshot(ctx context.Context, r io.Reader) error
}

type api struct {
	cfg          Config
	logger       hclog.Logger
	access       hclog.Logger        // http.access
	allowedHosts map[string]struct{} // nil: any
	sessions     *console.Sessions   // the web console's; nil without access keys
}

// handler serves one route; a returned error is rendered in Lambda's error shape.
type handler func(w http.ResponseWriter, r *http.Request, reqID string) error

// maxManagementBody fits the base64 of a 50 MB zip in JSON.
const maxManagementBody = 70 << 20

// New returns the API's handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.Gateway == nil {
		return nil, errors.New("httpapi needs a gateway")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	a := &api{cfg: cfg, logger: cfg.Logger.Named("http")}
	a.access = a.logger.Named("access")
	if len(cfg.AllowedHosts) > 0 && !slices.Contains(cfg.AllowedHosts, "*") {
		a.allowedHosts = map[string]struct{}{}
		for _, h := range cfg.AllowedHosts {
			a.allowedHosts[hostName(h)] = struct{}{}
		}
	}
	cop, err := a.crossOrigin()
	if err != nil {
		return nil, fmt.Errorf("allowed origins: %w", err)
	}
	r := mux.NewRouter()
	// Function URLs see the path as the client sent it ("//a/../b" included).
	r.SkipClean(true)
	// Function URLs come first: their host or /fn/ prefix takes every method and path.
	r.MatcherFunc(func(req *http.Request, _ *mux.RouteMatch) bool { return a.isURLRequest(req) }).
		Handler(a.wrap(a.traced(a.functionURL)))
	// Every route, in one table.
	routes := []struct {
		method, path string
		need         access
		h            handler
	}{
		{"POST", "/2015-03-31/functions/{name}/invocations", invokeAccess, a.traced(a.invoke)},
		{"POST", "/2021-11-15/functions/{name}/response-streaming-invocations", invokeAccess, a.traced(a.invokeWithResponseStream)},
		{"POST", "/2015-03-31/functions", adminAccess, a.createFunction},
		{"GET", "/2015-03-31/functions/", adminAccess, a.listFunctions},
		{"GET", "/2015-03-31/functions", adminAccess, a.listFunctions},
		{"GET", "/2015-03-31/functions/{name}", adminAccess, a.getFunction},
		{"DELETE", "/2015-03-31/functions/{name}", adminAccess, a.deleteFunction},
		{"GET", "/2015-03-31/functions/{name}/configuration", adminAccess, a.getConfiguration},
		{"PUT", "/2017-10-31/functions/{name}/concurrency", adminAccess, a.putConcurrency},
		{"GET", "/2019-09-30/functions/{name}/concurrency", adminAccess, a.getConcurrency},
		{"DELETE", "/2017-10-31/functions/{name}/concurrency", adminAccess, a.deleteConcurrency},
		{"PUT", "/2019-09-30/functions/{name}/provisioned-concurrency", adminAccess, a.putProvisioned},
		{"GET", "/2019-09-30/functions/{name}/provisioned-concurrency", adminAccess, a.getProvisioned},
		{"DELETE", "/2019-09-30/functions/{name}/provisioned-concurrency", adminAccess, a.deleteProvisioned},
		{"POST", "/2015-03-31/functions/{name}/aliases", adminAccess, a.createAlias},
		{"GET", "/2015-03-31/functions/{name}/aliases", adminAccess, a.listAliases},
		{"GET", "/2015-03-31/functions/{name}/aliases/{alias}", adminAccess, a.getAlias},
		{"PUT", "/2015-03-31/functions/{name}/aliases/{alias}", adminAccess, a.updateAlias},
		{"DELETE", "/2015-03-31/functions/{name}/aliases/{alias}", adminAccess, a.deleteAlias},
		{"POST", "/2015-03-31/functions/{name}/versions", adminAccess, a.publishVersion},
		{"GET", "/2015-03-31/functions/{name}/versions", adminAccess, a.listVersions},
		{"PUT", "/2015-03-31/functions/{name}/configuration", adminAccess, a.updateConfiguration},
		{"PUT", "/2015-03-31/functions/{name}/code", adminAccess, a.updateCode},
		{"POST", "/2021-10-31/functions/{name}/url", adminAccess, a.createURLConfig},
		{"GET", "/2021-10-31/functions/{name}/url", adminAccess, a.getURLConfig},
		{"PUT", "/2021-10-31/functions/{name}/url", adminAccess, a.updateURLConfig},
		{"DELETE", "/2021-10-31/functions/{name}/url", adminAccess, a.deleteURLConfig},
		{"GET", "/2021-10-31/functions/{name}/urls", adminAccess, a.listURLConfigs},
		{"PUT", "/2019-09-25/functions/{name}/event-invoke-config", adminAccess, a.putEventInvokeConfig},
		{"POST", "/2019-09-25/functions/{name}/event-invoke-config", adminAccess, a.updateEventInvokeConfig},
		{"GET", "/2019-09-25/functions/{name}/event-invoke-config", adminAccess, a.getEventInvokeConfig},
		{"DELETE", "/2019-09-25/functions/{name}/event-invoke-config", adminAccess, a.deleteEventInvokeConfig},
		{"GET", "/2019-09-25/functions/{name}/event-invoke-config/list", adminAccess, a.listEventInvokeConfigs},
		{"GET", "/2020-06-30/functions/{name}/code-signing-config", adminAccess, a.getCodeSigningConfig},
		{"PUT", "/2020-06-30/functions/{name}/code-signing-config", adminAccess, a.putFunctionCodeSigningConfig},
		{"DELETE", "/2020-06-30/functions/{name}/code-signing-config", adminAccess, a.deleteFunctionCodeSigningConfig},
		{"GET", "/2017-03-31/tags/{arn}", adminAccess, a.listTags},
		{"POST", "/2017-03-31/tags/{arn}", adminAccess, a.tagResource},
		{"DELETE", "/2017-03-31/tags/{arn}", adminAccess, a.untagResource},
		{"POST", "/2020-04-22/code-signing-configs/", adminAccess, a.createCodeSigningConfig},
		{"POST", "/2020-04-22/code-signing-configs", adminAccess, a.createCodeSigningConfig},
		{"GET", "/2020-04-22/code-signing-configs/", adminAccess, a.listCodeSigningConfigs},
		{"GET", "/2020-04-22/code-signing-configs", adminAccess, a.listCodeSigningConfigs},
		{"GET", "/2020-04-22/code-signing-configs/{arn}", adminAccess, a.getCodeSigningConfigByARN},
		{"PUT", "/2020-04-22/code-signing-configs/{arn}", adminAccess, a.updateCodeSigningConfig},
		{"DELETE", "/2020-04-22/code-signing-configs/{arn}", adminAccess, a.deleteCodeSigningConfig},
		{"GET", "/2020-04-22/code-signing-configs/{arn}/functions", adminAccess, a.listFunctionsByCodeSigningConfig},
		{"POST", "/2015-03-31/functions/{name}/policy", adminAccess, a.addPermission},
		{"GET", "/2015-03-31/functions/{name}/policy", adminAccess, a.getPolicy},
		{"DELETE", "/2015-03-31/functions/{name}/policy/{sid}", adminAccess, a.removePermission},
		{"POST", "/2018-10-31/layers/{layer}/versions", adminAccess, a.publishLayerVersion},
		{"GET", "/2018-10-31/layers/{layer}/versions", adminAccess, a.listLayerVersions},
		{"GET", "/2018-10-31/layers/{layer}/versions/{version}", adminAccess, a.getLayerVersion},
		{"DELETE", "/2018-10-31/layers/{layer}/versions/{version}", adminAccess, a.deleteLayerVersion},
		{"POST", "/2018-10-31/layers/{layer}/versions/{version}/policy", adminAccess, a.addLayerVersionPermission},
		{"GET", "/2018-10-31/layers/{layer}/versions/{version}/policy", adminAccess, a.getLayerVersionPolicy},
		{"DELETE", "/2018-10-31/layers/{layer}/versions/{version}/policy/{sid}", adminAccess, a.removeLayerVersionPermission},
		{"GET", "/2018-10-31/layers", adminAccess, a.listLayers},
		{"GET", "/2018-10-31/layers/", adminAccess, a.listLayers},
		{"HEAD", "/v1/code/{sha256}", adminAccess, a.hasCode},
		{"GET", "/v1/functions/{name}/logs", adminAccess, a.logs},
		{"GET", "/v1/functions/{name}/async", adminAccess, a.asyncStatus},
		{"GET", "/v1/functions/{name}/triggers", adminAccess, a.listTriggers},
		{"GET", "/v1/triggers", adminAccess, a.listTriggers},
		{"POST", "/v1/queues/{queue}/messages", adminAccess, a.sendQueueMessage},
		{"GET", "/v1/queues/{queue}/messages", adminAccess, a.receiveQueueMessages},
		{"DELETE", "/v1/queues/{queue}/messages/{seq}", adminAccess, a.deleteQueueMessage},
		{"POST", "/v1/streams/{stream}/records", adminAccess, a.putStreamRecord},
		{"PUT", "/v1/functions/{name}/triggers/{trigger}", adminAccess, a.putTrigger},
		{"DELETE", "/v1/functions/{name}/triggers/{trigger}", adminAccess, a.deleteTrigger},
		{"GET", "/2015-03-31/event-source-mappings/", adminAccess, a.listEventSourceMappings},
		{"GET", "/2015-03-31/event-source-mappings", adminAccess, a.listEventSourceMappings},
		{"GET", "/2015-03-31/event-source-mappings/{uuid}", adminAccess, a.getEventSourceMapping},
		{"POST", "/2015-03-31/event-source-mappings/", adminAccess, a.createEventSourceMapping},
		{"POST", "/2015-03-31/event-source-mappings", adminAccess, a.createEventSourceMapping},
		{"PUT", "/2015-03-31/event-source-mappings/{uuid}", adminAccess, a.updateEventSourceMapping},
		{"DELETE", "/2015-03-31/event-source-mappings/{uuid}", adminAccess, a.deleteEventSourceMapping},
		{"GET", "/v1/status", adminAccess, a.status},
		{"GET", "/v1/runtimes", adminAccess, a.runtimes},
		{"GET", "/v1/cluster/members", adminAccess, a.clusterMembers},
		{"POST", "/v1/cluster/join", adminAccess, a.clusterJoin},
		{"POST", "/v1/cluster/leave", adminAccess, a.clusterLeave},
		{"GET", "/v1/cluster/snapshot", adminAccess, a.snapshotSave},
		{"PUT", "/v1/cluster/snapshot", adminAccess, a.snapshotRestore},
		{"GET", "/v1/health", open, a.health},
		{"GET", "/v1/health/ready", open, a.ready},
		{"GET", "/v1/metrics", metricsAccess, a.metrics},
		{"GET", "/v1/functions/{name}/metrics", metricsAccess, a.functionMetrics},
	}
	// Bodies of any size, read as they arrive: their deadline moves with each read.
	streamedBodies := map[string]bool{"PUT /v1/cluster/snapshot": true}
	for _, rt := range routes {
		d := routeDeadlines(bodyLimit(rt.need))
		if streamedBodies[rt.method+" "+rt.path] {
			d = streamedDeadlines
		}
		r.Handle(rt.path, cop.Handler(a.wrapWith(d, a.guard(rt.need, rt.h)))).Methods(rt.method)
	}
	a.consoleRoutes(r, cop)
	if cfg.Debug {
		// Profiles expose the process's memory: admin keys only, when there are keys.
		debug := func(f http.HandlerFunc) http.Handler {
			return cop.Handler(a.wrap(a.guard(adminAccess, func(w http.ResponseWriter, r *http.Request, _ string) error { f(w, r); return nil })))
		}
		r.Handle("/debug/pprof/cmdline", debug(pprof.Cmdline))
		r.Handle("/debug/pprof/profile", debug(pprof.Profile))
		r.Handle("/debug/pprof/symbol", debug(pprof.Symbol))
		r.Handle("/debug/pprof/trace", debug(pprof.Trace))
		r.PathPrefix("/debug/pprof/").Handler(debug(pprof.Index))
	}
	r.NotFoundHandler = a.wrap(func(w http.ResponseWriter, r *http.Request, _ string) error {
		return lambda.UnknownOperation("no operation at %s %s", r.Method, r.URL.Path)
	})
	r.MethodNotAllowedHandler = a.wrap(func(w http.ResponseWriter, r *http.Request, _ string) error {
		return &lambda.Error{Status: 405, Type: "MethodNotAllowedException", Message: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)}
	})
	return a.guardHosts(r), nil
}

// wrap serves h under the default deadlines (deadlines.go).
func (a *api) wrap(h handler) http.Handler { return a.wrapWith(defaultDeadlines, h) }

// wrapWith serves h: per-request deadlines, the request ID, errors in Lambda's shape.
func (a *api) wrapWith(d deadlines, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rc := http.NewResponseController(w) // the server lifts both deadlines after each request
		if r.ContentLength != 0 {
			r.Body = d.watchBody(r, rc, start)
		}
		reqID := uuid.NewString()
		sw := &statusWriter{ResponseWriter: w, status: 200, deadline: mover{window: d.write, set: rc.SetWriteDeadline}}
		if err := h(sw, r, reqID); err != nil {
			var le *lambda.Error
			if !errors.As(err, &le) && !errors.Is(err, context.Canceled) {
				a.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", reqID, "error", err)
			}
			lambda.WriteError(sw, reqID, err)
		}
		a.logRequest(r, sw, reqID, time.Since(start))
	})
}

// logRequest writes the request's access-log line: at INFO on http.access with AccessLog,
// else at DEBUG on http.
func (a *api) logRequest(r *http.Request, sw *statusWriter, reqID string, took time.Duration) {
	l, level := a.access, hclog.Info
	if !a.cfg.AccessLog {
		l, level = a.logger, hclog.Debug
	}
	if !l.IsDebug() && level == hclog.Debug {
		return
	}
	args := []any{"method", r.Method, "path", r.URL.Path}
	fn := sw.function
	if fn == "" {
		fn = mux.Vars(r)["name"]
	}
	if fn != "" {
		args = append(args, "function", fn)
	}
	args = append(args, "status", sw.status, "duration", logfmt.Duration(took), "request_id", reqID)
	l.Log(level, "request", args...)
}

// statusWriter records the response's status and moves its write deadline as it is written.
type statusWriter struct {
	http.ResponseWriter
	status   int
	deadline mover
	function string // the function a function URL invoked, for the access log
}

func (s *statusWriter) WriteHeader(code int) {
	s.deadline.move()
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	s.deadline.move()
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// FlushError lets http.ResponseController report a failed flush (a client gone mid-stream).
func (s *statusWriter) FlushError() error {
	return http.NewResponseController(s.ResponseWriter).Flush()
}

// logTailBytes is how much of the log X-Amz-Log-Result carries, as in Lambda.
const logTailBytes = 4096

func (a *api) invoke(w http.ResponseWriter, r *http.Request, reqID string) error {
	in, err := invokeInput(r, reqID)
	if err != nil {
		return err
	}
	out, err := a.cfg.Gateway.Invoke(r.Context(), in)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("X-Amzn-RequestId", reqID)
	if out.ExecutedVersion != "" {
		h.Set("X-Amz-Executed-Version", out.ExecutedVersion)
	}
	if out.FunctionError != "" {
		h.Set("X-Amz-Function-Error", out.FunctionError)
	}
	if in.LogTail && out.LogTail != nil {
		h.Set("X-Amz-Log-Result", logResult(out.LogTail))
	}
	if out.Status != 200 {
		w.WriteHeader(out.Status)
		return nil
	}
	if len(out.Payload) > structs.MaxSyncPayloadBytes {
		h.Set("X-Amz-Function-Error", "Unhandled")
		out.Payload = invoke.ErrorJSON("Function.ResponseSizeTooLarge",
			fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", structs.MaxSyncPayloadBytes))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out.Payload)))
	w.WriteHeader(200)
	_, _ = w.Write(out.Payload)
	return nil
}

// logResult is X-Amz-Log-Result (and InvokeComplete's LogResult): the last 4 KB, base64.
func logResult(tail []byte) string {
	if len(tail) > logTailBytes {
		tail = tail[len(tail)-logTailBytes:]
	}
	return base64.StdEncoding.EncodeToString(tail)
}

// invokeInput reads an Invoke or InvokeWithResponseStream request: its headers, Qualifier and
// JSON payload (at most 6 MB).
func invokeInput(r *http.Request, reqID string) (*gateway.InvokeInput, error) {
	in := &gateway.InvokeInput{
		FunctionName:   mux.Vars(r)["name"],
		Qualifier:      r.URL.Query().Get("Qualifier"),
		InvocationType: r.Header.Get("X-Amz-Invocation-Type"),
		RequestID:      reqID,
	}
	in.TraceID, in.TraceFromCaller = requestTrace(r)
	switch lt := r.Header.Get("X-Amz-Log-Type"); lt {
	case "", "None":
	case "Tail":
		in.LogTail = true
	default:
		return nil, lambda.InvalidParameter("invalid X-Amz-Log-Type %q: use None or Tail", lt)
	}
	if cc := r.Header.Get("X-Amz-Client-Context"); cc != "" {
		decoded, err := gateway.ValidClientContext(cc)
		if err != nil {
			return nil, err
		}
		in.ClientContext = decoded
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, structs.MaxSyncPayloadBytes+1))
	if err != nil {
		return nil, lambda.InvalidRequestContent("reading the request body: %v", err)
	}
	if len(payload) > structs.MaxSyncPayloadBytes {
		return nil, lambda.RequestTooLarge("Request must be smaller than %d bytes for the InvokeFunction operation", structs.MaxSyncPayloadBytes)
	}
	if len(payload) > 0 && !json.Valid(payload) {
		return nil, lambda.InvalidRequestContent("Could not parse request body into json: the payload is not valid JSON")
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	in.Payload = payload
	return in, nil
}

// maxItems reads the MaxItems query parameter of the List operations; 0 when absent.
func maxItems(r *http.Request) (int, error) {
	s := r.URL.Query().Get("MaxItems")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 10000 {
		return 0, lambda.InvalidParameter("MaxItems %q must be a number from 1 to 10000", s)
	}
	return n, nil
}

// noContent answers a Delete operation.
func noContent(w http.ResponseWriter, reqID string) error {
	w.Header().Set("X-Amzn-RequestId", reqID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxManagementBody))
	if err := dec.Decode(v); err != nil {
		return lambda.InvalidRequestContent("could not parse the request body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, reqID string, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-RequestId", reqID)
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func (a *api) createFunction(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.CreateFunctionInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.CreateFunction(r.Context(), &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 201, out)
}

func (a *api) getFunction(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetFunction(mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) getConfiguration(w http.ResponseWriter, r *http.Request, reqID string) error {
	fn, err := a.cfg.Gateway.FunctionVersion(mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"))
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, lambda.ConfigurationFrom(fn, a.cfg.Gateway.Region()))
}

func (a *api) putConcurrency(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.Concurrency
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.ReservedConcurrentExecutions == nil {
		return lambda.InvalidParameter("ReservedConcurrentExecutions is required")
	}
	out, err := a.cfg.Gateway.PutFunctionConcurrency(r.Context(), mux.Vars(r)["name"], *in.ReservedConcurrentExecutions)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) getConcurrency(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetFunctionConcurrency(mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) deleteConcurrency(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteFunctionConcurrency(r.Context(), mux.Vars(r)["name"]); err != nil {
		return err
	}
	return noContent(w, reqID)
}

func (a *api) putProvisioned(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.ProvisionedConcurrencyInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.ProvisionedConcurrentExecutions == nil {
		return lambda.InvalidParameter("ProvisionedConcurrentExecutions is required")
	}
	out, err := a.cfg.Gateway.PutProvisionedConcurrencyConfig(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier"), *in.ProvisionedConcurrentExecutions)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, http.StatusAccepted, out)
}

// getProvisioned is GetProvisionedConcurrencyConfig, or with List=ALL
// ListProvisionedConcurrencyConfigs (the same path in Lambda's API).
func (a *api) getProvisioned(w http.ResponseWriter, r *http.Request, reqID string) error {
	q := r.URL.Query()
	if q.Get("List") == "ALL" {
		max, err := maxItems(r)
		if err != nil {
			return err
		}
		out, err := a.cfg.Gateway.ListProvisionedConcurrencyConfigs(mux.Vars(r)["name"], q.Get("Marker"), max)
		if err != nil {
			return err
		}
		return writeJSON(w, reqID, 200, out)
	}
	out, err := a.cfg.Gateway.GetProvisionedConcurrencyConfig(mux.Vars(r)["name"], q.Get("Qualifier"))
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) deleteProvisioned(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteProvisionedConcurrencyConfig(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier")); err != nil {
		return err
	}
	return noContent(w, reqID)
}

func (a *api) createAlias(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.AliasInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.CreateAlias(r.Context(), mux.Vars(r)["name"], &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 201, out)
}

func (a *api) getAlias(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.GetAlias(mux.Vars(r)["name"], mux.Vars(r)["alias"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) updateAlias(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.AliasInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.UpdateAlias(r.Context(), mux.Vars(r)["name"], mux.Vars(r)["alias"], &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) deleteAlias(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteAlias(r.Context(), mux.Vars(r)["name"], mux.Vars(r)["alias"]); err != nil {
		return err
	}
	return noContent(w, reqID)
}

func (a *api) listAliases(w http.ResponseWriter, r *http.Request, reqID string) error {
	out, err := a.cfg.Gateway.ListAliases(mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) publishVersion(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.PublishVersionInput
	if r.ContentLength != 0 {
		if err := decodeBody(r, &in); err != nil {
			return err
		}
	}
	out, err := a.cfg.Gateway.PublishVersion(r.Context(), mux.Vars(r)["name"], &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 201, out)
}

func (a *api) listVersions(w http.ResponseWriter, r *http.Request, reqID string) error {
	max, err := maxItems(r)
	if err != nil {
		return err
	}
	out, err := a.cfg.Gateway.ListVersionsByFunction(mux.Vars(r)["name"], r.URL.Query().Get("Marker"), max)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) updateConfiguration(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.UpdateFunctionConfigurationInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.UpdateFunctionConfiguration(r.Context(), mux.Vars(r)["name"], &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) updateCode(w http.ResponseWriter, r *http.Request, reqID string) error {
	var in lambda.UpdateFunctionCodeInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	out, err := a.cfg.Gateway.UpdateFunctionCode(r.Context(), mux.Vars(r)["name"], &in)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, out)
}

func (a *api) listFunctions(w http.ResponseWriter, r *http.Request, reqID string) error {
	max, err := maxItems(r)
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, a.cfg.Gateway.ListFunctions(r.URL.Query().Get("Marker"), max))
}

func (a *api) deleteFunction(w http.ResponseWriter, r *http.Request, reqID string) error {
	if err := a.cfg.Gateway.DeleteFunction(r.Context(), mux.Vars(r)["name"], r.URL.Query().Get("Qualifier")); err != nil {
		return err
	}
	return noContent(w, reqID)
}

// logs prints the function's lines from every node (the last ones, in a time range, of one
// invocation, matching a filter), then follows new ones when asked: text (TIME\tLINE, as the
// log always read) or format=json, one entry per line.
func (a *api) logs(w http.ResponseWriter, r *http.Request, reqID string) error {
	name := mux.Vars(r)["name"]
	if _, err := a.cfg.Gateway.GetFunction(name, ""); err != nil {
		return err
	}
	if a.cfg.Logs == nil {
		return lambda.ServiceError("function logs are not available on this node")
	}
	p, err := funclog.ParseParams(r.URL.Query(), time.Now())
	if err != nil {
		var pe *funclog.ParamError
		if errors.As(err, &pe) {
			return lambda.InvalidParameter("%s: %s", pe.Param, pe.Msg)
		}
		return lambda.InvalidParameter("%v", err)
	}
	// The status goes out with the first line: a failure before any (this node's log cannot
	// be read) is still an error answer.
	started := false
	start := func() {
		started = true
		if p.JSON {
			w.Header().Set("Content-Type", "application/x-ndjson")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.Header().Set("X-Amzn-RequestId", reqID)
		w.WriteHeader(200)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	flusher, _ := w.(http.Flusher)
	live := false // past the past lines: each line goes out at once
	err = a.cfg.Logs.Read(r.Context(), name, p, func(e funclog.Entry) error {
		if !started {
			start()
		}
		if e.Type == funclog.TypeCaughtUp {
			live = true
		} else if p.JSON {
			if err := enc.Encode(e); err != nil {
				return err
			}
		} else if _, err := bw.WriteString(e.Time + "\t" + e.Message + "\n"); err != nil {
			return err
		}
		if !live {
			return nil
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	if !started {
		if err != nil {
			return fmt.Errorf("reading the log of %s: %w", name, err)
		}
		start()
	}
	_ = bw.Flush()
	if err != nil && r.Context().Err() == nil {
		a.logger.Warn("reading function logs", "function", name, "error", err)
	}
	return nil
}

// hasCode answers 200 when the node holds the code zip with this hex SHA-256, 404 otherwise.
func (a *api) hasCode(w http.ResponseWriter, r *http.Request, reqID string) error {
	w.Header().Set("X-Amzn-RequestId", reqID)
	if !a.cfg.Gateway.HasCode(mux.Vars(r)["sha256"]) {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *api) clusterOps() (ClusterOps, error) {
	if a.cfg.Cluster == nil {
		return nil, lambda.UnknownOperation("this node serves no cluster operations")
	}
	return a.cfg.Cluster, nil
}

func (a *api) clusterMembers(w http.ResponseWriter, r *http.Request, reqID string) error {
	c, err := a.clusterOps()
	if err != nil {
		return err
	}
	m, err := c.Members()
	if err != nil {
		return err
	}
	return writeJSON(w, reqID, 200, map[string]any{"members": m})
}

func (a *api) clusterJoin(w http.ResponseWriter, r *http.Request, reqID string) error {
	c, err := a.clusterOps()
	if err != nil {
		return err
	}
	var in struct{ Address string }
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.Address == "" {
		return lambda.InvalidParameter("Address is required: another node's cluster address (host:port)")
	}
	if err := c.Join(r.Context(), in.Address); err != nil {
		return lambda.ServiceError("joining through %s: %v", in.Address, err)
	}
	return writeJSON(w, reqID, 200, map[string]string{"joined": in.Address})
}

func (a *api) clusterLeave(w http.ResponseWriter, r *http.Request, reqID string) error {
	c, err := a.clusterOps()
	if err != nil {
		return err
	}
	if err := c.Leave(r.Context()); err != nil {
		return lambda.ServiceError("leaving the cluster: %v", err)
	}
	return writeJSON(w, reqID, 200, map[string]string{"left": "this node left the cluster and is stopping"})
}

// snapshotSave streams an archive of the cluster's state and code (gateway cluster snapshot save).
func (a *api) snapshotSave(w http.ResponseWriter, r *http.Request, reqID string) error {
	c, err := a.clusterOps()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("X-Amzn-RequestId", reqID)
	if err := c.SaveSnapshot(r.Context(), w); err != nil {
		// Headers may be out: the archive is cut short, which the client's gzip reader notices.
		a.logger.Error("saving a snapshot", "error", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// snapshotRestore replaces the cluster's state with an uploaded archive.
func (a *api) snapshotRestore(w http.ResponseWriter, r *http.Request, reqID string) error {
	c, err := a.clusterOps()
	if err != nil {
		return err
	}
	if err := c.RestoreSnapshot(r.Context(), r.Body); err != nil {
		return lambda.InvalidRequestContent("restoring the snapshot: %v", err)
	}
	return writeJSON(w, reqID, 200, map[string]string{"restored": "the cluster's state and code come from the archive now"})
}

func (a *api) status(w http.ResponseWriter, r *http.Request, reqID string) error {
	var st any = map[string]string{}
	if a.cfg.Status != nil {
		st = a.cfg.Status()
	}
	return writeJSON(w, reqID, 200, st)
}

func (a *api) runtimes(w http.ResponseWriter, r *http.Request, reqID string) error {
	var out any = []any{}
	if a.cfg.Runtimes != nil {
		out = a.cfg.Runtimes(r.Context())
	}
	return writeJSON(w, reqID, 200, map[string]any{"nodes": out})
}
