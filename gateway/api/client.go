// Package api is the Go client of a gateway node: the Lambda REST JSON operations the gateway
// serves and its own /v1 endpoints. The CLI and the tests use it.
package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/lambdagw/gateway/internal/lambda"
)

// Config configures a client.
type Config struct {
	// Address is the agent's HTTP address; default $GATEWAY_ADDR or http://127.0.0.1:9500.
	// An https:// address is for an agent serving TLS (http { tls { ... } }).
	Address string
	// CACert is a PEM file of the CA certificates the agent's certificate is checked against;
	// default $GATEWAY_CACERT, else the system's roots. Ignored with HTTPClient.
	CACert     string
	HTTPClient *http.Client
	// Credentials, when set, sign every request with AWS Signature V4 (service lambda), as
	// a node with access keys requires. Region is the region signed for; any is accepted.
	Credentials *Credentials
}

// Credentials are an access key of the agent's access_key blocks.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// Region is the credential scope's region; DefaultRegion when empty.
	Region string
}

// DefaultRegion is the region requests are signed for when none is set.
const DefaultRegion = "us-east-1"

// CredentialsFromEnv reads the usual AWS environment variables: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, with AWS_REGION or AWS_DEFAULT_REGION. It returns nil when no key is set.
func CredentialsFromEnv() *Credentials {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" && secret == "" {
		return nil
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	return &Credentials{AccessKeyID: id, SecretAccessKey: secret, Region: region}
}

// Client talks to one node.
type Client struct {
	addr   string
	hc     *http.Client
	creds  *Credentials
	signer *v4.Signer
}

// DefaultAddress is where a -dev agent listens.
const DefaultAddress = "http://127.0.0.1:9500"

// New returns a client.
func New(cfg Config) (*Client, error) {
	addr := cfg.Address
	if addr == "" {
		addr = os.Getenv("GATEWAY_ADDR")
	}
	if addr == "" {
		addr = DefaultAddress
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	if _, err := url.Parse(addr); err != nil {
		return nil, fmt.Errorf("invalid gateway address %q: %w", addr, err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		var err error
		if hc, err = httpClient(cfg.CACert); err != nil {
			return nil, err
		}
	}
	c := &Client{addr: strings.TrimRight(addr, "/"), hc: hc}
	if cr := cfg.Credentials; cr != nil {
		if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
			return nil, errors.New("signing requests needs both an access key id and a secret access key")
		}
		creds := *cr
		if creds.Region == "" {
			creds.Region = DefaultRegion
		}
		c.creds, c.signer = &creds, v4.NewSigner()
	}
	return c, nil
}

// Address is the agent's address the client talks to.
func (c *Client) Address() string { return c.addr }

// UnreachableError is a request no agent answered: nothing listens at the address, its name
// does not resolve, or the connection could not be made in time.
type UnreachableError struct {
	Address string // the agent's address, e.g. http://127.0.0.1:9500
	Reason  string // e.g. "connection refused"
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no agent answers at %s (%s)", e.Address, e.Reason)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// requestError is the error of a request that got no answer: an UnreachableError when the
// connection could not be made.
func (c *Client) requestError(method, path string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		reason := op.Err.Error()
		var sys *os.SyscallError
		var dns *net.DNSError
		switch {
		case errors.As(op.Err, &sys):
			reason = sys.Err.Error()
		case errors.As(op.Err, &dns):
			reason = "cannot resolve " + dns.Name
			if dns.IsNotFound {
				reason = "no such host " + dns.Name
			}
		case op.Timeout():
			reason = "connecting timed out"
		}
		return &UnreachableError{Address: c.addr, Reason: reason, Err: err}
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}

// httpClient is the default client, trusting the CA certificates in caFile (or
// $GATEWAY_CACERT) when one is named.
func httpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		caFile = os.Getenv("GATEWAY_CACERT")
	}
	if caFile == "" {
		return http.DefaultClient, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the CA certificate file %s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// sign adds the AWS Signature V4 of req, whose body is body, when the client has credentials.
// The body's hash goes in X-Amz-Content-Sha256 too, so the agent verifies the signature before
// it reads the body.
func (c *Client) sign(ctx context.Context, req *http.Request, body []byte) error {
	if c.creds == nil {
		return nil
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: c.creds.AccessKeyID, SecretAccessKey: c.creds.SecretAccessKey}
	if err := c.signer.SignHTTP(ctx, creds, req, hash, "lambda", c.creds.Region, time.Now()); err != nil {
		return fmt.Errorf("signing %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// progressKey carries an upload progress callback in a context.
type progressKey struct{}

// WithUploadProgress returns a context under which request bodies of at least 1 MB (code
// uploads) report their progress to fn: bytes sent of total, at each quarter and at the end.
func WithUploadProgress(ctx context.Context, fn func(sent, total int64)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// progressReader reports how much of a body the transport has read.
type progressReader struct {
	r          *bytes.Reader
	total      int64
	sent, next int64
	done       bool
	report     func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if !p.done && (p.sent >= p.next || p.sent == p.total) {
		p.report(p.sent, p.total)
		p.next = p.sent + p.total/4
		p.done = p.sent == p.total
	}
	return n, err
}

func (c *Client) do(ctx context.Context, method, path string, header http.Header, body []byte) (*http.Response, []byte, error) {
	var rd io.Reader = bytes.NewReader(body)
	if fn, ok := ctx.Value(progressKey{}).(func(sent, total int64)); ok && len(body) >= 1<<20 {
		rd = &progressReader{r: bytes.NewReader(body), total: int64(len(body)), next: int64(len(body)) / 4, report: fn}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, rd)
	if err != nil {
		return nil, nil, err
	}
	req.ContentLength = int64(len(body))
	if len(body) > 0 {
		// Retries and redirects re-read the body from the start.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.sign(ctx, req, body); err != nil {
		return nil, nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, c.requestError(method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return resp, b, lambda.ReadError(resp, b)
	}
	return resp, b, nil
}

func (c *Client) json(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	_, b, err := c.do(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding the answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

func fnPath(name string) string { return "/2015-03-31/functions/" + url.PathEscape(name) }

// InvokeInput is one invocation.
type InvokeInput struct {
	FunctionName   string
	Qualifier      string
	InvocationType string // RequestResponse (default), Event, DryRun
	LogTail        bool
	ClientContext  string // JSON; the client base64-encodes it
	Payload        []byte
}

// InvokeOutput is the answer.
type InvokeOutput struct {
	StatusCode      int
	Payload         []byte
	FunctionError   string
	ExecutedVersion string
	LogResult       string // decoded log tail
	RequestID       string
}

// Invoke calls the Invoke API.
func (c *Client) Invoke(ctx context.Context, in *InvokeInput) (*InvokeOutput, error) {
	path := fnPath(in.FunctionName) + "/invocations"
	if in.Qualifier != "" {
		path += "?Qualifier=" + url.QueryEscape(in.Qualifier)
	}
	h := http.Header{}
	if in.InvocationType != "" {
		h.Set("X-Amz-Invocation-Type", in.InvocationType)
	}
	if in.LogTail {
		h.Set("X-Amz-Log-Type", "Tail")
	}
	if in.ClientContext != "" {
		h.Set("X-Amz-Client-Context", base64.StdEncoding.EncodeToString([]byte(in.ClientContext)))
	}
	payload := in.Payload
	if payload == nil {
		payload = []byte("{}")
	}
	resp, b, err := c.do(ctx, "POST", path, h, payload)
	if err != nil {
		return nil, err
	}
	out := &InvokeOutput{StatusCode: resp.StatusCode, Payload: b, FunctionError: resp.Header.Get("X-Amz-Function-Error"),
		ExecutedVersion: resp.Header.Get("X-Amz-Executed-Version"), RequestID: resp.Header.Get("X-Amzn-RequestId")}
	if lr := resp.Header.Get("X-Amz-Log-Result"); lr != "" {
		d, err := base64.StdEncoding.DecodeString(lr)
		if err != nil {
			return nil, fmt.Errorf("decoding X-Amz-Log-Result: %w", err)
		}
		out.LogResult = string(d)
	}
	return out, nil
}

// CreateFunction creates a function.
func (c *Client) CreateFunction(ctx context.Context, in *lambda.CreateFunctionInput) (*lambda.FunctionConfiguration, error) {
	var out lambda.FunctionConfiguration
	return &out, c.json(ctx, "POST", "/2015-03-31/functions", in, &out)
}

// GetFunction describes a function.
func (c *Client) GetFunction(ctx context.Context, name string) (*lambda.GetFunctionOutput, error) {
	var out lambda.GetFunctionOutput
	return &out, c.json(ctx, "GET", fnPath(name), nil, &out)
}

// UpdateFunctionCode replaces the code.
func (c *Client) UpdateFunctionCode(ctx context.Context, name string, in *lambda.UpdateFunctionCodeInput) (*lambda.FunctionConfiguration, error) {
	var out lambda.FunctionConfiguration
	return &out, c.json(ctx, "PUT", fnPath(name)+"/code", in, &out)
}

// UpdateFunctionConfiguration changes the configuration.
func (c *Client) UpdateFunctionConfiguration(ctx context.Context, name string, in *lambda.UpdateFunctionConfigurationInput) (*lambda.FunctionConfiguration, error) {
	var out lambda.FunctionConfiguration
	return &out, c.json(ctx, "PUT", fnPath(name)+"/configuration", in, &out)
}

// DeleteFunction deletes a function.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	return c.json(ctx, "DELETE", fnPath(name), nil, nil)
}

// ListFunctions returns every function, following the pages.
func (c *Client) ListFunctions(ctx context.Context) ([]lambda.FunctionConfiguration, error) {
	return listAll(ctx, c, "/2015-03-31/functions/", url.Values{"MaxItems": {"50"}},
		func(p *lambda.ListFunctionsOutput) ([]lambda.FunctionConfiguration, *string) {
			return p.Functions, p.NextMarker
		})
}

// listAll gets every page of a Lambda list operation at path with query q, each page decoded
// into a P whose items and NextMarker items gives.
func listAll[T, P any](ctx context.Context, c *Client, path string, q url.Values, items func(*P) ([]T, *string)) ([]T, error) {
	var all []T
	for {
		var page P
		if err := c.json(ctx, "GET", path+"?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		got, next := items(&page)
		all = append(all, got...)
		if next == nil || *next == "" {
			return all, nil
		}
		q.Set("Marker", *next)
	}
}

// Logs prints the function's last lines through fn, and follows new ones until ctx ends.
func (c *Client) Logs(ctx context.Context, name string, lines int, follow bool, fn func(line string) error) error {
	q := url.Values{"lines": {strconv.Itoa(lines)}}
	if follow {
		q.Set("follow", "true")
	}
	return c.LogLines(ctx, name, q, fn)
}

// LogLines calls fn with each line of GET /v1/functions/{name}/logs with the query q (lines,
// since, until, filter, request_id, follow, format), until the answer ends or ctx does.
func (c *Client) LogLines(ctx context.Context, name string, q url.Values, fn func(line string) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.addr+"/v1/functions/"+url.PathEscape(name)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	if err := c.sign(ctx, req, nil); err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.requestError("GET", "/v1/functions/"+name+"/logs", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return lambda.ReadError(resp, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if err := fn(sc.Text()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Status returns the node's /v1/status document.
func (c *Client) Status(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	return out, c.json(ctx, "GET", "/v1/status", nil, &out)
}

func urlPath(name, qualifier string) string {
	p := "/2021-10-31/functions/" + url.PathEscape(name) + "/url"
	if qualifier != "" {
		p += "?Qualifier=" + url.QueryEscape(qualifier)
	}
	return p
}

// GetFunctionURLConfig describes a function URL (ResourceNotFoundException when there is none).
func (c *Client) GetFunctionURLConfig(ctx context.Context, name, qualifier string) (*lambda.FunctionURLConfig, error) {
	var out lambda.FunctionURLConfig
	return &out, c.json(ctx, "GET", urlPath(name, qualifier), nil, &out)
}

// CreateFunctionURLConfig gives a function a URL.
func (c *Client) CreateFunctionURLConfig(ctx context.Context, name, qualifier string, in *lambda.FunctionURLConfigInput) (*lambda.FunctionURLConfig, error) {
	var out lambda.FunctionURLConfig
	return &out, c.json(ctx, "POST", urlPath(name, qualifier), in, &out)
}

// UpdateFunctionURLConfig changes a function URL.
func (c *Client) UpdateFunctionURLConfig(ctx context.Context, name, qualifier string, in *lambda.FunctionURLConfigInput) (*lambda.FunctionURLConfig, error) {
	var out lambda.FunctionURLConfig
	return &out, c.json(ctx, "PUT", urlPath(name, qualifier), in, &out)
}

// DeleteFunctionURLConfig removes a function URL.
func (c *Client) DeleteFunctionURLConfig(ctx context.Context, name, qualifier string) error {
	return c.json(ctx, "DELETE", urlPath(name, qualifier), nil, nil)
}

// ListFunctionURLConfigs lists a function's URLs.
func (c *Client) ListFunctionURLConfigs(ctx context.Context, name string) ([]lambda.FunctionURLConfig, error) {
	var out struct {
		FunctionUrlConfigs []lambda.FunctionURLConfig //nolint:revive // Lambda's field name
	}
	err := c.json(ctx, "GET", "/2021-10-31/functions/"+url.PathEscape(name)+"/urls", nil, &out)
	return out.FunctionUrlConfigs, err
}

// PublishVersion publishes the function's $LATEST as a version.
func (c *Client) PublishVersion(ctx context.Context, name string, in *lambda.PublishVersionInput) (*lambda.FunctionConfiguration, error) {
	var out lambda.FunctionConfiguration
	return &out, c.json(ctx, "POST", fnPath(name)+"/versions", in, &out)
}

// ListAliases returns the function's aliases.
func (c *Client) ListAliases(ctx context.Context, name string) ([]lambda.AliasConfiguration, error) {
	var out lambda.ListAliasesOutput
	if err := c.json(ctx, "GET", fnPath(name)+"/aliases", nil, &out); err != nil {
		return nil, err
	}
	return out.Aliases, nil
}

// CreateAlias creates an alias.
func (c *Client) CreateAlias(ctx context.Context, name string, in *lambda.AliasInput) (*lambda.AliasConfiguration, error) {
	var out lambda.AliasConfiguration
	return &out, c.json(ctx, "POST", fnPath(name)+"/aliases", in, &out)
}

// UpdateAlias changes an alias.
func (c *Client) UpdateAlias(ctx context.Context, name, alias string, in *lambda.AliasInput) (*lambda.AliasConfiguration, error) {
	var out lambda.AliasConfiguration
	return &out, c.json(ctx, "PUT", fnPath(name)+"/aliases/"+url.PathEscape(alias), in, &out)
}

// DeleteAlias deletes an alias.
func (c *Client) DeleteAlias(ctx context.Context, name, alias string) error {
	return c.json(ctx, "DELETE", fnPath(name)+"/aliases/"+url.PathEscape(alias), nil, nil)
}

// GetFunctionConcurrency returns the function's reserved concurrency (nil: none).
func (c *Client) GetFunctionConcurrency(ctx context.Context, name string) (*int, error) {
	var out lambda.Concurrency
	if err := c.json(ctx, "GET", "/2019-09-30/functions/"+url.PathEscape(name)+"/concurrency", nil, &out); err != nil {
		return nil, err
	}
	return out.ReservedConcurrentExecutions, nil
}

// PutFunctionConcurrency reserves n concurrent executions for the function.
func (c *Client) PutFunctionConcurrency(ctx context.Context, name string, n int) error {
	return c.json(ctx, "PUT", "/2017-10-31/functions/"+url.PathEscape(name)+"/concurrency", &lambda.Concurrency{ReservedConcurrentExecutions: &n}, nil)
}

// DeleteFunctionConcurrency removes the function's reservation.
func (c *Client) DeleteFunctionConcurrency(ctx context.Context, name string) error {
	return c.json(ctx, "DELETE", "/2017-10-31/functions/"+url.PathEscape(name)+"/concurrency", nil, nil)
}

func provisionedPath(name, qualifier string) string {
	return "/2019-09-30/functions/" + url.PathEscape(name) + "/provisioned-concurrency?Qualifier=" + url.QueryEscape(qualifier)
}

// PutProvisionedConcurrencyConfig keeps n environments of a version or alias initialised.
func (c *Client) PutProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string, n int) (*lambda.ProvisionedConcurrencyConfig, error) {
	var out lambda.ProvisionedConcurrencyConfig
	return &out, c.json(ctx, "PUT", provisionedPath(name, qualifier), &lambda.ProvisionedConcurrencyInput{ProvisionedConcurrentExecutions: &n}, &out)
}

// GetProvisionedConcurrencyConfig reports a qualifier's provisioned concurrency and its status.
func (c *Client) GetProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string) (*lambda.ProvisionedConcurrencyConfig, error) {
	var out lambda.ProvisionedConcurrencyConfig
	return &out, c.json(ctx, "GET", provisionedPath(name, qualifier), nil, &out)
}

// DeleteProvisionedConcurrencyConfig removes a qualifier's provisioned concurrency.
func (c *Client) DeleteProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string) error {
	return c.json(ctx, "DELETE", provisionedPath(name, qualifier), nil, nil)
}

// ListProvisionedConcurrencyConfigs returns every provisioned concurrency configuration of a
// function (FunctionArn names the qualifier).
func (c *Client) ListProvisionedConcurrencyConfigs(ctx context.Context, name string) ([]lambda.ProvisionedConcurrencyConfig, error) {
	return listAll(ctx, c, "/2019-09-30/functions/"+url.PathEscape(name)+"/provisioned-concurrency", url.Values{"List": {"ALL"}},
		func(p *lambda.ListProvisionedConcurrencyConfigsOutput) ([]lambda.ProvisionedConcurrencyConfig, *string) {
			return p.ProvisionedConcurrencyConfigs, p.NextMarker
		})
}

// HasCode reports whether the node holds the code zip with this hex SHA-256, which
// CreateFunction and UpdateFunctionCode can then name (GatewayCodeSha256) instead of uploading.
func (c *Client) HasCode(ctx context.Context, sha256hex string) (bool, error) {
	resp, _, err := c.do(ctx, "HEAD", "/v1/code/"+url.PathEscape(sha256hex), nil, nil)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// Member is a server of the cluster.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

// ClusterMembers lists the cluster's servers as the node sees them.
func (c *Client) ClusterMembers(ctx context.Context) ([]Member, error) {
	var out struct {
		Members []Member `json:"members"`
	}
	return out.Members, c.json(ctx, "GET", "/v1/cluster/members", nil, &out)
}

// ClusterJoin makes the node join the cluster of the node at addr (its cluster address).
func (c *Client) ClusterJoin(ctx context.Context, addr string) error {
	return c.json(ctx, "POST", "/v1/cluster/join", map[string]string{"Address": addr}, nil)
}

// ClusterLeave makes the node leave the cluster; it then stops.
func (c *Client) ClusterLeave(ctx context.Context) error {
	return c.json(ctx, "POST", "/v1/cluster/leave", nil, nil)
}

// SnapshotSave writes an archive of the cluster's state and code to w.
func (c *Client) SnapshotSave(ctx context.Context, w io.Writer) error {
	resp, err := c.streamRequest(ctx, "GET", "/v1/cluster/snapshot", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("receiving the snapshot: %w", err)
	}
	return nil
}

// SnapshotRestore replaces the cluster's state with the archive read from r.
func (c *Client) SnapshotRestore(ctx context.Context, r io.Reader) error {
	resp, err := c.streamRequest(ctx, "PUT", "/v1/cluster/snapshot", r)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// streamRequest sends a body of any size without buffering it; when signing, the body is
// declared UNSIGNED-PAYLOAD (SigV4's form for large uploads).
func (c *Client) streamRequest(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/gzip")
	}
	if c.creds != nil {
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		creds := aws.Credentials{AccessKeyID: c.creds.AccessKeyID, SecretAccessKey: c.creds.SecretAccessKey}
		if err := c.signer.SignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "lambda", c.creds.Region, time.Now()); err != nil {
			return nil, fmt.Errorf("signing %s %s: %w", method, path, err)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.requestError(method, path, err)
	}
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return nil, lambda.ReadError(resp, b)
	}
	return resp, nil
}

// NodeRuntimes is one node's managed runtimes (GET /v1/runtimes).
type NodeRuntimes struct {
	Node     string `json:"node"`
	Runtimes []struct {
		Name     string `json:"name"`
		Image    string `json:"image"`
		Resolved string `json:"resolved,omitempty"`
		Error    string `json:"error,omitempty"`
	} `json:"runtimes"`
	Error string `json:"error,omitempty"`
}

// Runtimes lists the managed runtimes of every node of the cluster.
// AsyncStatus is a function's asynchronous invocations as the durable queue holds them.
type AsyncStatus struct {
	Function         string  `json:"Function"`
	Waiting          uint64  `json:"Waiting"`
	InFlight         int     `json:"InFlight"`
	OldestAgeSeconds float64 `json:"OldestAgeSeconds"`
	// Counters add up what every node that answered ran since it started.
	Counters struct {
		Succeeded, Retried, RetriesExhausted, Expired, Delivered, Dropped uint64
	} `json:"Counters"`
	Unanswered []string `json:"Unanswered,omitempty"`
}

// AsyncStatus reads function name's asynchronous invocations: waiting, running, the oldest's age.
func (c *Client) AsyncStatus(ctx context.Context, name string) (*AsyncStatus, error) {
	var out AsyncStatus
	return &out, c.json(ctx, "GET", "/v1/functions/"+url.PathEscape(name)+"/async", nil, &out)
}

func (c *Client) Runtimes(ctx context.Context) ([]NodeRuntimes, error) {
	var out struct {
		Nodes []NodeRuntimes `json:"nodes"`
	}
	return out.Nodes, c.json(ctx, "GET", "/v1/runtimes", nil, &out)
}
