// Package metrics is the node's Prometheus registry: per-function series with bounded labels,
// the node's figures read at scrape time, Raft's go-metrics figures through their Prometheus
// sink, and a per-function history of recent minutes for the console. The layers that count
// (sandbox, gateway) declare small interfaces of their own; the agent wires this package in.
package metrics

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric of the gateway.
const Namespace = "lambdagw"

// Bounds on the label values of one function, whatever its callers and runtimes send.
const (
	// MaxQualifiers is how many qualifiers (versions, aliases, $LATEST) of a function get series
	// of their own; the calls of any further one are counted under OtherLabel.
	MaxQualifiers = 32
	// MaxErrorTypes is how many error types a function's runtime reports, beyond the platform's
	// own, that get series of their own; the rest are counted under OtherLabel.
	MaxErrorTypes = 16
	// maxErrorTypeLen is the longest error type kept as a label value.
	maxErrorTypeLen = 64
)

// OtherLabel stands for the label values past a bound.
const OtherLabel = "other"

// Throttle reasons, the values of the reason label.
const (
	ThrottleReserved     = "reserved_concurrency" // the function's reserved concurrency is taken
	ThrottleConcurrency  = "concurrency_limit"    // the node's (and cluster's) max_concurrency share is taken
	ThrottleCapacity     = "node_capacity"        // no room for another environment
	ThrottleAsyncBacklog = "async_backlog"        // the in-memory backlog of events is full
)

var throttleReasons = [...]string{ThrottleReserved, ThrottleConcurrency, ThrottleCapacity, ThrottleAsyncBacklog}

// platformErrors are the error types the gateway itself reports: always kept as they are.
var platformErrors = map[string]bool{
	"Sandbox.Timedout": true, "Runtime.ExitError": true, "Runtime.OutOfMemory": true, "Runtime.NoResponse": true,
	"Runtime.StreamError": true, "Function.ResponseSizeTooLarge": true, "Runtime.Unknown": true, "Unhandled": true,
	"ServiceException": true, "Runtime.InvalidResponse": true,
}

// durationBuckets (seconds) span a warm call of a millisecond to a 15-minute timeout.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}

// Registry is one agent's metrics. Its methods are safe for concurrent use; a nil *Registry
// counts nothing.
type Registry struct {
	reg *prometheus.Registry

	invocations, coldStarts, errors, throttles, streamBytes *prometheus.CounterVec
	duration, initDuration                                  *prometheus.HistogramVec
	concurrent                                              *prometheus.GaugeVec
	thaw, freeze                                            prometheus.Histogram

	// series caches each invoked ARN's children: the warm path looks one up without building a
	// label string.
	series sync.Map // ARN -> *Series
	mu     sync.Mutex
	fns    map[string]*function

	now func() time.Time
}

// function is what a function's series share: the bounds of its label values and its history.
type function struct {
	name string
	// mu guards quals and errTypes.
	mu       sync.Mutex
	quals    map[string]*Series
	errTypes map[string]bool
	// arns counts the ARNs cached for the function in Registry.series (under Registry.mu).
	arns int
	hist history
	// gone is set when the function's series are deleted: an invocation still running records
	// into the orphaned children it holds, and must not make a new error series.
	gone atomic.Bool
}

// orphan takes what a gone function's invocation still counts: a counter in no registry.
var orphan = prometheus.NewCounter(prometheus.CounterOpts{Name: "lambdagw_orphan"})

// maxARNs bounds the ARNs of one function cached for the warm path; calls through others find
// their series under the lock.
const maxARNs = 4 * MaxQualifiers

// New returns an empty registry with the Go runtime and process collectors.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry(), fns: map[string]*function{}, now: time.Now}
	fq := []string{"function", "qualifier"}
	r.invocations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "invocations_total",
		Help: "Invocations that ran in this node's sandbox, by function and the qualifier the caller invoked."}, fq)
	r.coldStarts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "cold_starts_total",
		Help: "Invocations that started a new environment (ran Init)."}, fq)
	r.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "invocation_errors_total",
		Help: "Invocations that ended in a function error, by error type (bounded: rare or malformed types count as \"other\")."},
		[]string{"function", "qualifier", "error_type"})
	r.throttles = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "throttles_total",
		Help: "Invocations refused with 429 on this node, by reason."}, []string{"function", "qualifier", "reason"})
	r.streamBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "stream_response_bytes_total",
		Help: "Bytes of streamed responses the functions wrote."}, fq)
	r.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "invocation_duration_seconds",
		Help: "Duration of invocations, as the REPORT line's Duration.", Buckets: durationBuckets}, fq)
	r.initDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "init_duration_seconds",
		Help: "Duration of Init of cold starts.", Buckets: durationBuckets}, fq)
	r.concurrent = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "concurrent_executions",
		Help: "Invocations running in this node's sandbox now."}, fq)
	latency := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	r.thaw = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "environment_thaw_seconds",
		Help: "Time to thaw a frozen environment before an invocation.", Buckets: latency})
	r.freeze = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "environment_freeze_seconds",
		Help: "Time to freeze an idle environment.", Buckets: latency})
	r.reg.MustRegister(r.invocations, r.coldStarts, r.errors, r.throttles, r.streamBytes, r.duration, r.initDuration,
		r.concurrent, r.thaw, r.freeze,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Registerer is where other collectors of the node register (Raft's sink, the node's figures).
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Gatherer reads every metric (tests, the handler).
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handler serves the registry in Prometheus' text format, or OpenMetrics when the scraper asks.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})
}

// Series are one function's series through one qualifier, resolved once. A nil *Series counts
// nothing.
type Series struct {
	fn                                   *function
	function, qualifier                  string
	invocations, coldStarts, streamBytes prometheus.Counter
	duration, initDuration               prometheus.Observer
	concurrent                           prometheus.Gauge
	throttles                            [len(throttleReasons)]prometheus.Counter
	errMu                                sync.Mutex
	errs                                 map[string]prometheus.Counter
	registry                             *Registry
}

// Function returns the series of calls of function name through arn (the ARN the caller
// invoked: its qualifier is the label, none is $LATEST). The first call of an ARN makes them;
// later ones are a map read.
func (r *Registry) Function(name, arn string) *Series {
	if r == nil {
		return nil
	}
	if s, ok := r.series.Load(arn); ok {
		return s.(*Series)
	}
	return r.makeSeries(name, arn)
}

func (r *Registry) makeSeries(name, arn string) *Series {
	qual := Qualifier(name, arn)
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.series.Load(arn); ok {
		return s.(*Series)
	}
	f := r.fns[name]
	if f == nil {
		f = &function{name: name, quals: map[string]*Series{}, errTypes: map[string]bool{}}
		r.fns[name] = f
	}
	s := f.quals[qual]
	if s == nil {
		if len(f.quals) >= MaxQualifiers {
			qual = OtherLabel
			s = f.quals[qual]
		}
		if s == nil {
			s = r.newSeries(f, qual)
			f.quals[qual] = s
		}
	}
	if f.arns < maxARNs {
		f.arns++
		r.series.Store(arn, s)
	}
	return s
}

func (r *Registry) newSeries(f *function, qual string) *Series {
	s := &Series{fn: f, function: f.name, qualifier: qual, registry: r, errs: map[string]prometheus.Counter{},
		invocations:  r.invocations.WithLabelValues(f.name, qual),
		coldStarts:   r.coldStarts.WithLabelValues(f.name, qual),
		streamBytes:  r.streamBytes.WithLabelValues(f.name, qual),
		duration:     r.duration.WithLabelValues(f.name, qual),
		initDuration: r.initDuration.WithLabelValues(f.name, qual),
		concurrent:   r.concurrent.WithLabelValues(f.name, qual),
	}
	for i, reason := range throttleReasons {
		s.throttles[i] = r.throttles.WithLabelValues(f.name, qual, reason)
	}
	return s
}

// Qualifier is the qualifier label of a call of function name through arn: the part after the
// function's name, $LATEST when there is none.
func Qualifier(name, arn string) string {
	i := strings.LastIndex(arn, ":function:")
	if i < 0 {
		return "$LATEST"
	}
	rest := arn[i+len(":function:"):]
	if q, ok := strings.CutPrefix(rest, name+":"); ok && q != "" {
		return q
	}
	return "$LATEST"
}

// Begin counts an invocation starting in the sandbox.
func (s *Series) Begin() {
	if s == nil {
		return
	}
	s.concurrent.Inc()
}

// End counts an invocation that ended: its duration, its Init's on a cold start (initDur > 0)
// and its error type ("" on success).
func (s *Series) End(dur, initDur time.Duration, errorType string) {
	if s == nil {
		return
	}
	s.concurrent.Dec()
	s.invocations.Inc()
	s.duration.Observe(dur.Seconds())
	cold := initDur > 0
	if cold {
		s.coldStarts.Inc()
		s.initDuration.Observe(initDur.Seconds())
	}
	if errorType != "" {
		s.errorCounter(errorType).Inc()
	}
	s.fn.hist.add(s.registry.now(), dur, errorType != "", cold, false)
}

// StreamBytes counts bytes of a streamed response.
func (s *Series) StreamBytes(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.streamBytes.Add(float64(n))
}

// Throttled counts a call refused for reason (one of the Throttle constants; another counts as
// node_capacity).
func (s *Series) Throttled(reason string) {
	if s == nil {
		return
	}
	i := 2
	for j, r := range throttleReasons {
		if r == reason {
			i = j
		}
	}
	s.throttles[i].Inc()
	s.fn.hist.add(s.registry.now(), 0, false, false, true)
}

// errorCounter is the counter of errorType, bounded per function (see ErrorLabel).
func (s *Series) errorCounter(errorType string) prometheus.Counter {
	s.errMu.Lock()
	c, ok := s.errs[errorType]
	s.errMu.Unlock()
	if ok {
		return c
	}
	if s.fn.gone.Load() {
		return orphan
	}
	label := s.fn.errorLabel(errorType)
	c = s.registry.errors.WithLabelValues(s.function, s.qualifier, label)
	s.errMu.Lock()
	if len(s.errs) < MaxErrorTypes*4 { // a cache of raw values, bounded too
		s.errs[errorType] = c
	}
	s.errMu.Unlock()
	return c
}

// errorLabel maps an error type to its label value: the platform's own as they are; a runtime's
// when it is short and plain, up to MaxErrorTypes of them per function; anything else "other".
func (f *function) errorLabel(t string) string {
	if platformErrors[t] {
		return t
	}
	if !plainErrorType(t) {
		return OtherLabel
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errTypes[t] {
		return t
	}
	if len(f.errTypes) >= MaxErrorTypes {
		return OtherLabel
	}
	f.errTypes[t] = true
	return t
}

// plainErrorType accepts what error types look like (Runtime.ImportModuleError, MyError,
// errorString, *errors.errorString): letters, digits and . _ - * only, at most 64 bytes.
func plainErrorType(t string) bool {
	if t == "" || len(t) > maxErrorTypeLen || t == OtherLabel {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '*') {
			return false
		}
	}
	return true
}

// Thawed observes the time a thaw took.
func (r *Registry) Thawed(d time.Duration) {
	if r != nil {
		r.thaw.Observe(d.Seconds())
	}
}

// Frozen observes the time a freeze took.
func (r *Registry) Frozen(d time.Duration) {
	if r != nil {
		r.freeze.Observe(d.Seconds())
	}
}

// Forget drops every series and the history of function name (it was deleted).
func (r *Registry) Forget(name string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked(name)
}

func (r *Registry) forgetLocked(name string) {
	f, ok := r.fns[name]
	if !ok {
		return
	}
	f.gone.Store(true)
	delete(r.fns, name)
	r.series.Range(func(k, v any) bool {
		if v.(*Series).function == name {
			r.series.Delete(k)
		}
		return true
	})
	l := prometheus.Labels{"function": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		r.invocations, r.coldStarts, r.errors, r.throttles, r.streamBytes, r.duration, r.initDuration, r.concurrent} {
		v.DeletePartialMatch(l)
	}
}

// Keep forgets every function not in names (the functions the replicated state holds).
func (r *Registry) Keep(names []string) {
	if r == nil {
		return
	}
	keep := make(map[string]struct{}, len(names))
	for _, n := range names {
		keep[n] = struct{}{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.fns {
		if _, ok := keep[name]; !ok {
			r.forgetLocked(name)
		}
	}
}

// History is function name's per-minute buckets on this node for the minutes ending with the
// minute of end (n of them, oldest first); a function never invoked here has empty ones.
func (r *Registry) History(name string, end time.Time, n int) NodeHistory {
	h := NodeHistory{End: end.Unix() / 60, Minutes: make([]Minute, n)}
	if r == nil {
		return h
	}
	r.mu.Lock()
	f := r.fns[name]
	r.mu.Unlock()
	if f != nil {
		f.hist.read(h.End, h.Minutes)
	}
	return h
}

// Throttled counts a call of function name through arn refused for reason (the gateway's
// throttles).
func (r *Registry) Throttled(name, arn, reason string) { r.Function(name, arn).Throttled(reason) }
