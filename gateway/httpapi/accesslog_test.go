package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/hashicorp/go-hclog"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// get makes a GET request and returns the response's request ID.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Amzn-RequestId")
}

// TestAccessLog: with AccessLog, each request is one INFO line on http.access with its method,
// path, function (the route's, or the one a function URL invoked; none for a route without one),
// status, duration as text and request ID; without it, nothing is logged at INFO.
func TestAccessLog(t *testing.T) {
	var out logBuffer
	c, url := newStack(t, stackOptions{accessLog: true, logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info})})
	ctx := context.Background()
	if _, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("web"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("arn:aws:iam::000000000000:role/x"), Code: &types.FunctionCode{ZipFile: zipped}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"),
		AuthType: types.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}
	missing := get(t, url+"/2015-03-31/functions/nope")
	listed := get(t, url+"/2015-03-31/functions/")
	viaURL := get(t, url+"/fn/web/hi?name=x")
	if missing == "" || listed == "" || viaURL == "" {
		t.Fatal("no request IDs")
	}
	logs := out.String()
	dur := `duration=[0-9.]+(ns|us|ms|s) `
	for _, want := range []string{
		`\[INFO\]  http\.access: request: method=GET path=/2015-03-31/functions/nope function=nope status=404 ` + dur + `request_id=` + missing + `\n`,
		`\[INFO\]  http\.access: request: method=GET path=/2015-03-31/functions/ status=200 ` + dur + `request_id=` + listed + `\n`,
		`\[INFO\]  http\.access: request: method=GET path=/fn/web/hi function=web status=200 ` + dur + `request_id=` + viaURL + `\n`,
		`\[INFO\]  http\.access: request: method=POST path=/2015-03-31/functions status=201 `,
	} {
		if !regexp.MustCompile(want).MatchString(logs) {
			t.Errorf("no line matching %q in:\n%s", want, logs)
		}
	}
	for _, id := range []string{missing, listed, viaURL} {
		if n := strings.Count(logs, id); n != 1 {
			t.Errorf("request %s is logged %d times:\n%s", id, n, logs)
		}
	}

	var quiet logBuffer
	_, url = newStack(t, stackOptions{logger: hclog.New(&hclog.LoggerOptions{Output: &quiet, Level: hclog.Info})})
	get(t, url+"/2015-03-31/functions/nope")
	if strings.Contains(quiet.String(), "request") {
		t.Errorf("without access_log, a request was logged at INFO:\n%s", quiet.String())
	}
}
