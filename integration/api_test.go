package integration

// End-to-end tests of the Lambda management API through aws-sdk-go-v2, against real agents with
// real sandboxes: functions created from a zip upload, read, listed page by page, updated and
// deleted; function URL configurations; reserved concurrency edge cases; and all of that state
// surviving an agent restart.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// apiRole is the execution role the tests pass; the gateway has no IAM and need not use it.
const apiRole = "arn:aws:iam::123456789012:role/lambda-basic"

// codeZip is a deployment package: the test function's bootstrap (mode 0755) and the extra
// files given, name to content (mode 0644).
func codeZip(t *testing.T, extra map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	slices.Sort(names)
	entries := make([]zipEntry, 0, len(names))
	for _, name := range names {
		entries = append(entries, zipEntry{name, 0o644, extra[name]})
	}
	return buildCodeZip(t, entries...)
}

// zipEntry is one member of a zip a test builds: a file, a folder or a symlink (body is its
// target), as its mode says.
type zipEntry struct {
	name string
	mode os.FileMode
	body string
}

// buildCodeZip is a deployment package: the test function's bootstrap (mode 0755), then the
// entries in the order given.
func buildCodeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	bootstrap, err := os.ReadFile(filepath.Join(fnDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range append([]zipEntry{{"bootstrap", 0o755, string(bootstrap)}}, entries...) {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// codeSha256 is Lambda's CodeSha256 of a zip: the base64 of its SHA-256.
func codeSha256(zipData []byte) string {
	sum := sha256.Sum256(zipData)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// createFunctionInput is a CreateFunction request for the test function in zipData.
func createFunctionInput(name string, zipData []byte, env map[string]string) *awslambda.CreateFunctionInput {
	in := &awslambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String(apiRole),
		Code:         &types.FunctionCode{ZipFile: zipData},
		MemorySize:   aws.Int32(128),
		Timeout:      aws.Int32(10),
	}
	if env != nil {
		in.Environment = &types.Environment{Variables: env}
	}
	return in
}

// createFunction creates the function name from zipData through the SDK.
func createFunction(t *testing.T, client *awslambda.Client, name string, zipData []byte, env map[string]string) *awslambda.CreateFunctionOutput {
	t.Helper()
	out, err := client.CreateFunction(context.Background(), createFunctionInput(name, zipData, env))
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	return out
}

// invokeEnv invokes name (name:qualifier) in mode env and returns the function's environment
// and the version that ran.
func invokeEnv(t *testing.T, client *awslambda.Client, name string) (map[string]string, string) {
	t.Helper()
	out, err := client.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{"mode":"env"}`)})
	if err != nil {
		t.Fatalf("invoking %s: %v", name, err)
	}
	if out.FunctionError != nil {
		t.Fatalf("invoking %s: function error %s: %s", name, aws.ToString(out.FunctionError), out.Payload)
	}
	env := map[string]string{}
	if err := json.Unmarshal(out.Payload, &env); err != nil {
		t.Fatalf("invoking %s: the payload is no environment: %v\n%s", name, err, out.Payload)
	}
	return env, aws.ToString(out.ExecutedVersion)
}

// isError reports whether err is (or wraps) the SDK's typed error T.
func isError[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// TestAPIFunctionLifecycle: a function created from a zip through the SDK runs that code; it
// is described, updated (code and configuration) and deleted as Lambda does, with Lambda's
// exceptions for conflicts, bad parameters and missing functions.
func TestAPIFunctionLifecycle(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "apilife"})
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	zip1 := codeZip(t, nil)

	t.Run("Create", func(t *testing.T) {
		in := createFunctionInput("made", zip1, map[string]string{"GREETING": "made"})
		in.MemorySize, in.Timeout, in.Description = aws.Int32(256), aws.Int32(7), aws.String("made by the SDK")
		out, err := client.CreateFunction(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.FunctionName) != "made" || !strings.HasSuffix(aws.ToString(out.FunctionArn), ":function:made") ||
			out.Runtime != types.RuntimeProvidedal2023 || aws.ToString(out.Handler) != "bootstrap" ||
			aws.ToInt32(out.MemorySize) != 256 || aws.ToInt32(out.Timeout) != 7 || aws.ToString(out.Description) != "made by the SDK" ||
			aws.ToString(out.Version) != "$LATEST" || out.PackageType != types.PackageTypeZip || aws.ToString(out.RevisionId) == "" {
			t.Errorf("CreateFunction answered %+v", out)
		}
		if got, want := aws.ToString(out.CodeSha256), codeSha256(zip1); got != want {
			t.Errorf("CodeSha256 %q, want %q (base64 of the zip's SHA-256)", got, want)
		}
		if out.CodeSize != int64(len(zip1)) {
			t.Errorf("CodeSize %d, want %d", out.CodeSize, len(zip1))
		}
		if out.Environment == nil || out.Environment.Variables["GREETING"] != "made" {
			t.Errorf("Environment %+v", out.Environment)
		}
		res, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("made"), Payload: []byte(`{"name":"zip"}`)})
		if err != nil || res.FunctionError != nil || string(res.Payload) != `{"message":"Hello, zip!"}` {
			t.Fatalf("invoking the uploaded code: %v %+v", err, res)
		}
		env, executed := invokeEnv(t, client, "made")
		if env["GREETING"] != "made" || env["AWS_LAMBDA_FUNCTION_NAME"] != "made" || env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "256" || executed != "$LATEST" {
			t.Errorf("the function's environment (executed %q): %v", executed, env)
		}
	})

	t.Run("CreateTwice", func(t *testing.T) {
		_, err := client.CreateFunction(ctx, createFunctionInput("made", zip1, nil))
		if !isError[*types.ResourceConflictException](err) {
			t.Errorf("creating an existing function: %T %v", err, err)
		}
	})

	t.Run("CreateWithBadParameters", func(t *testing.T) {
		cases := map[string]func(*awslambda.CreateFunctionInput){
			"memory 1 MB":     func(in *awslambda.CreateFunctionInput) { in.MemorySize = aws.Int32(1) },
			"memory 20 GB":    func(in *awslambda.CreateFunctionInput) { in.MemorySize = aws.Int32(20480) },
			"timeout 0":       func(in *awslambda.CreateFunctionInput) { in.Timeout = aws.Int32(0) },
			"timeout 901 s":   func(in *awslambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) },
			"unknown runtime": func(in *awslambda.CreateFunctionInput) { in.Runtime = "cobol85" },
			"bad name":        func(in *awslambda.CreateFunctionInput) { in.FunctionName = aws.String("bad name!") },
			"reserved env variable": func(in *awslambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"AWS_REGION": "x"}}
			},
			"bad env name": func(in *awslambda.CreateFunctionInput) {
				in.Environment = &types.Environment{Variables: map[string]string{"1X": "x"}}
			},
			"not a zip": func(in *awslambda.CreateFunctionInput) {
				in.Code = &types.FunctionCode{ZipFile: []byte("not a zip at all")}
			},
			"no code": func(in *awslambda.CreateFunctionInput) { in.Code = &types.FunctionCode{} },
			"ephemeral 100 MB": func(in *awslambda.CreateFunctionInput) {
				in.EphemeralStorage = &types.EphemeralStorage{Size: aws.Int32(100)}
			},
		}
		for name, change := range cases {
			in := createFunctionInput("rejected", zip1, nil)
			change(in)
			_, err := client.CreateFunction(ctx, in)
			if !isError[*types.InvalidParameterValueException](err) {
				t.Errorf("%s: %T %v, want InvalidParameterValueException", name, err, err)
			}
		}
		if _, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("rejected")}); !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("a refused CreateFunction left a function behind: %T %v", err, err)
		}
	})

	t.Run("Get", func(t *testing.T) {
		out, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("made")})
		if err != nil {
			t.Fatal(err)
		}
		c := out.Configuration
		if c == nil {
			t.Fatalf("GetFunction has no Configuration: %+v", out)
		}
		if aws.ToString(c.FunctionName) != "made" || aws.ToString(c.CodeSha256) != codeSha256(zip1) || c.CodeSize != int64(len(zip1)) ||
			c.Runtime != types.RuntimeProvidedal2023 || aws.ToInt32(c.MemorySize) != 256 || aws.ToInt32(c.Timeout) != 7 ||
			c.Environment == nil || !mapsEqual(c.Environment.Variables, map[string]string{"GREETING": "made"}) ||
			aws.ToString(c.Handler) != "bootstrap" || c.State != types.StateActive || c.LastUpdateStatus != types.LastUpdateStatusSuccessful {
			t.Errorf("Configuration %+v (environment %+v)", c, c.Environment)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000-0700", aws.ToString(c.LastModified)); err != nil {
			t.Errorf("LastModified %q is not in Lambda's format: %v", aws.ToString(c.LastModified), err)
		}
		if out.Code != nil && aws.ToString(out.Code.Location) == "" {
			t.Errorf("Code without a Location: %+v", out.Code)
		}
		byARN, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: c.FunctionArn})
		if err != nil || aws.ToString(byARN.Configuration.FunctionName) != "made" {
			t.Errorf("GetFunction by ARN %s: %v", aws.ToString(c.FunctionArn), err)
		}
		cfg, err := client.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("made")})
		if err != nil || aws.ToString(cfg.RevisionId) != aws.ToString(c.RevisionId) || aws.ToString(cfg.CodeSha256) != codeSha256(zip1) {
			t.Errorf("GetFunctionConfiguration: %v %+v", err, cfg)
		}
		_, err = client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("missing")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("GetFunction of a missing function: %T %v", err, err)
		} else if !strings.Contains(aws.ToString(nf.Message), "missing") {
			t.Errorf("the not-found message does not name the function: %q", aws.ToString(nf.Message))
		}
	})

	t.Run("UpdateCode", func(t *testing.T) {
		before, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("made")})
		if err != nil {
			t.Fatal(err)
		}
		invokeEnv(t, client, "made") // a warm environment of the old code
		zip2 := codeZip(t, map[string]string{"extra.txt": "second package"})
		out, err := client.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("made"), ZipFile: zip2})
		if err != nil {
			t.Fatal(err)
		}
		if sha := aws.ToString(out.CodeSha256); sha != codeSha256(zip2) || sha == codeSha256(zip1) || out.CodeSize != int64(len(zip2)) {
			t.Errorf("after UpdateFunctionCode: CodeSha256 %q CodeSize %d, want %q %d", sha, out.CodeSize, codeSha256(zip2), len(zip2))
		}
		if aws.ToString(out.RevisionId) == aws.ToString(before.Configuration.RevisionId) {
			t.Errorf("UpdateFunctionCode kept RevisionId %q", aws.ToString(out.RevisionId))
		}
		if aws.ToInt32(out.MemorySize) != 256 || out.Environment == nil || out.Environment.Variables["GREETING"] != "made" {
			t.Errorf("UpdateFunctionCode changed the configuration: %+v", out)
		}
		// The next invocation runs the new package: it holds extra.txt.
		res, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("made"), Payload: []byte(`{"mode":"readfile","path":"/var/task/extra.txt"}`)})
		if err != nil || res.FunctionError != nil {
			t.Fatalf("invoking after UpdateFunctionCode: %v %+v", err, res)
		}
		var file struct{ Content, Error string }
		if err := json.Unmarshal(res.Payload, &file); err != nil || file.Content != "second package" {
			t.Errorf("the new package's extra.txt read %q (error %q): the old code ran", file.Content, file.Error)
		}
		got, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("made")})
		if err != nil || aws.ToString(got.Configuration.CodeSha256) != codeSha256(zip2) {
			t.Errorf("GetFunction after UpdateFunctionCode: %v %+v", err, got)
		}
		// A stale RevisionId is refused.
		_, err = client.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("made"), ZipFile: zip1, RevisionId: before.Configuration.RevisionId})
		if !isError[*types.PreconditionFailedException](err) {
			t.Errorf("UpdateFunctionCode with a stale RevisionId: %T %v", err, err)
		}
		_, err = client.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("made"), ZipFile: []byte("PK but not a zip")})
		if !isError[*types.InvalidParameterValueException](err) {
			t.Errorf("UpdateFunctionCode with a broken zip: %T %v", err, err)
		}
		_, err = client.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("missing"), ZipFile: zip1})
		if !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("UpdateFunctionCode of a missing function: %T %v", err, err)
		}
	})

	t.Run("UpdateConfiguration", func(t *testing.T) {
		out, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("made"),
			Environment: &types.Environment{Variables: map[string]string{"GREETING": "updated", "EXTRA": "1"}}, Timeout: aws.Int32(9)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Environment == nil || !mapsEqual(out.Environment.Variables, map[string]string{"GREETING": "updated", "EXTRA": "1"}) ||
			aws.ToInt32(out.Timeout) != 9 || aws.ToInt32(out.MemorySize) != 256 {
			t.Errorf("UpdateFunctionConfiguration answered %+v (environment %+v)", out, out.Environment)
		}
		env, _ := invokeEnv(t, client, "made")
		if env["GREETING"] != "updated" || env["EXTRA"] != "1" {
			t.Errorf("the function's environment after the update: GREETING=%q EXTRA=%q", env["GREETING"], env["EXTRA"])
		}
		_, err = client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("made"), MemorySize: aws.Int32(1)})
		if !isError[*types.InvalidParameterValueException](err) {
			t.Errorf("UpdateFunctionConfiguration with MemorySize 1: %T %v", err, err)
		}
		if cfg, err := client.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("made")}); err != nil || aws.ToInt32(cfg.MemorySize) != 256 {
			t.Errorf("a refused update changed the function: %v %+v", err, cfg)
		}
		_, err = client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("missing"), Timeout: aws.Int32(3)})
		if !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("UpdateFunctionConfiguration of a missing function: %T %v", err, err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if _, err := client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("made")}); err != nil {
			t.Fatal(err)
		}
		_, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("made"), Payload: []byte(`{}`)})
		if !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("invoking a deleted function: %T %v", err, err)
		}
		if _, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("made")}); !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("GetFunction of a deleted function: %T %v", err, err)
		}
		_, err = client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("made")})
		if !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("deleting it again: %T %v", err, err)
		}
		// The name is free again, and the new function runs.
		createFunction(t, client, "made", zip1, map[string]string{"GREETING": "again"})
		if env, _ := invokeEnv(t, client, "made"); env["GREETING"] != "again" {
			t.Errorf("the re-created function's environment: %v", env)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

// TestAPIListFunctionsPaging: ListFunctions pages by MaxItems and NextMarker, by hand and with
// the SDK's paginator, and every function appears exactly once.
func TestAPIListFunctionsPaging(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "apilist"})
	ctx := context.Background()
	client := a.sdk()
	zipData := codeZip(t, nil)
	want := []string{"page-a", "page-b", "page-c", "page-d", "page-e"}
	for _, name := range []string{"page-d", "page-b", "page-e", "page-a", "page-c"} { // not in order
		createFunction(t, client, name, zipData, nil)
	}

	t.Run("ByHand", func(t *testing.T) {
		var names []string
		var sizes []int
		var marker *string
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("more than 10 pages: %v", names)
			}
			out, err := client.ListFunctions(ctx, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(2), Marker: marker})
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(out.Functions))
			for _, f := range out.Functions {
				names = append(names, aws.ToString(f.FunctionName))
				if aws.ToString(f.CodeSha256) != codeSha256(zipData) || f.Runtime != types.RuntimeProvidedal2023 {
					t.Errorf("listed %s: %+v", aws.ToString(f.FunctionName), f)
				}
			}
			if out.NextMarker == nil {
				break
			}
			marker = out.NextMarker
		}
		if !slices.Equal(names, want) {
			t.Errorf("listed %v, want %v (each once, by name)", names, want)
		}
		if !slices.Equal(sizes, []int{2, 2, 1}) {
			t.Errorf("page sizes %v, want [2 2 1]", sizes)
		}
	})

	t.Run("Paginator", func(t *testing.T) {
		p := awslambda.NewListFunctionsPaginator(client, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(2)})
		var names []string
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, f := range out.Functions {
				names = append(names, aws.ToString(f.FunctionName))
			}
			if pages > 10 {
				t.Fatalf("the paginator does not stop: %v", names)
			}
		}
		if !slices.Equal(names, want) || pages != 3 {
			t.Errorf("the paginator listed %v in %d pages, want %v in 3", names, pages, want)
		}
	})

	t.Run("OnePage", func(t *testing.T) {
		out, err := client.ListFunctions(ctx, &awslambda.ListFunctionsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range out.Functions {
			names = append(names, aws.ToString(f.FunctionName))
		}
		if !slices.Equal(names, want) || out.NextMarker != nil {
			t.Errorf("ListFunctions without MaxItems: %v, NextMarker %v", names, aws.ToString(out.NextMarker))
		}
		// A page that ends exactly at the last function has no NextMarker or leads to an empty page.
		out, err = client.ListFunctions(ctx, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(5)})
		if err != nil || len(out.Functions) != 5 {
			t.Fatalf("MaxItems 5: %v %+v", err, out)
		}
		if out.NextMarker != nil {
			rest, err := client.ListFunctions(ctx, &awslambda.ListFunctionsInput{Marker: out.NextMarker})
			if err != nil || len(rest.Functions) != 0 || rest.NextMarker != nil {
				t.Errorf("the page after the last: %v %+v", err, rest)
			}
		}
	})

	t.Run("AfterDelete", func(t *testing.T) {
		if _, err := client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("page-c")}); err != nil {
			t.Fatal(err)
		}
		var names []string
		p := awslambda.NewListFunctionsPaginator(client, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range out.Functions {
				names = append(names, aws.ToString(f.FunctionName))
			}
		}
		if !slices.Equal(names, []string{"page-a", "page-b", "page-d", "page-e"}) {
			t.Errorf("after deleting page-c: %v", names)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

// TestAPIFunctionURLConfig: a function URL configuration is created, read, served, changed
// (CORS, then AWS_IAM, which refuses unsigned requests) and deleted through the SDK.
func TestAPIFunctionURLConfig(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "apiurl"})
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	createFunction(t, client, "web", codeZip(t, nil), nil)
	wantURL := "http://web.lambda-url.localhost:" + a.port() + "/"

	if _, err := client.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); !isError[*types.ResourceNotFoundException](err) {
		t.Errorf("GetFunctionUrlConfig before any: %T %v", err, err)
	}
	if c := getURL(t, a.addr+"/fn/web/"); c.status != 404 {
		t.Errorf("a function without a URL config answered its URL: %d %s", c.status, c.body)
	}

	var created *awslambda.CreateFunctionUrlConfigOutput
	t.Run("Create", func(t *testing.T) {
		out, err := client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone})
		if err != nil {
			t.Fatal(err)
		}
		created = out
		if aws.ToString(out.FunctionUrl) != wantURL || out.AuthType != types.FunctionUrlAuthTypeNone ||
			!strings.HasSuffix(aws.ToString(out.FunctionArn), ":function:web") || out.InvokeMode != types.InvokeModeBuffered || out.Cors != nil {
			t.Errorf("CreateFunctionUrlConfig answered %+v", out)
		}
		ct, err := time.Parse("2006-01-02T15:04:05.000Z0700", aws.ToString(out.CreationTime))
		if err != nil || time.Since(ct) > time.Minute || time.Since(ct) < -time.Minute {
			t.Errorf("CreationTime %q: %v", aws.ToString(out.CreationTime), err)
		}
		_, err = client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone})
		if !isError[*types.ResourceConflictException](err) {
			t.Errorf("creating it twice: %T %v", err, err)
		}
	})
	if created == nil {
		t.FailNow()
	}

	t.Run("Get", func(t *testing.T) {
		out, err := client.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.FunctionUrl) != wantURL || out.AuthType != types.FunctionUrlAuthTypeNone ||
			aws.ToString(out.CreationTime) != aws.ToString(created.CreationTime) || aws.ToString(out.LastModifiedTime) == "" {
			t.Errorf("GetFunctionUrlConfig answered %+v", out)
		}
		list, err := client.ListFunctionUrlConfigs(ctx, &awslambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("web")})
		if err != nil || len(list.FunctionUrlConfigs) != 1 || aws.ToString(list.FunctionUrlConfigs[0].FunctionUrl) != wantURL {
			t.Errorf("ListFunctionUrlConfigs: %v %+v", err, list)
		}
	})

	t.Run("Call", func(t *testing.T) {
		// The returned address itself (<id>.lambda-url.localhost), then the /fn/<id>/ path.
		ev := decodeEvent(t, getURL(t, aws.ToString(created.FunctionUrl)+"some/path?x=1"))
		if ev.RawPath != "/some/path" || ev.QueryStringParameters["x"] != "1" || ev.RequestContext.HTTP.Method != "GET" {
			t.Errorf("the event by the URL's host: %+v", ev)
		}
		if ev := decodeEvent(t, getURL(t, a.addr+"/fn/web/other")); ev.RawPath != "/other" {
			t.Errorf("the event by /fn/web/: raw path %q", ev.RawPath)
		}
	})

	t.Run("UpdateCors", func(t *testing.T) {
		out, err := client.UpdateFunctionUrlConfig(ctx, &awslambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"),
			Cors: &types.Cors{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET"}, ExposeHeaders: []string{"x-echo"}, MaxAge: aws.Int32(60)}})
		if err != nil {
			t.Fatal(err)
		}
		if out.AuthType != types.FunctionUrlAuthTypeNone || out.Cors == nil || !slices.Equal(out.Cors.AllowOrigins, []string{"https://app.example"}) ||
			aws.ToInt32(out.Cors.MaxAge) != 60 || aws.ToString(out.CreationTime) != aws.ToString(created.CreationTime) {
			t.Errorf("UpdateFunctionUrlConfig answered %+v (cors %+v)", out, out.Cors)
		}
		c := doURL(t, mustRequest(t, "GET", aws.ToString(created.FunctionUrl), ""))
		if c.status != 200 || c.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("a request without Origin: %d %v", c.status, c.header)
		}
		req := mustRequest(t, "GET", aws.ToString(created.FunctionUrl), "")
		req.Header.Set("Origin", "https://app.example")
		c = doURL(t, req)
		if c.status != 200 || c.header.Get("Access-Control-Allow-Origin") != "https://app.example" || c.header.Get("Access-Control-Expose-Headers") != "x-echo" {
			t.Errorf("a request from the allowed origin: %d %v", c.status, c.header)
		}
		_, err = client.UpdateFunctionUrlConfig(ctx, &awslambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"),
			Cors: &types.Cors{AllowOrigins: []string{"not an origin"}}})
		if !isError[*types.InvalidParameterValueException](err) {
			t.Errorf("a bad CORS origin: %T %v", err, err)
		}
	})

	t.Run("UpdateToIAM", func(t *testing.T) {
		out, err := client.UpdateFunctionUrlConfig(ctx, &awslambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeAwsIam})
		if err != nil {
			t.Fatal(err)
		}
		if out.AuthType != types.FunctionUrlAuthTypeAwsIam || out.Cors == nil {
			t.Errorf("UpdateFunctionUrlConfig to AWS_IAM answered %+v (it must keep the CORS policy)", out)
		}
		got, err := client.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")})
		if err != nil || got.AuthType != types.FunctionUrlAuthTypeAwsIam {
			t.Errorf("GetFunctionUrlConfig after the update: %v %+v", err, got)
		}
		if c := getURL(t, aws.ToString(created.FunctionUrl)); c.status != http.StatusForbidden {
			t.Errorf("an unsigned request to an AWS_IAM URL answered %d %s", c.status, c.body)
		}
		if c := getURL(t, a.addr+"/fn/web/"); c.status != http.StatusForbidden {
			t.Errorf("an unsigned request to an AWS_IAM URL by path answered %d %s", c.status, c.body)
		}
		_, err = client.UpdateFunctionUrlConfig(ctx, &awslambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: "BASIC"})
		if !isError[*types.InvalidParameterValueException](err) {
			t.Errorf("AuthType BASIC: %T %v", err, err)
		}
	})

	t.Run("BadRequests", func(t *testing.T) {
		_, err := client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("missing"), AuthType: types.FunctionUrlAuthTypeNone})
		if !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("a URL for a missing function: %T %v", err, err)
		}
		_, err = client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), Qualifier: aws.String("nosuchalias"), AuthType: types.FunctionUrlAuthTypeNone})
		if !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("a URL for a missing alias: %T %v", err, err)
		}
		_, err = client.UpdateFunctionUrlConfig(ctx, &awslambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("missing"), AuthType: types.FunctionUrlAuthTypeNone})
		if !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("updating the URL of a missing function: %T %v", err, err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if _, err := client.DeleteFunctionUrlConfig(ctx, &awslambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("web")}); !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("GetFunctionUrlConfig after the delete: %T %v", err, err)
		}
		if c := getURL(t, aws.ToString(created.FunctionUrl)); c.status != 404 {
			t.Errorf("a deleted URL answered %d %s", c.status, c.body)
		}
		if _, err := client.DeleteFunctionUrlConfig(ctx, &awslambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("deleting it again: %T %v", err, err)
		}
		// A new one may be created once the old one is gone; it starts without CORS.
		out, err := client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("web"), AuthType: types.FunctionUrlAuthTypeNone})
		if err != nil || out.Cors != nil || aws.ToString(out.FunctionUrl) != wantURL {
			t.Fatalf("re-creating the URL: %v %+v", err, out)
		}
		decodeEvent(t, getURL(t, aws.ToString(out.FunctionUrl)))
		// Deleting the function deletes its URL.
		if _, err := client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("web")}); err != nil {
			t.Fatal(err)
		}
		if c := getURL(t, aws.ToString(out.FunctionUrl)); c.status != 404 {
			t.Errorf("the URL of a deleted function answered %d %s", c.status, c.body)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

// TestAPIConcurrencyEdgeCases: no reservation reads as none, bad values and missing functions
// are refused, and a reservation of 0 throttles every call.
func TestAPIConcurrencyEdgeCases(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "apiconc"})
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	createFunction(t, client, "limited", codeZip(t, nil), nil)
	reserved := func() *int32 {
		t.Helper()
		out, err := client.GetFunctionConcurrency(ctx, &awslambda.GetFunctionConcurrencyInput{FunctionName: aws.String("limited")})
		if err != nil {
			t.Fatal(err)
		}
		return out.ReservedConcurrentExecutions
	}

	if n := reserved(); n != nil {
		t.Errorf("a function without a reservation reports %d", *n)
	}
	_, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("limited"), ReservedConcurrentExecutions: aws.Int32(-1)})
	if !isError[*types.InvalidParameterValueException](err) {
		t.Errorf("a negative reservation: %T %v", err, err)
	}
	if n := reserved(); n != nil {
		t.Errorf("a refused reservation was stored: %d", *n)
	}
	for name, call := range map[string]func() error{
		"Get": func() error {
			_, err := client.GetFunctionConcurrency(ctx, &awslambda.GetFunctionConcurrencyInput{FunctionName: aws.String("missing")})
			return err
		},
		"Put": func() error {
			_, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("missing"), ReservedConcurrentExecutions: aws.Int32(1)})
			return err
		},
		"Delete": func() error {
			_, err := client.DeleteFunctionConcurrency(ctx, &awslambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("missing")})
			return err
		},
	} {
		if err := call(); !isError[*types.ResourceNotFoundException](err) {
			t.Errorf("%sFunctionConcurrency of a missing function: %T %v", name, err, err)
		}
	}

	out, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("limited"), ReservedConcurrentExecutions: aws.Int32(0)})
	if err != nil || out.ReservedConcurrentExecutions == nil || *out.ReservedConcurrentExecutions != 0 {
		t.Fatalf("PutFunctionConcurrency 0: %v %+v", err, out)
	}
	if n := reserved(); n == nil || *n != 0 {
		t.Errorf("a reservation of 0 reads as %v", n)
	}
	_, err = client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("limited"), Payload: []byte(`{}`)})
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Errorf("invoking with a reservation of 0: %T %v", err, err)
	}
	if _, err := client.DeleteFunctionConcurrency(ctx, &awslambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("limited")}); err != nil {
		t.Fatal(err)
	}
	if n := reserved(); n != nil {
		t.Errorf("after DeleteFunctionConcurrency: %d", *n)
	}
	if res, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("limited"), Payload: []byte(`{}`)}); err != nil || res.FunctionError != nil {
		t.Errorf("invoking once the reservation is gone: %v", err)
	}

	a.stop()
	checkNothingLeft(t, a)
}

// TestAPIRestartKeepsState: what the management API made (a function from an uploaded zip, its
// published versions, a weighted alias, a reservation, function URLs) is all there after the
// agent restarts on the same data dir, and still runs.
func TestAPIRestartKeepsState(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "apirestart"})
	ctx := context.Background()
	client := a.sdk()
	zipData := codeZip(t, map[string]string{"extra.txt": "kept"})
	createFunction(t, client, "keep", zipData, map[string]string{"GREETING": "one"})
	publish := func() string {
		t.Helper()
		v, err := client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("keep")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(v.Version)
	}
	v1 := publish()
	if _, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("keep"),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "two"}}}); err != nil {
		t.Fatal(err)
	}
	v2 := publish()
	if _, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("keep"),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "latest"}}}); err != nil {
		t.Fatal(err)
	}
	weights := map[string]float64{v2: 0.5}
	if _, err := client.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("keep"), Name: aws.String("live"), FunctionVersion: aws.String(v1),
		Description: aws.String("half and half"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: weights}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("keep"), ReservedConcurrentExecutions: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	cors := &types.Cors{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "POST"}, MaxAge: aws.Int32(30)}
	aliasURL, err := client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("keep"), Qualifier: aws.String("live"),
		AuthType: types.FunctionUrlAuthTypeNone, Cors: cors})
	if err != nil {
		t.Fatal(err)
	}
	latestURL, err := client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("keep"),
		AuthType: types.FunctionUrlAuthTypeAwsIam, InvokeMode: types.InvokeModeResponseStream})
	if err != nil {
		t.Fatal(err)
	}
	before, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("keep")})
	if err != nil {
		t.Fatal(err)
	}
	invokeEnv(t, client, "keep:live") // warm environments the restart must retire

	a.stop()
	checkNothingLeft(t, a)
	a.start()

	t.Run("Function", func(t *testing.T) {
		got, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("keep")})
		if err != nil {
			t.Fatal(err)
		}
		c, b := got.Configuration, before.Configuration
		if aws.ToString(c.CodeSha256) != codeSha256(zipData) || aws.ToString(c.RevisionId) != aws.ToString(b.RevisionId) ||
			aws.ToString(c.LastModified) != aws.ToString(b.LastModified) || c.Environment == nil || c.Environment.Variables["GREETING"] != "latest" {
			t.Errorf("after the restart: %+v\nbefore: %+v", c, b)
		}
		env, executed := invokeEnv(t, client, "keep")
		if env["GREETING"] != "latest" || executed != "$LATEST" {
			t.Errorf("$LATEST after the restart (executed %q): GREETING=%q", executed, env["GREETING"])
		}
		res, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("keep"), Payload: []byte(`{"mode":"readfile","path":"/var/task/extra.txt"}`)})
		if err != nil || !strings.Contains(string(res.Payload), `"content":"kept"`) {
			t.Errorf("the uploaded package after the restart: %v %s", err, res.Payload)
		}
	})

	t.Run("Versions", func(t *testing.T) {
		list, err := client.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: aws.String("keep")})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		var order []string
		for _, v := range list.Versions {
			order = append(order, aws.ToString(v.Version))
			if v.Environment != nil {
				got[aws.ToString(v.Version)] = v.Environment.Variables["GREETING"]
			}
		}
		if !slices.Equal(order, []string{"$LATEST", v1, v2}) || got[v1] != "one" || got[v2] != "two" || got["$LATEST"] != "latest" {
			t.Errorf("versions after the restart: %v, greetings %v", order, got)
		}
		if env, executed := invokeEnv(t, client, "keep:"+v1); env["GREETING"] != "one" || executed != v1 {
			t.Errorf("version %s after the restart (executed %q): GREETING=%q", v1, executed, env["GREETING"])
		}
	})

	t.Run("Alias", func(t *testing.T) {
		al, err := client.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: aws.String("keep"), Name: aws.String("live")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(al.FunctionVersion) != v1 || aws.ToString(al.Description) != "half and half" || al.RoutingConfig == nil ||
			len(al.RoutingConfig.AdditionalVersionWeights) != 1 || al.RoutingConfig.AdditionalVersionWeights[v2] != 0.5 {
			t.Errorf("the alias after the restart: %+v (routing %+v)", al, al.RoutingConfig)
		}
		seen := map[string]int{}
		for i := 0; i < 24; i++ {
			env, executed := invokeEnv(t, client, "keep:live")
			want := map[string]string{v1: "one", v2: "two"}[executed]
			if want == "" || env["GREETING"] != want {
				t.Fatalf("keep:live ran version %q with GREETING=%q", executed, env["GREETING"])
			}
			seen[executed]++
		}
		if seen[v1] == 0 || seen[v2] == 0 {
			t.Errorf("24 calls of a 50%% alias ran %v: the routing was lost", seen)
		}
	})

	t.Run("Concurrency", func(t *testing.T) {
		out, err := client.GetFunctionConcurrency(ctx, &awslambda.GetFunctionConcurrencyInput{FunctionName: aws.String("keep")})
		if err != nil || aws.ToInt32(out.ReservedConcurrentExecutions) != 7 {
			t.Errorf("the reservation after the restart: %v %+v", err, out)
		}
	})

	t.Run("URLs", func(t *testing.T) {
		got, err := client.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("keep"), Qualifier: aws.String("live")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(got.FunctionUrl) != aws.ToString(aliasURL.FunctionUrl) || got.AuthType != types.FunctionUrlAuthTypeNone ||
			aws.ToString(got.CreationTime) != aws.ToString(aliasURL.CreationTime) || got.Cors == nil ||
			!slices.Equal(got.Cors.AllowOrigins, cors.AllowOrigins) || !slices.Equal(got.Cors.AllowMethods, cors.AllowMethods) || aws.ToInt32(got.Cors.MaxAge) != 30 ||
			!strings.HasSuffix(aws.ToString(got.FunctionArn), ":function:keep:live") {
			t.Errorf("the alias's URL config after the restart: %+v (cors %+v)", got, got.Cors)
		}
		latest, err := client.GetFunctionUrlConfig(ctx, &awslambda.GetFunctionUrlConfigInput{FunctionName: aws.String("keep")})
		if err != nil || latest.AuthType != types.FunctionUrlAuthTypeAwsIam || latest.InvokeMode != types.InvokeModeResponseStream ||
			aws.ToString(latest.FunctionUrl) != aws.ToString(latestURL.FunctionUrl) {
			t.Errorf("the function's URL config after the restart: %v %+v", err, latest)
		}
		list, err := client.ListFunctionUrlConfigs(ctx, &awslambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("keep")})
		if err != nil || len(list.FunctionUrlConfigs) != 2 {
			t.Errorf("ListFunctionUrlConfigs after the restart: %v %+v", err, list)
		}
		req := mustRequest(t, "GET", aws.ToString(aliasURL.FunctionUrl)+"?mode=echo", "")
		req.Header.Set("Origin", "https://app.example")
		c := doURL(t, req)
		decodeEvent(t, c)
		if c.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("the alias's URL lost its CORS policy: %v", c.header)
		}
		if c := getURL(t, aws.ToString(latestURL.FunctionUrl)); c.status != http.StatusForbidden {
			t.Errorf("an unsigned call of the AWS_IAM URL after the restart answered %d %s", c.status, c.body)
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

// TestAPIQualifiedGetAndDelete: GetFunction and DeleteFunction with a Qualifier act on that
// version only, as in Lambda: GetFunction describes the version (or answers not found), and
// DeleteFunction deletes the version and keeps the function.
func TestAPIQualifiedGetAndDelete(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "apiqual"})
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	createFunction(t, client, "qual", codeZip(t, nil), map[string]string{"GREETING": "one"})
	v1, err := client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("qual")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("qual"),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "latest"}}}); err != nil {
		t.Fatal(err)
	}

	t.Run("GetFunctionOfAVersion", func(t *testing.T) {
		for _, in := range []*awslambda.GetFunctionInput{
			{FunctionName: aws.String("qual"), Qualifier: v1.Version},
			{FunctionName: aws.String("qual:" + aws.ToString(v1.Version))},
		} {
			out, err := client.GetFunction(ctx, in)
			if err != nil {
				t.Errorf("GetFunction %s (Qualifier %s): %v", aws.ToString(in.FunctionName), aws.ToString(in.Qualifier), err)
				continue
			}
			if c := out.Configuration; aws.ToString(c.Version) != aws.ToString(v1.Version) || c.Environment == nil || c.Environment.Variables["GREETING"] != "one" ||
				!strings.HasSuffix(aws.ToString(c.FunctionArn), ":function:qual:"+aws.ToString(v1.Version)) {
				t.Errorf("GetFunction %s (Qualifier %s) described version %q with GREETING=%q (ARN %s), want version %s with GREETING=one",
					aws.ToString(in.FunctionName), aws.ToString(in.Qualifier), aws.ToString(c.Version), c.Environment.Variables["GREETING"], aws.ToString(c.FunctionArn), aws.ToString(v1.Version))
			}
		}
		for _, in := range []*awslambda.GetFunctionInput{
			{FunctionName: aws.String("qual"), Qualifier: aws.String("99")},
			{FunctionName: aws.String("qual:99")},
		} {
			if _, err := client.GetFunction(ctx, in); !isError[*types.ResourceNotFoundException](err) {
				t.Errorf("GetFunction %s (Qualifier %s) of a version that does not exist: %T %v, want ResourceNotFoundException",
					aws.ToString(in.FunctionName), aws.ToString(in.Qualifier), err, err)
			}
		}
	})

	t.Run("RefusedQualifiers", func(t *testing.T) {
		if _, err := client.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("qual"), Name: aws.String("live"), FunctionVersion: v1.Version}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("qual"), Qualifier: v1.Version}); !isError[*types.ResourceConflictException](err) {
			t.Errorf("deleting a version an alias uses: %v, want ResourceConflictException", err)
		}
		for what, err := range map[string]error{
			"DeleteFunction $LATEST": func() error {
				_, err := client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("qual"), Qualifier: aws.String("$LATEST")})
				return err
			}(),
			"DeleteFunction of an alias": func() error {
				_, err := client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("qual:live")})
				return err
			}(),
			"UpdateFunctionConfiguration of a version": func() error {
				_, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("qual:1"), Timeout: aws.Int32(9)})
				return err
			}(),
			"PutFunctionConcurrency of a version": func() error {
				_, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("qual:1"), ReservedConcurrentExecutions: aws.Int32(1)})
				return err
			}(),
		} {
			if !isError[*types.InvalidParameterValueException](err) {
				t.Errorf("%s: %v, want InvalidParameterValueException", what, err)
			}
		}
		// The alias reads as its version.
		out, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("qual"), Qualifier: aws.String("live")})
		if err != nil || aws.ToString(out.Configuration.Version) != aws.ToString(v1.Version) {
			t.Errorf("GetFunction of the alias: %v %+v", err, out)
		}
		if _, err := client.DeleteAlias(ctx, &awslambda.DeleteAliasInput{FunctionName: aws.String("qual"), Name: aws.String("live")}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("DeleteAVersion", func(t *testing.T) {
		if _, err := client.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("qual"), Qualifier: v1.Version}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("qual")}); err != nil {
			t.Fatalf("deleting version %s deleted the whole function: GetFunction answers %v", aws.ToString(v1.Version), err)
		}
		list, err := client.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: aws.String("qual")})
		if err != nil || len(list.Versions) != 1 || aws.ToString(list.Versions[0].Version) != "$LATEST" {
			t.Errorf("versions after deleting version %s: %v %+v", aws.ToString(v1.Version), err, list)
		}
		if env, _ := invokeEnv(t, client, "qual"); env["GREETING"] != "latest" {
			t.Errorf("$LATEST after deleting a version: GREETING=%q", env["GREETING"])
		}
	})

	a.stop()
	checkNothingLeft(t, a)
}

// TestAPIPublishOnCreateAndUpdate: CreateFunction and UpdateFunctionCode with Publish set
// publish a version and describe it, as in Lambda.
func TestAPIPublishOnCreateAndUpdate(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "apipub"})
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	in := createFunctionInput("pub", codeZip(t, nil), nil)
	in.Publish = true
	created, err := client.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(created.Version) != "1" {
		t.Errorf("CreateFunction with Publish answered version %q, want 1", aws.ToString(created.Version))
	}
	updated, err := client.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("pub"),
		ZipFile: codeZip(t, map[string]string{"extra.txt": "v2"}), Publish: true})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(updated.Version) != "2" {
		t.Errorf("UpdateFunctionCode with Publish answered version %q, want 2", aws.ToString(updated.Version))
	}
	list, err := client.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: aws.String("pub")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range list.Versions {
		got = append(got, aws.ToString(v.Version))
	}
	if !slices.Equal(got, []string{"$LATEST", "1", "2"}) {
		t.Errorf("versions %v, want [$LATEST 1 2]", got)
	}
	a.stop()
	checkNothingLeft(t, a)
}
