package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/cluster/codestore"
	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/gateway/httpapi"
	"github.com/lambdagw/gateway/gateway/sigv4"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/internal/testfixtures/testfunction/testbuild"
	"github.com/lambdagw/gateway/sandbox"
	"github.com/lambdagw/gateway/sandbox/process"
)

var zipped []byte // the test function as a deployment zip

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "httpapi-test-")
	if err == nil {
		_, err = testbuild.Build(dir)
	}
	if err == nil {
		zipped, err = zipBootstrap(filepath.Join(dir, "bootstrap"))
	}
	os.RemoveAll(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func zipBootstrap(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, _ := zw.CreateHeader(h)
	_, _ = w.Write(data)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// stack is a node's invocation path in-process: Raft (single node), code store, sandbox with
// the process driver (no root needed), gateway and the HTTP API.
func stack(t *testing.T) *awslambda.Client {
	t.Helper()
	c, _ := newStack(t, stackOptions{})
	return c
}

// stackOptions change what newStack builds.
type stackOptions struct {
	// verifier and policies are the API's access keys (none: the API is open).
	verifier *sigv4.Verifier
	policies map[string]string
	// debug serves /debug/pprof/.
	debug bool
	// wrap, when set, wraps the API's handler in the test server.
	wrap func(http.Handler) http.Handler
	// logger is the API's logger; accessLog turns its access log on.
	logger    hclog.Logger
	accessLog bool
	// fileSystems are the node's file_system blocks.
	fileSystems []structs.NodeFileSystem
	// logs reads function logs (GET /v1/functions/{name}/logs).
	logs httpapi.LogReader
}

// newStack is stack with options; it returns the SDK client (anonymous) and the server's URL.
func newStack(t *testing.T, o stackOptions) (*awslambda.Client, string) {
	t.Helper()
	dir := t.TempDir()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	node, err := cluster.Start(ctx, cluster.Config{NodeID: "t", DataDir: dir, BindAddr: addr, Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Stop(context.Background()) })
	code, err := codestore.New(filepath.Join(dir, "code"), nil)
	if err != nil {
		t.Fatal(err)
	}
	drv, err := process.New(process.Config{WorkDir: filepath.Join(dir, "envs"), Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := sandbox.NewManager(sandbox.ManagerConfig{Driver: drv, Code: code, MaxEnvironments: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Shutdown(context.Background()) })
	gw, err := gateway.New(gateway.Config{Invoker: mgr, Store: node, Code: code,
		StoreErrors: gateway.StoreErrors{NotFound: cluster.ErrNotFound, Conflict: cluster.ErrConflict, Exists: cluster.ErrExists},
		URLAddress:  func(id string) string { return "http://" + id + ".lambda-url.localhost/" },
		FileSystems: func() []structs.NodeFileSystem { return o.fileSystems }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
	h, err := httpapi.New(httpapi.Config{Gateway: gw, Verifier: o.verifier, Policies: o.policies, Debug: o.debug,
		Logger: o.logger, AccessLog: o.accessLog, Logs: o.logs})
	if err != nil {
		t.Fatal(err)
	}
	if o.wrap != nil {
		h = o.wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return awslambda.New(awslambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: aws.AnonymousCredentials{},
		RetryMaxAttempts: 1}), srv.URL
}

func TestManagementAndInvokeWithTheAWSSDK(t *testing.T) {
	c := stack(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		out, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{
			FunctionName: aws.String(fmt.Sprintf("fn%d", i)), Runtime: types.RuntimeProvidedal2023,
			Role: aws.String("arn:aws:iam::000000000000:role/x"), Handler: aws.String("bootstrap"),
			Code: &types.FunctionCode{ZipFile: zipped}, MemorySize: aws.Int32(256), Timeout: aws.Int32(7),
			Environment: &types.Environment{Variables: map[string]string{"K": "v"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(out.MemorySize) != 256 || aws.ToString(out.CodeSha256) == "" || out.State != types.StateActive {
			t.Fatalf("created: %+v", out)
		}
	}
	_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("fn0"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: zipped}})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("creating twice: %T %v", err, err)
	}
	_, err = c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("bad"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: zipped}, MemorySize: aws.Int32(64)})
	var invalid *types.InvalidParameterValueException
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "MemorySize") {
		t.Fatalf("memory 64: %T %v", err, err)
	}

	// Paging: one function per page.
	var names []string
	p := awslambda.NewListFunctionsPaginator(c, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.Functions {
			names = append(names, aws.ToString(f.FunctionName))
		}
	}
	if fmt.Sprint(names) != "[fn0 fn1 fn2]" {
		t.Fatalf("listed %v", names)
	}

	inv, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn0"), Payload: []byte(`{"mode":"env"}`)})
	if err != nil || inv.FunctionError != nil || !strings.Contains(string(inv.Payload), `"K":"v"`) {
		t.Fatalf("invoke: %v %s", err, inv.Payload)
	}
	cfg, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn0"),
		Environment: &types.Environment{Variables: map[string]string{"K": "w"}}})
	if err != nil || cfg.Environment.Variables["K"] != "w" || aws.ToInt32(cfg.MemorySize) != 256 {
		t.Fatalf("update configuration: %v %+v", err, cfg)
	}
	inv, _ = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn0"), Payload: []byte(`{"mode":"env"}`)})
	if !strings.Contains(string(inv.Payload), `"K":"w"`) {
		t.Fatalf("the update did not reach a new environment: %s", inv.Payload)
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn0"), RevisionId: aws.String("stale")})
	var precond *types.PreconditionFailedException
	if !errors.As(err, &precond) {
		t.Fatalf("stale revision: %T %v", err, err)
	}
	if _, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn1"), ZipFile: []byte("not a zip")}); !errors.As(err, &invalid) {
		t.Fatalf("bad zip: %T %v", err, err)
	}
	inv, _ = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn1"), Payload: []byte(`{"mode":"error"}`)})
	if aws.ToString(inv.FunctionError) != "Unhandled" || !strings.Contains(string(inv.Payload), "something went wrong") {
		t.Fatalf("function error: %+v %s", inv, inv.Payload)
	}
	if _, err := c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("fn2")}); err != nil {
		t.Fatal(err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("fn2")}); !errors.As(err, &nf) {
		t.Fatalf("get after delete: %T %v", err, err)
	}
	if _, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn0"), Qualifier: aws.String("7")}); !errors.As(err, &nf) {
		t.Fatalf("unknown version: %T %v", err, err)
	}
}

func TestInvokeRequestErrors(t *testing.T) {
	c := stack(t)
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("f"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: zipped}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("f"), Payload: []byte(`{nope`)})
	var content *types.InvalidRequestContentException
	if !errors.As(err, &content) {
		t.Fatalf("not JSON: %T %v", err, err)
	}
	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("f"), Payload: bytes.Repeat([]byte(" "), 6<<20+1)})
	var large *types.RequestTooLargeException
	if !errors.As(err, &large) {
		t.Fatalf("over 6 MB: %T %v", err, err)
	}
	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("f"), ClientContext: aws.String("%%%")})
	if !errors.As(err, &content) {
		t.Fatalf("bad client context: %T %v", err, err)
	}
	out, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:f"),
		InvocationType: types.InvocationTypeDryRun})
	if err != nil || out.StatusCode != http.StatusNoContent {
		t.Fatalf("dry run by ARN: %v %+v", err, out)
	}
}

// TestFunctionURLConfigWithTheAWSSDK drives the function URL operations with the AWS SDK's
// Lambda client, errors included.
func TestFunctionURLConfigWithTheAWSSDK(t *testing.T) {
	c := stack(t)
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("web"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("arn:aws:iam::000000000000:role/x"), Code: &types.FunctionCode{ZipFile: zipped}}); err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{
		FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone, InvokeMode: types.InvokeModeResponseStream,
		Cors: &types.Cors{AllowOrigins: []string{"https://example.com"}, AllowMethods: []string{"GET"}, MaxAge: aws.Int32(60)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(created.FunctionUrl) != "http://web.lambda-url.localhost/" || created.InvokeMode != types.InvokeModeResponseStream ||
		created.Cors == nil || aws.ToInt32(created.Cors.MaxAge) != 60 || aws.ToString(created.CreationTime) == "" {
		t.Fatalf("created %+v", created)
	}
	var conflict *types.ResourceConflictException
	if _, err := c.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"),
		AuthType: types.FunctionUrlAuthTypeNone}); !errors.As(err, &conflict) {
		t.Fatalf("second create: %v", err)
	}
	var invalid *types.InvalidParameterValueException
	if _, err := c.UpdateFunctionUrlConfig(ctx, &awslambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"),
		AuthType: types.FunctionUrlAuthType("KERBEROS")}); !errors.As(err, &invalid) {
		t.Fatalf("invalid auth type: %v", err)
	}
	updated, err := c.UpdateFunctionUrlConfig(ctx, &awslambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"),
		AuthType: types.FunctionUrlAuthTypeAwsIam})
	if err != nil {
		t.Fatal(err)
	}
	if updated.AuthType != types.FunctionUrlAuthTypeAwsIam || updated.InvokeMode != types.InvokeModeResponseStream || updated.Cors == nil {
		t.Fatalf("an update changed more than asked: %+v", updated)
	}
	got, err := c.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")})
	if err != nil || got.AuthType != types.FunctionUrlAuthTypeAwsIam || aws.ToString(got.LastModifiedTime) == "" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	list, err := c.ListFunctionUrlConfigs(ctx, &awslambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web")})
	if err != nil || len(list.FunctionUrlConfigs) != 1 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	var notFound *types.ResourceNotFoundException
	if _, err := c.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("live")}); !errors.As(err, &notFound) {
		t.Fatalf("alias url: %v", err)
	}
	if _, err := c.DeleteFunctionUrlConfig(ctx, &awslambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); !errors.As(err, &notFound) {
		t.Fatalf("deleted url: %v", err)
	}
	// Deleting a function deletes its URL.
	if _, err := c.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("web"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("arn:aws:iam::000000000000:role/x"), Code: &types.FunctionCode{ZipFile: zipped}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); !errors.As(err, &notFound) {
		t.Fatalf("url of a deleted function: %v", err)
	}
}
