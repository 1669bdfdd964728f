package main

// The trigger measurements (issue 6), on an agent of their own running the built-in queue and
// stream trigger plugins (bin/gateway-trigger-*, built into the temp folder when missing) on its
// embedded NATS JetStream, and a third plugin: this very binary, which serves as a probe trigger
// when the agent starts it (init below).
//
//   - Queue throughput: N records published (JetStream async publish on the queue's subject, the
//     plugins/sdk/natsq convention) to a queue feeding the test function through the queue trigger,
//     batch_size 10 and then 100, one batch in flight (maximum_concurrency 1, the default); timed
//     from the first publish until the queue is empty (every record acked, which the plugin does
//     only after the function succeeded with its batch). The function's log then must name every
//     record (its SQS handler logs "record <id> ok <receive count>"), and its REPORT lines since
//     the run began count the batches. The floor: the same function invoked directly through the
//     Invoke API with an SQS event of the same size, one caller at a time, measured for a second
//     before and a second after the runs. Each trigger has -trigger-runs runs (3 by default, each
//     with records of its own); the row shows the median and the slowest.
//   - Stream throughput: the same through the stream trigger (batch_size 100, 4 shards, one batch
//     in flight per shard), timed until every shard's checkpoint is at its last record, against
//     direct invocations with a 100-record Kinesis event from 4 callers.
//   - The plugin boundary: the probe plugin delivers a 10-record SQS event through the real
//     Host.Deliver (gRPC from the plugin's process to the agent, which invokes the function and
//     shapes the result) and, from the same process in alternating blocks, invokes the function
//     with the same bytes through the Invoke API over HTTP; the difference is what the plugin
//     hop adds to a batch. Besides, the queue trigger's mean time per batch at batch_size 10
//     (fetching from NATS, delivering, acking) against the direct calls' mean.

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/plugins/host"
	"github.com/lambdagw/gateway/plugins/sdk"
	"github.com/lambdagw/gateway/plugins/sdk/natsq"
	"github.com/lambdagw/gateway/plugins/sdk/natsstream"
)

// triggerOpts sizes the trigger measurements.
type triggerOpts struct {
	records  int // records published in each throughput run
	runs     int // throughput runs of each trigger (the median is kept)
	latencyN int // deliveries, and direct invocations, of the plugin boundary measurement
}

var (
	// triggerFlags are set by main's flags.
	triggerFlags triggerOpts
	// triggersOnly skips every measurement but the trigger rows.
	triggersOnly bool
)

const (
	// triggerFreezeDelay keeps an environment thawed between back-to-back batches, so the rows
	// measure the trigger path rather than the freezer (the single-node rows show its cost).
	triggerFreezeDelay = "100ms"
	// baselineSlice is how long the direct calls run before and again after a throughput run.
	baselineSlice = time.Second
	// The ids of the records the function logs: the measured ones from 1, the others apart.
	warmIDs     = 1_000_000
	baselineIDs = 2_000_000
	probeIDs    = 3_000_000
	// maxTriggerRecords keeps every run's lines in the function's current log file.
	maxTriggerRecords = 100_000
	region            = "us-east-1"
	streamShard       = 4
)

// init makes this binary the probe trigger plugin when the agent starts it (go-plugin sets the
// handshake's cookie in the plugin's environment).
func init() {
	if os.Getenv(sdk.Handshake.MagicCookieKey) == sdk.Handshake.MagicCookieValue {
		sdk.Serve(sdk.ServeOpts{Trigger: &probeSource{started: map[string]bool{}}})
	}
}

// benchTriggers starts the agent, measures and stops everything it started.
func benchTriggers(client *http.Client, gwBin, fnDir, tmp, driver string) (rows []string, err error) {
	o := triggerFlags
	if o.records < 1 || o.runs < 1 || o.records*o.runs > maxTriggerRecords || o.latencyN < 1 {
		// The function's log, which must name every record, rotates at 16 MB (funclog).
		return nil, fmt.Errorf("-trigger-records times -trigger-runs must be 1 to %d, and -trigger-latency-n at least 1", maxTriggerRecords)
	}
	if fnDir, err = filepath.Abs(fnDir); err != nil { // the function files are in the temp folder
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, "triggers-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	queueBin, err := pluginBinary(gwBin, "queue", dir)
	if err != nil {
		return nil, err
	}
	streamBin, err := pluginBinary(gwBin, "stream", dir)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	plugins := map[string]string{"queue": queueBin, "stream": streamBin, "probe": self}
	var blocks strings.Builder
	for _, name := range []string{"queue", "stream", "probe"} {
		sum, err := host.FileChecksum(plugins[name])
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&blocks, "plugin %q {\n  path     = %q\n  checksum = %q\n}\n", name, plugins[name], sum)
	}
	httpAddr, natsAddr := freeAddr(), freeAddr()
	conf := fmt.Sprintf(`node_name = "bench-triggers"
data_dir  = %q
log_level = "warn"
region    = %q
http { address = %q }
cluster {
  address   = %q
  bootstrap = true
}
sandbox { driver = %q }
nats { listen = %q }
%s`, filepath.Join(dir, "data"), region, httpAddr, freeAddr(), driver, natsAddr, blocks.String())
	confPath := filepath.Join(dir, "agent.hcl")
	conf += agentProcsLine()
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	agent := exec.Command(gwBin, "agent", "-config", confPath)
	agent.Stdout, agent.Stderr = logFile, logFile
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = agent.Wait(); close(exited) }()
	pluginPIDs := map[int]string{} // the plugins' processes, by pid: their binaries
	defer func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = agent.Process.Kill()
			<-exited
		}
		// The agent stops its plugins; should one outlive it, it goes too.
		for pid, bin := range pluginPIDs {
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == bin {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()
	defer func() {
		if err != nil {
			b, _ := os.ReadFile(logPath)
			err = fmt.Errorf("%w\nthe agent's log ends:\n%s", err, tail(string(b)))
		}
	}()

	base := "http://" + httpAddr
	if err := waitHTTP(client, base+"/v1/health", "GET"); err != nil {
		return nil, err
	}
	if err := waitPlugins(client, base, plugins, pluginPIDs); err != nil {
		return nil, err
	}
	// The agent's embedded NATS admits the NKey of data_dir's client seed file.
	creds, err := nats.NkeyOptionFromSeed(filepath.Join(dir, "data", "nats-client.nk"))
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect("nats://"+natsAddr, creds)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2000))
	if err != nil {
		return nil, err
	}
	tb := &triggerBench{client: client, gwBin: gwBin, base: base, fnDir: fnDir, dir: dir, js: js, o: o}

	// The plugin boundary first, while the agent runs nothing else.
	r, err := tb.probe()
	if err != nil {
		return nil, fmt.Errorf("plugin boundary: %w", err)
	}
	rows = append(rows, r...)
	var perBatch string
	for _, bs := range []int{10, 100} {
		r, mean, err := tb.queue(bs)
		if err != nil {
			return nil, fmt.Errorf("queue trigger, batch_size %d: %w", bs, err)
		}
		rows = append(rows, r...)
		if bs == 10 {
			perBatch = mean
		}
	}
	rows = append(rows, perBatch)
	r, err = tb.stream(100)
	if err != nil {
		return nil, fmt.Errorf("stream trigger: %w", err)
	}
	return append(rows, r...), nil
}

type triggerBench struct {
	client      *http.Client
	gwBin, base string
	fnDir, dir  string
	js          jetstream.JetStream
	o           triggerOpts
	applied     int
}

// pluginBinary is bin/gateway-trigger-NAME beside the gateway binary, or one built into dir.
func pluginBinary(gwBin, name, dir string) (string, error) {
	p, err := filepath.Abs(filepath.Join(filepath.Dir(gwBin), "gateway-trigger-"+name))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	p = filepath.Join(dir, "gateway-trigger-"+name)
	fmt.Printf("building the %s trigger plugin (no gateway-trigger-%s beside %s)\n", name, name, gwBin)
	cmd := exec.Command("go", "build", "-trimpath", "-o", p, "./plugins/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the %s trigger plugin: %v\n%s", name, err, b)
	}
	return p, nil
}

// waitPlugins waits until the agent runs every plugin, and notes their processes.
func waitPlugins(c *http.Client, base string, bins map[string]string, pids map[int]string) error {
	var last []host.Status
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var st struct {
			Plugins []host.Status `json:"plugins"`
		}
		if err := getJSON(c, base+"/v1/status", &st); err != nil {
			return err
		}
		last = st.Plugins
		running := 0
		for _, p := range st.Plugins {
			if p.State == host.StateRunning && p.PID > 0 {
				pids[p.PID] = bins[p.Name]
				running++
			}
		}
		if running == len(bins) {
			return nil
		}
	}
	return fmt.Errorf("the plugins are not all running after 30 s: %+v", last)
}

// apply applies one function with one trigger block.
func (tb *triggerBench) apply(name, trigger string) error {
	hcl := fmt.Sprintf("function %q {\n  runtime      = \"provided.al2023\"\n  code         = %q\n  memory_mb    = 128\n  timeout      = \"10s\"\n  freeze_delay = %q\n  trigger \"in\" {\n%s  }\n}\n",
		name, tb.fnDir, triggerFreezeDelay, trigger)
	tb.applied++
	path := filepath.Join(tb.dir, fmt.Sprintf("functions-%d.hcl", tb.applied))
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		return err
	}
	if b, err := exec.Command(tb.gwBin, "apply", "-address", tb.base, path).CombinedOutput(); err != nil {
		return fmt.Errorf("apply: %v\n%s", err, b)
	}
	return nil
}

func (tb *triggerBench) invokeURL(fn string) string {
	return tb.base + "/2015-03-31/functions/" + fn + "/invocations"
}

// probe measures the plugin boundary with the probe plugin (probeSource).
func (tb *triggerBench) probe() ([]string, error) {
	const records = 10
	out := filepath.Join(tb.dir, "probe.json")
	trigger := fmt.Sprintf("    plugin  = \"probe\"\n    source  = \"probe\"\n    options = {\n      out        = %q\n      invoke_url = %q\n      n          = \"%d\"\n      records    = \"%d\"\n    }\n",
		out, tb.invokeURL("probe"), tb.o.latencyN, records)
	if err := tb.apply("probe", trigger); err != nil {
		return nil, err
	}
	var res probeResult
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b, err := os.ReadFile(out)
		if err == nil {
			if err := json.Unmarshal(b, &res); err != nil {
				return nil, fmt.Errorf("the probe's result: %w", err)
			}
			break
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the probe plugin wrote no result within 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("the probe plugin: %s", res.Error)
	}
	deliver, invoke := nsDurations(res.Deliver), nsDurations(res.Invoke)
	var rows []string
	for _, p := range []int{50, 99} {
		d, i := pct(deliver, p), pct(invoke, p)
		rows = append(rows, fmt.Sprintf("| plugin boundary: a %d-record SQS event delivered by a trigger plugin's process (gRPC Host.Deliver, the agent invokes the function and shapes the result) and back, p%d (%d each, alternating blocks; freeze_delay %s) | %.0f µs | %.0f µs (the same bytes through the Invoke API over HTTP, from the same process) | %+.0f µs for the hop (%.2fx) |",
			records, p, len(deliver), triggerFreezeDelay, us(d), us(i), us(d-i), float64(d)/float64(i)))
		fmt.Printf("plugin boundary p%d: Host.Deliver %.0f µs, Invoke API %.0f µs (%+.0f µs)\n", p, us(d), us(i), us(d-i))
	}
	return rows, nil
}

// triggerRound is one measured run of a trigger.
type triggerRound struct {
	took, published time.Duration // from the first publish to the last record done; to the last acknowledged
	batches         int           // the function's invocations
	redelivered     int           // records the function logged more than once
}

func (r triggerRound) rate(n int) float64 { return float64(n) / r.took.Seconds() }

// medianRound is the round of median duration, and the slowest.
func medianRound(rs []triggerRound) (triggerRound, triggerRound) {
	s := append([]triggerRound(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].took < s[j].took })
	return s[len(s)/2], s[len(s)-1]
}

// queue measures the queue trigger with batch size bs. It returns the throughput row and the
// row of the mean time per batch.
func (tb *triggerBench) queue(bs int) ([]string, string, error) {
	ctx := context.Background()
	fn := fmt.Sprintf("queue%d", bs)
	queue := "bench-" + fn
	if _, err := natsq.Ensure(ctx, tb.js, queue); err != nil {
		return nil, "", err
	}
	trigger := fmt.Sprintf("    plugin     = \"queue\"\n    source     = %q\n    batch_size = %d\n", queue, bs)
	if err := tb.apply(fn, trigger); err != nil {
		return nil, "", err
	}
	publish := func(first, n int) error {
		return publishAsync(tb.js, n, func(i int) *nats.Msg {
			return &nats.Msg{Subject: natsq.Subject(queue), Data: fmt.Appendf(nil, `{"id":%d}`, first+i)}
		}, jetstream.WithExpectStream(natsq.StreamName(queue)), nil)
	}
	// Warm-up: the mapping consuming and the function's environment started.
	if err := publish(warmIDs, 5*bs); err != nil {
		return nil, "", err
	}
	if _, err := waitQueueEmpty(tb.js, queue, time.Minute); err != nil {
		return nil, "", err
	}
	event, _ := sqsEvent(bs, baselineIDs, queue)
	url := tb.invokeURL(fn)
	base1, err := tb.baseline(url, event, 1)
	if err != nil {
		return nil, "", err
	}
	log, err := tb.settledLog(fn, func(string) bool { return true })
	if err != nil {
		return nil, "", err
	}

	n := tb.o.records
	var rounds []triggerRound
	for r := 0; r < tb.o.runs; r++ {
		first := 1 + r*n // each round's records have ids of their own
		before := reports(log)
		start := time.Now()
		if err := publish(first, n); err != nil {
			return nil, "", err
		}
		published := time.Since(start)
		end, err := waitQueueEmpty(tb.js, queue, 5*time.Minute)
		if err != nil {
			return nil, "", err
		}
		var seen map[int]int
		log, err = tb.settledLog(fn, func(log string) bool {
			seen = recordIDs(log, first, n)
			return len(seen) == n
		})
		if err != nil {
			return nil, "", fmt.Errorf("the function logged %d of the %d records: %w", len(seen), n, err)
		}
		round := triggerRound{took: end.Sub(start), published: published, batches: reports(log) - before, redelivered: dupes(seen)}
		rounds = append(rounds, round)
		fmt.Printf("queue trigger batch_size %d, run %d: %d records in %v (published in %v), %d batches, %d redelivered: %.0f records/s\n",
			bs, r+1, n, round.took.Round(time.Millisecond), published.Round(time.Millisecond), round.batches, round.redelivered, round.rate(n))
	}
	base2, err := tb.baseline(url, event, 1)
	if err != nil {
		return nil, "", err
	}
	callRate := (base1.calls + base2.calls) / (base1.took + base2.took).Seconds()
	floor := callRate * float64(bs)
	med, slow := medianRound(rounds)
	rate := med.rate(n)
	row := fmt.Sprintf("| queue trigger, batch_size %d, one batch in flight: %d records from the first publish (JetStream async, %.2f s) until the queue is empty, every record in the function's log, median of %d runs (slowest %.0f records/s; %d batches, %d redelivered; the function logs a line per record; freeze_delay %s) | %.0f records/s (%.0f batches/s) | %.0f records/s (the function invoked with a %d-record SQS event through the Invoke API, 1 caller, before and after the runs) | %.1f%% of the floor |",
		bs, n, med.published.Seconds(), len(rounds), slow.rate(n), med.batches, med.redelivered, triggerFreezeDelay, rate, float64(med.batches)/med.took.Seconds(), floor, bs, 100*rate/floor)
	fmt.Printf("queue trigger batch_size %d: median %.0f records/s; direct %.0f records/s\n", bs, rate, floor)
	perBatch := med.took / time.Duration(max(med.batches, 1))
	perCall := time.Duration(float64(time.Second) / callRate)
	mean := fmt.Sprintf("| queue trigger, batch_size %d: mean time per batch with one batch in flight (fetching from NATS, delivering through the plugin boundary, acking), from the median run above | %.0f µs | %.0f µs (mean of the direct calls above) | %+.0f µs (%.2fx) |",
		bs, us(perBatch), us(perCall), us(perBatch-perCall), float64(perBatch)/float64(perCall))
	return []string{row}, mean, nil
}

// stream measures the stream trigger with batch size bs on a stream of streamShard shards.
func (tb *triggerBench) stream(bs int) ([]string, error) {
	ctx := context.Background()
	fn := fmt.Sprintf("stream%d", bs)
	stream := "bench-" + fn
	if _, err := natsstream.Ensure(ctx, tb.js, stream, streamShard); err != nil {
		return nil, err
	}
	trigger := fmt.Sprintf("    plugin     = \"stream\"\n    source     = %q\n    batch_size = %d\n    options    = { shards = \"%d\" }\n", stream, bs, streamShard)
	if err := tb.apply(fn, trigger); err != nil {
		return nil, err
	}
	var out struct {
		Triggers []struct {
			UUID string `json:"uuid"`
		} `json:"Triggers"`
	}
	if err := getJSON(tb.client, tb.base+"/v1/functions/"+fn+"/triggers", &out); err != nil {
		return nil, err
	}
	if len(out.Triggers) != 1 {
		return nil, fmt.Errorf("function %s has %d triggers, want 1", fn, len(out.Triggers))
	}
	uuid := out.Triggers[0].UUID
	kv, err := natsstream.Checkpoints(ctx, tb.js)
	if err != nil {
		return nil, err
	}
	// publish puts n records on the stream (keys spread over the shards) and returns the last
	// sequence of each shard and every sequence.
	publish := func(first, n int) (map[int]uint64, map[uint64]bool, error) {
		var mu sync.Mutex
		last, seqs := map[int]uint64{}, map[uint64]bool{}
		err := publishAsync(tb.js, n, func(i int) *nats.Msg {
			key := fmt.Sprintf("key-%d", first+i)
			m := &nats.Msg{Subject: natsstream.Subject(stream, natsstream.ShardFor(key, streamShard)),
				Data: fmt.Appendf(nil, `{"id":%d}`, first+i), Header: nats.Header{}}
			m.Header.Set(natsstream.PartitionKeyHeader, key)
			return m
		}, jetstream.WithExpectStream(natsstream.StreamName(stream)), func(m *nats.Msg, ack *jetstream.PubAck) {
			shard := natsstream.ShardFor(m.Header.Get(natsstream.PartitionKeyHeader), streamShard)
			mu.Lock()
			last[shard] = max(last[shard], ack.Sequence)
			seqs[ack.Sequence] = true
			mu.Unlock()
		})
		return last, seqs, err
	}
	warmLast, _, err := publish(warmIDs, 5*bs)
	if err != nil {
		return nil, err
	}
	if _, err := waitCheckpoints(kv, uuid, warmLast, time.Minute); err != nil {
		return nil, err
	}
	event := kinesisEvent(bs, baselineIDs, stream)
	url := tb.invokeURL(fn)
	base1, err := tb.baseline(url, event, streamShard)
	if err != nil {
		return nil, err
	}
	log, err := tb.settledLog(fn, func(string) bool { return true })
	if err != nil {
		return nil, err
	}

	n := tb.o.records
	var rounds []triggerRound
	for r := 0; r < tb.o.runs; r++ {
		before := reports(log)
		start := time.Now()
		last, seqs, err := publish(1+r*n, n)
		if err != nil {
			return nil, err
		}
		published := time.Since(start)
		end, err := waitCheckpoints(kv, uuid, last, 5*time.Minute)
		if err != nil {
			return nil, err
		}
		var seen map[uint64]int
		log, err = tb.settledLog(fn, func(log string) bool {
			seen = kinesisSeqs(log, seqs)
			return len(seen) == n
		})
		if err != nil {
			return nil, fmt.Errorf("the function logged %d of the %d records: %w", len(seen), n, err)
		}
		round := triggerRound{took: end.Sub(start), published: published, batches: reports(log) - before}
		for _, c := range seen {
			round.redelivered += c - 1
		}
		rounds = append(rounds, round)
		fmt.Printf("stream trigger batch_size %d, %d shards, run %d: %d records in %v (published in %v), %d batches, %d redelivered: %.0f records/s\n",
			bs, streamShard, r+1, n, round.took.Round(time.Millisecond), published.Round(time.Millisecond), round.batches, round.redelivered, round.rate(n))
	}
	base2, err := tb.baseline(url, event, streamShard)
	if err != nil {
		return nil, err
	}
	floor := (base1.calls + base2.calls) / (base1.took + base2.took).Seconds() * float64(bs)
	med, slow := medianRound(rounds)
	rate := med.rate(n)
	row := fmt.Sprintf("| stream trigger, batch_size %d, %d shards (one batch in flight per shard): %d records from the first publish (JetStream async, %.2f s) until every shard's checkpoint is at its last record, every record in the function's log, median of %d runs (slowest %.0f records/s; %d batches, %d redelivered; the function logs a line per record; freeze_delay %s) | %.0f records/s (%.0f batches/s) | %.0f records/s (the function invoked with a %d-record Kinesis event through the Invoke API, %d callers, before and after the runs) | %.1f%% of the floor |",
		bs, streamShard, n, med.published.Seconds(), len(rounds), slow.rate(n), med.batches, med.redelivered, triggerFreezeDelay, rate, float64(med.batches)/med.took.Seconds(), floor, bs, streamShard, 100*rate/floor)
	fmt.Printf("stream trigger batch_size %d, %d shards: median %.0f records/s; direct %.0f records/s\n", bs, streamShard, rate, floor)
	return []string{row}, nil
}

type callRun struct {
	calls float64
	took  time.Duration
}

// baseline invokes url with event from callers for baselineSlice, after an unmeasured slice.
func (tb *triggerBench) baseline(url string, event []byte, callers int) (callRun, error) {
	if _, _, err := throughput(tb.client, url, event, callers, throughputSlice); err != nil {
		return callRun{}, fmt.Errorf("direct calls: %w", err)
	}
	n, took, err := throughput(tb.client, url, event, callers, baselineSlice)
	if err != nil {
		return callRun{}, fmt.Errorf("direct calls: %w", err)
	}
	return callRun{n, took}, nil
}

// settledLog polls the function's log until done holds and its count of REPORT lines has held
// still for 200 ms, and returns it.
func (tb *triggerBench) settledLog(fn string, done func(string) bool) (string, error) {
	count, since := -1, time.Now()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := apiDo(tb.client, "GET", tb.base+"/v1/functions/"+fn+"/logs?lines=100000000", "")
		if err != nil {
			return "", err
		}
		log := string(b)
		if !done(log) {
			continue
		}
		if r := reports(log); r != count {
			count, since = r, time.Now()
		} else if time.Since(since) >= 200*time.Millisecond {
			return log, nil
		}
	}
	return "", errors.New("the function's log did not settle within a minute")
}

func reports(log string) int { return strings.Count(log, "REPORT RequestId: ") }

var (
	sqsLine     = regexp.MustCompile(`record (\d+) ok \d+`)
	kinesisLine = regexp.MustCompile(`kinesis \S+ (\d+) `)
)

// recordIDs counts the log's lines of each record id from first to first+n-1.
func recordIDs(log string, first, n int) map[int]int {
	out := map[int]int{}
	for _, m := range sqsLine.FindAllStringSubmatch(log, -1) {
		if id, _ := strconv.Atoi(m[1]); id >= first && id < first+n {
			out[id]++
		}
	}
	return out
}

// kinesisSeqs counts the log's lines of each sequence number of seqs.
func kinesisSeqs(log string, seqs map[uint64]bool) map[uint64]int {
	out := map[uint64]int{}
	for _, m := range kinesisLine.FindAllStringSubmatch(log, -1) {
		if seq, _ := strconv.ParseUint(m[1], 10, 64); seqs[seq] {
			out[seq]++
		}
	}
	return out
}

func dupes(seen map[int]int) int {
	d := 0
	for _, c := range seen {
		d += c - 1
	}
	return d
}

// publishAsync publishes n messages made by msg, with JetStream async publish, and waits for
// every acknowledgement (handed to acked, when not nil).
func publishAsync(js jetstream.JetStream, n int, msg func(int) *nats.Msg, expect jetstream.PublishOpt, acked func(*nats.Msg, *jetstream.PubAck)) error {
	type sent struct {
		m *nats.Msg
		f jetstream.PubAckFuture
	}
	futures := make([]sent, 0, n)
	for i := 0; i < n; i++ {
		m := msg(i)
		f, err := js.PublishMsgAsync(m, expect, jetstream.WithStallWait(10*time.Second))
		if err != nil {
			return fmt.Errorf("publishing: %w", err)
		}
		futures = append(futures, sent{m, f})
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return fmt.Errorf("JetStream acknowledged %d of %d messages within a minute", n-js.PublishAsyncPending(), n)
	}
	for _, s := range futures {
		select {
		case ack := <-s.f.Ok():
			if acked != nil {
				acked(s.m, ack)
			}
		case err := <-s.f.Err():
			return fmt.Errorf("publishing: %w", err)
		}
	}
	return nil
}

// waitQueueEmpty polls the queue every 2 ms until it holds no message; it returns when it saw
// it empty.
func waitQueueEmpty(js jetstream.JetStream, queue string, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := js.Stream(ctx, natsq.StreamName(queue))
	if err != nil {
		return time.Time{}, err
	}
	for {
		info, err := s.Info(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("queue %s: %w", queue, err)
		}
		if info.State.Msgs == 0 {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("queue %s still holds %d messages after %v", queue, info.State.Msgs, timeout)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitCheckpoints polls the mapping's checkpoints every 2 ms until each shard of last has its
// checkpoint at (or past) its sequence; it returns when it saw them all there.
func waitCheckpoints(kv jetstream.KeyValue, uuid string, last map[int]uint64, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		behind := ""
		for shard, seq := range last {
			cp, _, err := natsstream.LoadCheckpoint(ctx, kv, uuid, shard)
			if err != nil {
				return time.Time{}, err
			}
			if cp < seq {
				behind = fmt.Sprintf("%s at %d of %d", natsstream.ShardID(shard), cp, seq)
				break
			}
		}
		if behind == "" {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("the stream trigger is behind after %v: %s", timeout, behind)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// sqsEvent is an SQS event of n records with bodies {"id":first+i}, shaped as the queue
// trigger makes them (plugins/queue/event.go), and its records' ids.
func sqsEvent(n, first int, queue string) ([]byte, []string) {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, n)}
	ids := make([]string, n)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for i := range ev.Records {
		body := fmt.Sprintf(`{"id":%d}`, first+i)
		sum := md5.Sum([]byte(body))
		id := strconv.Itoa(first + i)
		ev.Records[i] = events.SQSMessage{
			MessageId:     id,
			ReceiptHandle: base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s/%s/%s/1", natsq.StreamName(queue), natsq.ConsumerName(queue), id)),
			Body:          body,
			Md5OfBody:     hex.EncodeToString(sum[:]),
			Attributes: map[string]string{"ApproximateReceiveCount": "1", "SentTimestamp": now, "SenderId": "gateway",
				"ApproximateFirstReceiveTimestamp": now},
			MessageAttributes: map[string]events.SQSMessageAttribute{},
			EventSourceARN:    "arn:aws:sqs:" + region + ":000000000000:" + queue,
			EventSource:       "aws:sqs",
			AWSRegion:         region,
		}
		ids[i] = id
	}
	b, _ := json.Marshal(ev)
	return b, ids
}

// kinesisEvent is a Kinesis event of n records with data {"id":first+i}, shaped as the stream
// trigger makes them (plugins/stream/event.go).
func kinesisEvent(n, first int, stream string) []byte {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, n)}
	now := time.UnixMilli(time.Now().UnixMilli())
	for i := range ev.Records {
		seq := strconv.Itoa(first + i)
		ev.Records[i] = events.KinesisEventRecord{
			AwsRegion:         region,
			EventID:           natsstream.ShardID(0) + ":" + seq,
			EventName:         "aws:kinesis:record",
			EventSource:       "aws:kinesis",
			EventSourceArn:    "arn:aws:kinesis:" + region + ":000000000000:stream/" + stream,
			EventVersion:      "1.0",
			InvokeIdentityArn: "arn:aws:iam::000000000000:role/gateway",
			Kinesis: events.KinesisRecord{
				ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: now},
				Data:                        fmt.Appendf(nil, `{"id":%d}`, first+i),
				PartitionKey:                "key-" + seq,
				SequenceNumber:              seq,
				KinesisSchemaVersion:        "1.0",
			},
		}
	}
	b, _ := json.Marshal(ev)
	return b
}

func getJSON(c *http.Client, url string, out any) error {
	b, err := apiDo(c, "GET", url, "")
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func nsDurations(ns []int64) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, v := range ns {
		out[i] = time.Duration(v)
	}
	sortDur(out)
	return out
}

// probeResult is what the probe plugin writes to its mapping's out file.
type probeResult struct {
	Deliver []int64 `json:"deliver_ns"`
	Invoke  []int64 `json:"invoke_ns"`
	Error   string  `json:"error,omitempty"`
}

// probeSource is the probe trigger plugin. For each mapping it is given (options: out, the
// result file; invoke_url, the function's Invoke API URL; n; records), it delivers an SQS event
// of records records to the mapping's function through Host.Deliver, and invokes the function
// with the same bytes at invoke_url, n times each in alternating blocks after a warm-up, and
// writes the durations to out.
type probeSource struct {
	mu      sync.Mutex
	host    sdk.Host
	started map[string]bool
}

func (p *probeSource) Schema() sdk.Schema { return sdk.Schema{} }

func (p *probeSource) Configure(_ context.Context, _ sdk.ConfigureRequest, h sdk.Host) ([]sdk.Diagnostic, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.host = h
	return nil, nil
}

func (p *probeSource) SetMappings(_ context.Context, ms []sdk.Mapping) ([]sdk.MappingStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var st []sdk.MappingStatus
	for _, m := range ms {
		if m.Enabled && !p.started[m.UUID] {
			p.started[m.UUID] = true
			go probeRun(p.host, m)
		}
		st = append(st, sdk.MappingStatus{UUID: m.UUID, State: sdk.StateOK})
	}
	return st, nil
}

func (p *probeSource) Status(context.Context) ([]sdk.MappingStatus, error) { return nil, nil }

func probeRun(h sdk.Host, m sdk.Mapping) {
	var res probeResult
	if err := probeMeasure(h, m, &res); err != nil {
		res = probeResult{Error: err.Error()}
	}
	b, _ := json.Marshal(res)
	out := m.Options["out"]
	if err := os.WriteFile(out+".tmp", b, 0o644); err == nil {
		_ = os.Rename(out+".tmp", out)
	}
}

func probeMeasure(h sdk.Host, m sdk.Mapping, res *probeResult) error {
	n, _ := strconv.Atoi(m.Options["n"])
	records, _ := strconv.Atoi(m.Options["records"])
	url := m.Options["invoke_url"]
	if n < 1 || records < 1 || url == "" {
		return fmt.Errorf("the probe's mapping options are incomplete: %v", m.Options)
	}
	event, ids := sqsEvent(records, probeIDs, m.Source)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	deliver := func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		t0 := time.Now()
		r, err := h.Deliver(ctx, sdk.Batch{MappingUUID: m.UUID, Event: event, ItemIDs: ids})
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if r.Outcome != sdk.Success {
			return 0, fmt.Errorf("a delivery's outcome is %s: %s %s", r.Outcome, r.ErrorType, r.ErrorMessage)
		}
		return d, nil
	}
	invoke := func() (time.Duration, error) { return call(client, url, event) }
	// The first delivery starts the function's environment, and may come before the agent
	// knows the mapping.
	var err error
	for i := 0; i < 50; i++ {
		if _, err = deliver(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	d, i, err := pairedCalls(deliver, invoke, n)
	if err != nil {
		return err
	}
	for _, v := range d {
		res.Deliver = append(res.Deliver, int64(v))
	}
	for _, v := range i {
		res.Invoke = append(res.Invoke, int64(v))
	}
	return nil
}

// pairedCalls is pairedLatencies with calls of any kind: a and b in alternating blocks, n times
// each, each block after a few unrecorded calls; it returns their sorted durations.
func pairedCalls(a, b func() (time.Duration, error), n int) ([]time.Duration, []time.Duration, error) {
	la, lb := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	block := func(f func() (time.Duration, error), out *[]time.Duration, k int) error {
		for i := 0; i < k; i++ {
			d, err := f()
			if err != nil {
				return err
			}
			if out != nil {
				*out = append(*out, d)
			}
		}
		return nil
	}
	for len(la) < n {
		k := min(latencyBlock, n-len(la))
		for _, s := range []struct {
			f   func() (time.Duration, error)
			out *[]time.Duration
		}{{a, &la}, {b, &lb}} {
			if err := block(s.f, nil, 10); err != nil {
				return nil, nil, err
			}
			if err := block(s.f, s.out, k); err != nil {
				return nil, nil, err
			}
		}
	}
	sortDur(la)
	sortDur(lb)
	return la, lb, nil
}
