package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
)

const (
	authAdminID      = "AKIAGATEWAYADMIN0001"
	authAdminSecret  = "YWRtaW4tc2VjcmV0LWZvci10ZXN0cw"
	authInvokeID     = "AKIAGATEWAYINVOKE001"
	authInvokeSecret = "aW52b2tlLXNlY3JldC1mb3ItdGVzdHM"
)

// TestAPIAuth: with access keys configured, every API request needs a valid AWS Signature V4,
// invoke keys may only invoke, and the CLI signs with keys from its flags or the environment.
func TestAPIAuth(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "auth", keys: []testKey{
		{"ops", authAdminID, authAdminSecret, "admin"},
		{"app", authInvokeID, authInvokeSecret, "invoke"},
	}})
	ctx := context.Background()
	fnFile := writeFunctions(t, functionsHCL())
	if out, errOut, code := a.cli("apply", fnFile); code != 0 {
		t.Fatalf("apply with the admin key from the environment exited %d:\n%s\n%s", code, out, errOut)
	}
	keyed := func(id, secret string) *awslambda.Client {
		creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
		return a.sdk(func(o *awslambda.Options) {
			o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
			o.RetryMaxAttempts = 1
		})
	}
	apiCode := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}

	t.Run("AdminKey", func(t *testing.T) {
		c := keyed(authAdminID, authAdminSecret)
		if _, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("fn")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("fn"), ReservedConcurrentExecutions: aws.Int32(5)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteFunctionConcurrency(ctx, &awslambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("fn")}); err != nil {
			t.Fatal(err)
		}
		out, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"name":"admin"}`)})
		if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), "Hello, admin!") {
			t.Fatalf("admin invoke: %v", err)
		}
	})

	t.Run("InvokeKey", func(t *testing.T) {
		c := keyed(authInvokeID, authInvokeSecret)
		out, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"name":"app"}`)})
		if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), "Hello, app!") {
			t.Fatalf("invoke key, Invoke: %v %s", err, out.Payload)
		}
		st, err := c.InvokeWithResponseStream(ctx, &awslambda.InvokeWithResponseStreamInput{FunctionName: aws.String("fn"), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatalf("invoke key, InvokeWithResponseStream: %v", err)
		}
		for range st.GetStream().Events() {
		}
		st.GetStream().Close()
		for what, call := range map[string]func() error{
			"ListFunctions": func() error { _, err := c.ListFunctions(ctx, &awslambda.ListFunctionsInput{}); return err },
			"DeleteFunction": func() error {
				_, err := c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("fn")})
				return err
			},
			"PutFunctionConcurrency": func() error {
				_, err := c.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("fn"), ReservedConcurrentExecutions: aws.Int32(1)})
				return err
			},
		} {
			err := call()
			if apiCode(err) != "AccessDeniedException" || !strings.Contains(err.Error(), `"invoke" policy`) {
				t.Errorf("invoke key, %s: want AccessDeniedException naming the policy, got %v", what, err)
			}
		}
		// The function is still there: the refused DeleteFunction changed nothing.
		if _, err := keyed(authAdminID, authAdminSecret).GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("fn")}); err != nil {
			t.Fatalf("after the refused delete: %v", err)
		}
	})

	t.Run("Rejected", func(t *testing.T) {
		for what, c := range map[string]*awslambda.Client{
			"unsigned":     a.sdk(func(o *awslambda.Options) { o.Credentials = aws.AnonymousCredentials{}; o.RetryMaxAttempts = 1 }),
			"wrong secret": keyed(authAdminID, "not-the-secret"),
			"unknown key":  keyed("AKIAUNKNOWNKEY000001", authAdminSecret),
		} {
			want := map[string]string{"unsigned": "MissingAuthenticationTokenException", "wrong secret": "InvalidSignatureException",
				"unknown key": "UnrecognizedClientException"}[what]
			_, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn")})
			if apiCode(err) != want {
				t.Errorf("%s Invoke: want %s, got %v", what, want, err)
			}
			_, err = c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("fn")})
			var re interface{ HTTPStatusCode() int }
			if apiCode(err) != want || !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
				t.Errorf("%s GetFunction: want 403 %s, got %v", what, want, err)
			}
		}
		// A body changed after signing does not pass.
		req, _ := http.NewRequest("POST", a.addr+"/2015-03-31/functions/fn/invocations", strings.NewReader(`{"a":1}`))
		a.sign(req, []byte(`{"a":2}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var shape struct{ Type, Message string }
		_ = json.Unmarshal(body, &shape)
		if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidSignatureException" || shape.Message == "" {
			t.Errorf("tampered body: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		// Health stays open for load balancers; status does not.
		for path, want := range map[string]int{"/v1/health": 200, "/v1/status": 403} {
			resp, err := http.Get(a.addr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("unsigned GET %s: %d, want %d", path, resp.StatusCode, want)
			}
		}
	})

	t.Run("CLI", func(t *testing.T) {
		run := func(env []string, args ...string) (string, int) {
			cmd := exec.Command(gatewayBin, args...)
			cmd.Env = append(withoutAWSEnv(os.Environ()), env...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			return string(out), cmd.ProcessState.ExitCode()
		}
		addr := "-address=" + a.addr
		if out, code := run(nil, "functions", addr); code != 1 || !strings.Contains(out, "MissingAuthenticationToken") {
			t.Errorf("functions without a key exited %d:\n%s", code, out)
		}
		if out, code := run(nil, "functions", addr, "-access-key-id", authAdminID, "-secret-access-key", authAdminSecret); code != 0 || !strings.Contains(out, "fn") {
			t.Errorf("functions with the admin key in flags exited %d:\n%s", code, out)
		}
		env := []string{"AWS_ACCESS_KEY_ID=" + authInvokeID, "AWS_SECRET_ACCESS_KEY=" + authInvokeSecret, "AWS_REGION=eu-west-1"}
		if out, code := run(env, "invoke", addr, "-payload", `{"name":"cli"}`, "fn"); code != 0 || !strings.Contains(out, "Hello, cli!") {
			t.Errorf("invoke with the invoke key in the environment exited %d:\n%s", code, out)
		}
		if out, code := run(env, "plan", addr, fnFile); code != 1 || !strings.Contains(out, "AccessDenied") {
			t.Errorf("plan with the invoke key exited %d:\n%s", code, out)
		}
		if out, code := run(nil, "functions", addr, "-access-key-id", authAdminID); code != 1 || !strings.Contains(out, "secret access key") {
			t.Errorf("a key id without its secret: exited %d:\n%s", code, out)
		}
	})
}

// withoutAWSEnv drops the AWS credential variables of the test's own environment.
func withoutAWSEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}
