package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gmprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// Node reads the node's figures when the registry is scraped. Each field is optional.
type Node struct {
	// Environments counts the live environments by state (frozen, idle, invoking, standby...).
	Environments func() map[string]int
	// Memory is the memory limit of all live environments and the sum of their peak use.
	Memory func() (limitBytes, peakBytes uint64)
	// Provisioned counts the provisioned environments in use, by function and version.
	Provisioned func() []FunctionCount
	// LogLines are the function log lines dropped (a function wrote faster than its log took
	// them) and lost (write errors) since the agent started.
	LogLines func() (dropped, lost int64)
	// Streams are the depths of the node's JetStream streams (asked within ctx).
	Streams func(ctx context.Context) ([]StreamDepth, error)
	// Plugins are the plugins' states and restarts.
	Plugins func() []PluginState
	// Async are the counts of what became of the functions' events on this node.
	Async func() []AsyncCount
	// Waiting are the functions' events stored in the cluster, not yet run (asked within ctx).
	Waiting func(ctx context.Context) ([]AsyncWaiting, error)
}

// AsyncWaiting is how many of a function's events wait to run, and how many run now.
type AsyncWaiting struct {
	Function string
	Waiting  uint64
	InFlight int
}

// FunctionCount is a count of one function's qualifier.
type FunctionCount struct {
	Function, Qualifier string
	N                   int
}

// StreamDepth is one JetStream stream's content.
type StreamDepth struct {
	Stream          string
	Messages, Bytes uint64
	Consumers       int
}

// PluginState is one plugin's health.
type PluginState struct {
	Name, State string
	Restarts    int
}

// AsyncCount is one outcome count of a function's events (succeeded, retried,
// retries_exhausted, expired, delivered, dropped).
type AsyncCount struct {
	Function, Outcome string
	N                 uint64
}

// pluginStates are the states a plugin may be in (plugins/host); each gets a series, 1 for the
// current one.
var pluginStates = []string{"starting", "running", "failed", "refused", "stopped"}

// streamsTimeout bounds asking JetStream for its streams during a scrape.
const streamsTimeout = 2 * time.Second

type nodeCollector struct {
	n Node

	envs, memLimit, memPeak, provisioned, logDropped, logLost *prometheus.Desc
	streamMsgs, streamBytes, streamConsumers, streamUp        *prometheus.Desc
	pluginUp, pluginState, pluginRestarts, async              *prometheus.Desc
	asyncWaiting, asyncInFlight                               *prometheus.Desc
}

// SetNode registers the node's figures.
func (r *Registry) SetNode(n Node) error {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
	}
	c := &nodeCollector{n: n,
		envs:            d("environments", "Live environments on this node, by state.", "state"),
		memLimit:        d("environments_memory_limit_bytes", "Memory limit of all live environments on this node."),
		memPeak:         d("environments_memory_peak_bytes", "Sum of the peak memory use of all live environments on this node."),
		provisioned:     d("provisioned_environments_in_use", "Provisioned environments running an invocation, by function and version.", "function", "qualifier"),
		logDropped:      d("function_log_lines_dropped_total", "Function log lines refused because a function wrote faster than its log took them."),
		logLost:         d("function_log_lines_lost_total", "Function log lines lost to write errors."),
		streamMsgs:      d("jetstream_stream_messages", "Messages stored in a JetStream stream (events waiting, queue and stream records).", "stream"),
		streamBytes:     d("jetstream_stream_bytes", "Bytes stored in a JetStream stream.", "stream"),
		streamConsumers: d("jetstream_stream_consumers", "Consumers of a JetStream stream.", "stream"),
		streamUp:        d("jetstream_up", "1 when JetStream answered this scrape's question for its streams, else 0."),
		pluginUp:        d("plugin_up", "1 when the plugin is running, else 0.", "plugin"),
		pluginState:     d("plugin_state", "1 for the plugin's current state.", "plugin", "state"),
		pluginRestarts:  d("plugin_restarts_total", "Times the plugin was restarted after it exited or failed.", "plugin"),
		async:           d("async_events_total", "What became of the functions' asynchronous events on this node, by outcome.", "function", "outcome"),
		asyncWaiting:    d("async_events_waiting", "A function's asynchronous events stored in the cluster, waiting to run (retries waiting their backoff included).", "function"),
		asyncInFlight:   d("async_events_in_flight", "A function's asynchronous events handed to a node and not yet settled.", "function"),
	}
	return r.reg.Register(c)
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.envs, c.memLimit, c.memPeak, c.provisioned, c.logDropped, c.logLost, c.streamMsgs,
		c.streamBytes, c.streamConsumers, c.streamUp, c.pluginUp, c.pluginState, c.pluginRestarts, c.async, c.asyncWaiting, c.asyncInFlight} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if f := c.n.Environments; f != nil {
		for state, n := range f() {
			gauge(c.envs, float64(n), state)
		}
	}
	if f := c.n.Memory; f != nil {
		limit, peak := f()
		gauge(c.memLimit, float64(limit))
		gauge(c.memPeak, float64(peak))
	}
	if f := c.n.Provisioned; f != nil {
		for _, p := range f() {
			gauge(c.provisioned, float64(p.N), p.Function, p.Qualifier)
		}
	}
	if f := c.n.LogLines; f != nil {
		dropped, lost := f()
		counter(c.logDropped, float64(dropped))
		counter(c.logLost, float64(lost))
	}
	if f := c.n.Streams; f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), streamsTimeout)
		streams, err := f(ctx)
		cancel()
		gauge(c.streamUp, boolFloat(err == nil))
		for _, s := range streams {
			gauge(c.streamMsgs, float64(s.Messages), s.Stream)
			gauge(c.streamBytes, float64(s.Bytes), s.Stream)
			gauge(c.streamConsumers, float64(s.Consumers), s.Stream)
		}
	}
	if f := c.n.Waiting; f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), streamsTimeout)
		waiting, _ := f(ctx) // what was read; jetstream_up says whether JetStream answers
		cancel()
		for _, w := range waiting {
			gauge(c.asyncWaiting, float64(w.Waiting), w.Function)
			gauge(c.asyncInFlight, float64(w.InFlight), w.Function)
		}
	}
	if f := c.n.Plugins; f != nil {
		for _, p := range f() {
			gauge(c.pluginUp, boolFloat(p.State == "running"), p.Name)
			for _, s := range pluginStates {
				gauge(c.pluginState, boolFloat(p.State == s), p.Name, s)
			}
			counter(c.pluginRestarts, float64(p.Restarts), p.Name)
		}
	}
	if f := c.n.Async; f != nil {
		for _, a := range f() {
			counter(c.async, float64(a.N), a.Function, a.Outcome)
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// goMetricsOnce: go-metrics has one global sink per process.
var (
	goMetricsOnce sync.Once
	goMetricsErr  error
)

// ErrGoMetricsTaken says another registry of this process already receives go-metrics' figures.
var ErrGoMetricsTaken = errors.New("go-metrics' figures already go to another registry of this process")

// RouteGoMetrics sends the figures libraries emit through go-metrics (hashicorp/raft's) to this
// registry, named lambdagw_raft_... (in snake_case, counters ending in _total), through
// go-metrics' Prometheus sink as Consul and Nomad do.
// It can be done once per process.
func (r *Registry) RouteGoMetrics() error {
	done := false
	goMetricsOnce.Do(func() {
		done = true
		opts := gmprom.DefaultPrometheusOpts
		opts.Registerer = r.reg
		sink, err := gmprom.NewPrometheusSinkFrom(opts)
		if err != nil {
			goMetricsErr = fmt.Errorf("making go-metrics' Prometheus sink: %w", err)
			return
		}
		conf := gometrics.DefaultConfig(Namespace)
		conf.EnableHostname = false
		conf.EnableHostnameLabel = false
		conf.EnableRuntimeMetrics = false // the Go collector has them
		if _, err := gometrics.NewGlobal(conf, snakeSink{sink}); err != nil {
			goMetricsErr = fmt.Errorf("installing go-metrics' global sink: %w", err)
		}
	})
	if !done && goMetricsErr == nil {
		return ErrGoMetricsTaken
	}
	return goMetricsErr
}

// snakeSink renames go-metrics' keys to Prometheus' conventions before its Prometheus sink
// sees them: raft's camelCase parts in snake_case (commitTime: commit_time), and counters
// ending in _total.
type snakeSink struct{ next gometrics.MetricSink }

func (s snakeSink) SetGauge(k []string, v float32) { s.next.SetGauge(snakeKey(k, ""), v) }
func (s snakeSink) SetGaugeWithLabels(k []string, v float32, l []gometrics.Label) {
	s.next.SetGaugeWithLabels(snakeKey(k, ""), v, l)
}
func (s snakeSink) EmitKey(k []string, v float32)     { s.next.EmitKey(snakeKey(k, ""), v) }
func (s snakeSink) IncrCounter(k []string, v float32) { s.next.IncrCounter(snakeKey(k, "total"), v) }
func (s snakeSink) IncrCounterWithLabels(k []string, v float32, l []gometrics.Label) {
	s.next.IncrCounterWithLabels(snakeKey(k, "total"), v, l)
}
func (s snakeSink) AddSample(k []string, v float32) { s.next.AddSample(snakeKey(k, ""), v) }
func (s snakeSink) AddSampleWithLabels(k []string, v float32, l []gometrics.Label) {
	s.next.AddSampleWithLabels(snakeKey(k, ""), v, l)
}

// snakeKey is key with each part in snake_case, and suffix appended as a last part.
func snakeKey(key []string, suffix string) []string {
	out := make([]string, 0, len(key)+1)
	for _, p := range key {
		out = append(out, snake(p))
	}
	if suffix != "" {
		out = append(out, suffix)
	}
	return out
}

// snake turns camelCase into snake_case: appendEntries is append_entries, getLog get_log.
func snake(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			if i > 0 && s[i-1] != '_' && !('A' <= s[i-1] && s[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
