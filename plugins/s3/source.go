package main

// The s3 trigger source: configuration, the webhook server and the set of mappings. Each enabled
// mapping is a runner: a *webhookRunner (webhook.go) delivering from its journal what the store
// pushed, or a *pollRunner (poll.go) listing the bucket.
//
// Semantics (S3 invokes Lambda functions asynchronously, one record per event):
//   - At least once. In webhook mode a notification is in each matching mapping's journal, on
//     disk, before the store gets its 200; an entry leaves the journal once delivered (Success)
//     or given up on. In poll mode an object counts as delivered once its batch is, in a cursor
//     file written after each batch. A restart redelivers what was not known to be delivered.
//   - Records go in the order they came (webhook) or of their modification time (poll), BatchSize
//     at a time (1 by default, as Lambda does for S3), gathered for up to BatchWindow.
//   - A function error uses an attempt; the batch is retried after retry_delay (doubling, at most
//     a minute) until MaximumRetryAttempts retries were made. -1 (the default of a trigger that
//     sets none) means Lambda's asynchronous default, 2 retries. Records older than
//     MaximumRecordAge (6 hours, Lambda's asynchronous default, when unset) are given up on too.
//     Given-up records go to the on-failure destination as Lambda's asynchronous invocation record
//     (condition RetriesExhausted or EventAgeExceeded), or are logged and dropped without one.
//     Attempts are counted in memory: a restart starts them afresh.
//   - RetryLater (throttled, no capacity) and a failed Deliver wait (0.5 s doubling to 30 s) and
//     use no attempt. A record waiting for its retry holds back the ones after it.
//
// Mapping (sdk.Mapping): Source is the bucket; Options:
//   - mode: "webhook" (default) or "poll".
//   - prefix, suffix: filters on the (decoded) object key.
//   - events: comma-separated S3 event names, "s3:ObjectCreated:*" by default ("s3:" optional;
//     "Category:*" matches the category). Poll mode sees ObjectCreated:Put and
//     ObjectRemoved:Delete only.
//   - retry_delay: the wait before the first retry after a function error (1s by default).
//   - poll_interval: the mapping's own poll interval (the plugin's poll_interval by default).
//
// Webhook mode: the store POSTs its notifications to http://<webhook_listen>/ (any path), as
// Amazon S3's event JSON ({"Records": [...]}, also what MinIO or Ceph send) or versitygw's
// (--event-webhook-url; its own spelling of some fields, keys not URL-encoded). Test events are
// answered and dropped; a notification is routed to every mapping of its bucket whose filters
// it passes, and answered 200 once journaled (500 if that failed, 503 before the first
// SetMappings). The server listens from Configure on (versitygw refuses to start when its webhook
// does not answer) until the plugin exits. In a cluster, a notification reaching a node that does
// not run its mapping is dropped: point the store at the node(s) running the bucket's mappings.

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// Defaults of the configuration.
const (
	defaultWebhookListen = "127.0.0.1:9510"
	defaultPollInterval  = 10 * time.Second
	defaultRegion        = "us-east-1"
	webhookOff           = "off"
)

// config is the plugin's configuration block.
type config struct {
	WebhookListen      string `json:"webhook_listen"`
	WebhookToken       string `json:"webhook_token"`
	WebhookKeyEncoding string `json:"webhook_key_encoding"`
	Endpoint           string `json:"endpoint"`
	AccessKey          string `json:"access_key"`
	SecretKey          string `json:"secret_key"`
	Region             string `json:"region"`
	PollInterval       string `json:"poll_interval"`
}

// runner is a running mapping.
type runner interface {
	Status() sdk.MappingStatus
	stop() // stops it and waits until it has stopped
}

// source is the s3 TriggerSource.
type source struct {
	logger hclog.Logger
	ctx    context.Context // the runners' parent: ends on Close
	cancel context.CancelFunc

	mu           sync.RWMutex
	configured   bool
	host         sdk.Host
	dataDir      string
	region       string
	pollInterval time.Duration
	keyEncoding  string
	token        string
	client       *s3.Client
	web          *http.Server
	webAddr      string // the address the webhook server listens on, "" when it does not
	webErr       error  // why it does not
	mappingsSet  bool
	runners      map[string]runner // by mapping UUID
	hooks        map[string]*webhookRunner
	order        []string // mapping UUIDs of the last SetMappings
	bad          map[string]sdk.MappingStatus
}

var _ sdk.TriggerSource = (*source)(nil)

func newSource() *source {
	return newSourceWithLogger(sdk.Logger())
}

func newSourceWithLogger(logger hclog.Logger) *source {
	ctx, cancel := context.WithCancel(context.Background())
	return &source{logger: logger.Named("s3"), ctx: ctx, cancel: cancel, runners: map[string]runner{},
		hooks: map[string]*webhookRunner{}, bad: map[string]sdk.MappingStatus{}}
}

func (s *source) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "webhook_listen", Type: sdk.TypeString,
			Description: "host:port the plugin receives the store's event notifications on (POST, any path); " +
				defaultWebhookListen + " by default, \"off\" for none."},
		{Name: "webhook_token", Type: sdk.TypeString,
			Description: "When set, a notification must carry it: ?token=... in the URL or an Authorization: Bearer header."},
		{Name: "webhook_key_encoding", Type: sdk.TypeString,
			Description: "How notifications encode object keys: \"url\" (Amazon S3, MinIO, Ceph), \"raw\" (versitygw) or \"auto\" (default: raw for versitygw's records, url otherwise)."},
		{Name: "endpoint", Type: sdk.TypeString,
			Description: "URL of the S3 API that poll-mode mappings list (path-style addressing); Amazon S3 when unset."},
		{Name: "access_key", Type: sdk.TypeString, Description: "Access key for the S3 API (anonymous when unset)."},
		{Name: "secret_key", Type: sdk.TypeString, Description: "Secret key for the S3 API."},
		{Name: "region", Type: sdk.TypeString,
			Description: "Region of the S3 API and of the events' awsRegion; the agent's region by default."},
		{Name: "poll_interval", Type: sdk.TypeString,
			Description: "How often poll-mode mappings list their bucket (a duration, 10s by default)."},
	}}
}

// Configure checks the configuration, starts the webhook server and keeps the host. Called
// again, it stops the mappings and starts over.
func (s *source) Configure(_ context.Context, req sdk.ConfigureRequest, host sdk.Host) ([]sdk.Diagnostic, error) {
	var cfg config
	if err := req.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	var diags []sdk.Diagnostic
	dataDir := req.HostInfo["data_dir"]
	if dataDir == "" {
		diags = append(diags, sdk.Diagnostic{Summary: "No data folder",
			Detail: "The agent gave the s3 trigger no data_dir to keep its journals and cursors in."})
	}
	poll := defaultPollInterval
	if cfg.PollInterval != "" {
		d, err := parseDuration(cfg.PollInterval)
		if err != nil {
			diags = append(diags, sdk.Diagnostic{Attribute: "poll_interval", Summary: "Invalid poll_interval", Detail: err.Error()})
		}
		poll = d
	}
	enc := cfg.WebhookKeyEncoding
	switch enc {
	case "":
		enc = keyAuto
	case keyAuto, keyURL, keyRaw:
	default:
		diags = append(diags, sdk.Diagnostic{Attribute: "webhook_key_encoding", Summary: "Invalid webhook_key_encoding",
			Detail: fmt.Sprintf("%q: use \"auto\", \"url\" or \"raw\".", enc)})
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		diags = append(diags, sdk.Diagnostic{Attribute: "secret_key", Summary: "Incomplete S3 credentials",
			Detail: "Set both access_key and secret_key, or neither."})
	}
	region := cfg.Region
	if region == "" {
		region = req.HostInfo["region"]
	}
	if region == "" {
		region = defaultRegion
	}
	if len(diags) > 0 {
		return diags, nil
	}

	listen, explicit := cfg.WebhookListen, cfg.WebhookListen != ""
	if !explicit {
		listen = defaultWebhookListen
	}
	// The old server goes first: the new one may want its address.
	s.mu.Lock()
	old, oldWeb := s.takeRunnersLocked(), s.web
	s.web, s.webAddr, s.webErr, s.configured, s.mappingsSet = nil, "", nil, false, false
	s.mu.Unlock()
	stopRunners(old)
	if oldWeb != nil {
		_ = oldWeb.Close()
	}

	var ln net.Listener
	var webErr error
	if listen == webhookOff {
		webErr = errors.New("the plugin's webhook_listen is \"off\"")
	} else {
		var err error
		ln, err = net.Listen("tcp", listen)
		switch {
		case err != nil && explicit:
			return []sdk.Diagnostic{{Attribute: "webhook_listen", Summary: "Cannot listen for S3 notifications",
				Detail: err.Error()}}, nil
		case err != nil:
			webErr = fmt.Errorf("the webhook server cannot listen on %s (set webhook_listen): %w", listen, err)
			s.logger.Warn("no webhook server: webhook-mode mappings will not run", "error", webErr)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.host, s.dataDir, s.region, s.pollInterval, s.keyEncoding, s.token = host, dataDir, region, poll, enc, cfg.WebhookToken
	s.client = newS3Client(cfg, region)
	s.configured, s.webErr = true, webErr
	if ln != nil {
		s.webAddr = ln.Addr().String()
		s.web = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
			ErrorLog: s.logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
		go func(srv *http.Server) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logger.Error("the webhook server stopped", "error", err)
			}
		}(s.web)
		s.logger.Info("receiving S3 event notifications", "url", "http://"+s.webAddr+"/")
	}
	return nil, nil
}

func newS3Client(cfg config, region string) *s3.Client {
	opts := s3.Options{Region: region, UsePathStyle: true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	if cfg.AccessKey != "" {
		creds := aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, Source: "s3 trigger configuration"}
		opts.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	} else {
		opts.Credentials = aws.AnonymousCredentials{}
	}
	return s3.New(opts)
}

// SetMappings starts the mappings not running yet, restarts the changed ones and stops the
// others (their journals and cursors stay for when they come back).
func (s *source) SetMappings(_ context.Context, mappings []sdk.Mapping) ([]sdk.MappingStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.configured {
		return nil, errors.New("the s3 trigger is not configured")
	}
	want := make(map[string]sdk.Mapping, len(mappings))
	for _, m := range mappings {
		if _, dup := want[m.UUID]; dup {
			return nil, fmt.Errorf("mapping %s is given twice", m.UUID)
		}
		if m.Enabled {
			want[m.UUID] = m
		}
	}
	var stopping []runner
	for id, r := range s.runners {
		if m, ok := want[id]; !ok || !reflect.DeepEqual(m, mappingOf(r)) {
			stopping = append(stopping, r)
			delete(s.runners, id)
			delete(s.hooks, id)
		}
	}
	// Stopped before the new ones start: a changed mapping reopens the same journal.
	stopRunners(stopping)

	s.order, s.bad = s.order[:0], map[string]sdk.MappingStatus{}
	for _, m := range mappings {
		if !m.Enabled {
			continue
		}
		s.order = append(s.order, m.UUID)
		if _, ok := s.runners[m.UUID]; ok {
			continue
		}
		r, err := s.startLocked(m)
		if err != nil {
			s.logger.Error("cannot run the mapping", "mapping", m.UUID, "function", m.Function, "bucket", m.Source, "error", err)
			s.bad[m.UUID] = sdk.MappingStatus{UUID: m.UUID, State: sdk.StateError, Message: err.Error()}
			continue
		}
		s.runners[m.UUID] = r
	}
	s.mappingsSet = true
	return s.statusLocked(), nil
}

func (s *source) startLocked(m sdk.Mapping) (runner, error) {
	st, err := mappingSettings(m, s.pollInterval)
	if err != nil {
		return nil, err
	}
	logger := s.logger.With("mapping", m.UUID, "function", m.Function, "bucket", m.Source, "mode", st.mode)
	d := &deliverer{host: s.host, m: m, st: st, logger: logger, now: time.Now}
	if st.mode == modePoll {
		r := newPollRunner(d, s.client, filepath.Join(s.dataDir, "poll", m.UUID+".json"), s.region)
		r.start(s.ctx)
		return r, nil
	}
	if s.webErr != nil {
		return nil, s.webErr
	}
	j, err := openJournal(filepath.Join(s.dataDir, "webhook", m.UUID+".journal"))
	if err != nil {
		return nil, err
	}
	if j.skipped > 0 {
		logger.Warn("skipped unreadable lines of the journal", "lines", j.skipped)
	}
	if n := j.len(); n > 0 {
		logger.Info("delivering the records the journal still holds", "records", n)
	}
	r := newWebhookRunner(d, j, s.region)
	s.hooks[m.UUID] = r
	r.start(s.ctx)
	return r, nil
}

// Status reports each mapping of the last SetMappings.
func (s *source) Status(context.Context) ([]sdk.MappingStatus, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.statusLocked(), nil
}

func (s *source) statusLocked() []sdk.MappingStatus {
	out := make([]sdk.MappingStatus, 0, len(s.order))
	for _, id := range s.order {
		if r, ok := s.runners[id]; ok {
			out = append(out, r.Status())
		} else if st, ok := s.bad[id]; ok {
			out = append(out, st)
		}
	}
	return out
}

// WebhookAddr is the address the webhook server listens on, "" when it does not.
func (s *source) WebhookAddr() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.webAddr
}

// Close stops every mapping and the webhook server. The plugin's process never calls it (it ends
// with the process); tests and an in-process host do.
func (s *source) Close() {
	// Notifications still coming in are refused (503), not taken and dropped.
	s.mu.Lock()
	web := s.web
	s.web, s.webAddr, s.configured, s.mappingsSet = nil, "", false, false
	s.mu.Unlock()
	if web != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := web.Shutdown(ctx); err != nil {
			_ = web.Close()
		}
	}
	s.mu.Lock()
	rs := s.takeRunnersLocked()
	s.mu.Unlock()
	s.cancel()
	stopRunners(rs)
}

func (s *source) takeRunnersLocked() []runner {
	var out []runner
	for _, r := range s.runners {
		out = append(out, r)
	}
	s.runners, s.hooks, s.order, s.bad = map[string]runner{}, map[string]*webhookRunner{}, nil, map[string]sdk.MappingStatus{}
	return out
}

// stopRunners stops them all at once and waits until they have stopped.
func stopRunners(rs []runner) {
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.stop()
		}()
	}
	wg.Wait()
}

func mappingOf(r runner) sdk.Mapping {
	switch r := r.(type) {
	case *webhookRunner:
		return r.d.m
	case *pollRunner:
		return r.d.m
	}
	return sdk.Mapping{}
}

// authorized says whether a webhook request carries the configured token (any when none is).
func (s *source) authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got := r.URL.Query().Get("token")
	if got == "" {
		if h := r.Header.Get("Authorization"); len(h) > 7 && h[:7] == "Bearer " {
			got = h[7:]
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
