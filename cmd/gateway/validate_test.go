package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/cluster/codestore"
	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/gateway/httpapi"
	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
)

// noInvoker fails every invocation: the test below only creates functions.
type noInvoker struct{}

func (noInvoker) Invoke(context.Context, *structs.Function, *invoke.Request) (*invoke.Response, error) {
	return nil, errors.New("no invocations here")
}

// apiServer is a node's management API in-process (single-node Raft, code store, gateway).
func apiServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
	gw, err := gateway.New(gateway.Config{Invoker: noInvoker{}, Store: node, Code: code,
		StoreErrors: gateway.StoreErrors{NotFound: cluster.ErrNotFound, Conflict: cluster.ErrConflict, Exists: cluster.ErrExists},
		FileSystems: func() []structs.NodeFileSystem { return []structs.NodeFileSystem{{Name: "shared"}} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
	h, err := httpapi.New(httpapi.Config{Gateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// fsBlock is a function's file_system block mounting the file system "shared" at path; fsAPI
// the same in CreateFunction's FileSystemConfigs.
func fsBlock(path string) string {
	return "file_system {\n    name = \"shared\"\n    local_mount_path = \"" + path + "\"\n  }"
}

func fsAPI(path string) map[string]any {
	return map[string]any{"FileSystemConfigs": []any{map[string]any{"Arn": "arn:lambdagw:file-system:us-east-1::shared", "LocalMountPath": path}}}
}

// TestSameRulesInHCLAndAPI feeds the same settings to a function file and to CreateFunction:
// both refuse each bad value with the same rule's message (HCL as a diagnostic on the attribute,
// the API as InvalidParameterValueException), and both accept the good ones.
func TestSameRulesInHCLAndAPI(t *testing.T) {
	url := apiServer(t)
	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	w, _ := zw.Create("bootstrap")
	_, _ = w.Write([]byte("#!/bin/sh\n"))
	_ = zw.Close()
	big := strings.Repeat("x", 4100)
	cases := []struct {
		name string
		// function is the name; hcl the function block's extra attributes; api the CreateFunction fields.
		function, hcl string
		api           map[string]any
		// want is in both refusals: the value as the rule names it.
		want string
	}{
		{"valid", "fn", "memory_mb = 256\n  timeout = 30\n  ephemeral_storage_mb = 1024",
			map[string]any{"MemorySize": 256, "Timeout": 30, "EphemeralStorage": map[string]any{"Size": 1024}}, ""},
		{"memory low", "fn", "memory_mb = 64", map[string]any{"MemorySize": 64}, "64 MB is out of range"},
		{"memory high", "fn", "memory_mb = 20480", map[string]any{"MemorySize": 20480}, "20480 MB is out of range"},
		{"timeout", "fn", "timeout = 901", map[string]any{"Timeout": 901}, "15m1s is out of range"},
		{"ephemeral", "fn", "ephemeral_storage_mb = 100", map[string]any{"EphemeralStorage": map[string]any{"Size": 100}}, "100 MB is out of range"},
		{"runtime", "fn", `runtime = "Node 20"`, map[string]any{"Runtime": "Node 20"}, `"Node 20" is not a runtime name`},
		{"name", "bad.name", "", nil, `"bad.name"`},
		{"handler", "fn", `handler = "a b"`, map[string]any{"Handler": "a b"}, `"a b": a handler`},
		{"description", "fn", `description = "` + strings.Repeat("d", 257) + `"`, map[string]any{"Description": strings.Repeat("d", 257)}, "257 characters"},
		{"reserved env", "fn", `environment = { AWS_REGION = "x" }`, map[string]any{"Environment": map[string]any{"Variables": map[string]string{"AWS_REGION": "x"}}}, "AWS_REGION is set by the gateway"},
		{"env name", "fn", `environment = { "1X" = "x" }`, map[string]any{"Environment": map[string]any{"Variables": map[string]string{"1X": "x"}}}, `"1X": a name starts`},
		{"env size", "fn", `environment = { BIG = "` + big + `" }`, map[string]any{"Environment": map[string]any{"Variables": map[string]string{"BIG": big}}}, "take 4103 bytes"},
		{"freeze delay", "fn", `freeze_delay = "2h"`, map[string]any{"GatewayOptions": map[string]any{"FreezeDelayMs": 7200000}}, "2h0m0s is out of range"},
		{"dead letter", "fn", `dead_letter_target = "function:sink"`, map[string]any{"DeadLetterConfig": map[string]any{"TargetArn": "arn:aws:lambda:us-east-1:000000000000:function:sink"}},
			`"function:sink": use "queue:NAME", "stream:NAME" or "<plugin>:<target>" (never a function)`},
		{"dead letter queue", "fn", `dead_letter_target = "queue:dlq"`, map[string]any{"DeadLetterConfig": map[string]any{"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"}}, ""},
		{"network name", "fn", "network {\n    name = \"Back_End\"\n  }", map[string]any{"VpcConfig": map[string]any{"SubnetIds": []string{"Back_End"}, "SecurityGroupIds": []string{}}},
			`"Back_End": a network name has 1 to 11 lowercase letters`},
		{"egress policy name", "fn", "network {\n    name = \"backend\"\n    egress_policies = [\"a b\"]\n  }",
			map[string]any{"VpcConfig": map[string]any{"SubnetIds": []string{"backend"}, "SecurityGroupIds": []string{"a b"}}}, `"a b": an egress policy name has`},
		{"file system", "fn", fsBlock("/mnt/shared"), fsAPI("/mnt/shared"), ""},
		{"file system outside mnt", "fn", fsBlock("/etc"), fsAPI("/etc"), `"/etc" is outside /mnt`},
		{"file system at mnt", "fn", fsBlock("/mnt"), fsAPI("/mnt"), `"/mnt" is not a folder under /mnt`},
		{"file system escape", "fn", fsBlock("/mnt/../etc"), fsAPI("/mnt/../etc"), `"/mnt/../etc" has ".."`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_ = os.WriteFile(filepath.Join(dir, "fn.zip"), zipBuf.Bytes(), 0o644)
			runtime := `runtime = "provided.al2023"` + "\n  "
			if strings.HasPrefix(c.hcl, "runtime") {
				runtime = ""
			}
			src := "function \"" + c.function + "\" {\n  " + runtime + "code = \"./fn.zip\"\n  " + c.hcl + "\n}\n"
			_ = os.WriteFile(filepath.Join(dir, "f.hcl"), []byte(src), 0o644)
			_, files, diags := config.LoadFunctions(filepath.Join(dir, "f.hcl"))
			var rendered strings.Builder
			_ = files.WriteDiagnostics(&rendered, diags)

			name := c.function
			if name == "fn" {
				name = "fn" + string(rune('a'+i)) // each case its own function
			}
			in := map[string]any{"FunctionName": name, "Runtime": "provided.al2023", "Role": "r",
				"Code": map[string]any{"ZipFile": base64.StdEncoding.EncodeToString(zipBuf.Bytes())}}
			for k, v := range c.api {
				in[k] = v
			}
			body, _ := json.Marshal(in)
			resp, err := http.Post(url+"/2015-03-31/functions", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var apiErr struct {
				Message string `json:"message"`
			}
			_ = json.Unmarshal(out, &apiErr)

			if c.want == "" {
				if diags.HasErrors() || resp.StatusCode != 201 {
					t.Fatalf("valid settings: HCL %s; API %d %s", rendered.String(), resp.StatusCode, out)
				}
				return
			}
			if !diags.HasErrors() || !strings.Contains(rendered.String(), c.want) || !strings.Contains(rendered.String(), "f.hcl:") {
				t.Errorf("HCL did not refuse it with %q and a file:line:\n%s", c.want, rendered.String())
			}
			if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidParameterValueException" || !strings.Contains(apiErr.Message, c.want) {
				t.Errorf("API: %d %s %s; want 400 InvalidParameterValueException with %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), out, c.want)
			}
		})
	}
}

// apiWithFunction starts an API server with a function "fn", and a folder for function files
// (with an empty build folder for their code).
func apiWithFunction(t *testing.T) (url, dir string) {
	t.Helper()
	url = apiServer(t)
	dir = t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	w, _ := zw.Create("bootstrap")
	_, _ = w.Write([]byte("#!/bin/sh\n"))
	_ = zw.Close()
	body, _ := json.Marshal(map[string]any{"FunctionName": "fn", "Runtime": "provided.al2023", "Role": "r",
		"Code": map[string]any{"ZipFile": base64.StdEncoding.EncodeToString(zipBuf.Bytes())}})
	resp, err := http.Post(url+"/2015-03-31/functions", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", err, resp)
	}
	resp.Body.Close()
	return url, dir
}

// TestSameTriggerRulesInHCLAndAPI: a trigger block and the trigger API refuse the same settings
// with the same rule's message.
func TestSameTriggerRulesInHCLAndAPI(t *testing.T) {
	url, dir := apiWithFunction(t)
	cases := []struct {
		name, hcl string
		api       map[string]any
		want      string
	}{
		{"batch window", `batch_window = "6m"`, map[string]any{"batch_window": int64(6 * time.Minute)}, "6m0s is out of range"},
		{"retries", "maximum_retry_attempts = -2", map[string]any{"maximum_retry_attempts": -2}, "-2: use -1"},
		{"record age", `maximum_record_age = "1s"`, map[string]any{"maximum_record_age": int64(time.Second)}, "1s is out of range"},
		{"starting position", `starting_position = "OLDEST"`, map[string]any{"starting_position": "OLDEST"}, `"OLDEST": use TRIM_HORIZON`},
		{"on failure", "on_failure {\n      destination = \"sqs x\"\n    }", map[string]any{"on_failure": "sqs x"}, `"sqs x": use`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "function \"fn\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n  trigger \"t\" {\n    plugin = \"queue\"\n    source = \"o\"\n    " + c.hcl + "\n  }\n}\n"
			_ = os.WriteFile(filepath.Join(dir, "f.hcl"), []byte(src), 0o644)
			_, files, diags := config.LoadFunctions(filepath.Join(dir, "f.hcl"))
			var rendered strings.Builder
			_ = files.WriteDiagnostics(&rendered, diags)
			if !diags.HasErrors() || !strings.Contains(rendered.String(), c.want) {
				t.Errorf("HCL did not refuse it with %q:\n%s", c.want, rendered.String())
			}
			in := map[string]any{"plugin": "queue", "source": "o", "maximum_retry_attempts": -1, "enabled": true}
			for k, v := range c.api {
				in[k] = v
			}
			body, _ := json.Marshal(in)
			req, _ := http.NewRequest("PUT", url+"/v1/functions/fn/triggers/t", bytes.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var apiErr struct {
				Message string `json:"message"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&apiErr)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(apiErr.Message, c.want) {
				t.Errorf("API: %d %q; want 400 with %q", resp.StatusCode, apiErr.Message, c.want)
			}
		})
	}
}

// TestSameAsyncRulesInHCLAndAPI: an async block and PutFunctionEventInvokeConfig refuse the same
// settings with the same rule's message.
func TestSameAsyncRulesInHCLAndAPI(t *testing.T) {
	url, dir := apiWithFunction(t)
	cases := []struct {
		name, hcl string
		api       map[string]any
		want      string
	}{
		{"valid", "maximum_retry_attempts = 0\n    maximum_event_age = \"6h\"", map[string]any{"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 21600}, ""},
		{"retries", "maximum_retry_attempts = 3", map[string]any{"MaximumRetryAttempts": 3}, "3 is out of range: it must be between 0 and 2"},
		{"age", `maximum_event_age = "30s"`, map[string]any{"MaximumEventAgeInSeconds": 30}, "30s is out of range"},
		{"age zero", "maximum_event_age = 0", map[string]any{"MaximumEventAgeInSeconds": 0}, "0s is out of range"},
		{"age long", `maximum_event_age = "7h"`, map[string]any{"MaximumEventAgeInSeconds": 25200}, "7h0m0s is out of range"},
		{"itself", "on_success {\n      destination = \"function:fn\"\n    }",
			map[string]any{"DestinationConfig": map[string]any{"OnSuccess": map[string]any{"Destination": "arn:aws:lambda:us-east-1:000000000000:function:fn"}}},
			"a function cannot be its own destination"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "function \"fn\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n  async {\n    " + c.hcl + "\n  }\n}\n"
			_ = os.WriteFile(filepath.Join(dir, "f.hcl"), []byte(src), 0o644)
			_, files, diags := config.LoadFunctions(filepath.Join(dir, "f.hcl"))
			var rendered strings.Builder
			_ = files.WriteDiagnostics(&rendered, diags)
			body, _ := json.Marshal(c.api)
			req, _ := http.NewRequest("PUT", url+"/2019-09-25/functions/fn/event-invoke-config", bytes.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var apiErr struct {
				Message string `json:"message"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&apiErr)
			resp.Body.Close()
			if c.want == "" {
				if diags.HasErrors() || resp.StatusCode != 200 {
					t.Fatalf("valid settings: HCL %s; API %d %q", rendered.String(), resp.StatusCode, apiErr.Message)
				}
				return
			}
			if !diags.HasErrors() || !strings.Contains(rendered.String(), c.want) || !strings.Contains(rendered.String(), "f.hcl:") {
				t.Errorf("HCL did not refuse it with %q and a file:line:\n%s", c.want, rendered.String())
			}
			if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "InvalidParameterValueException" || !strings.Contains(apiErr.Message, c.want) {
				t.Errorf("API: %d %q; want 400 InvalidParameterValueException with %q", resp.StatusCode, apiErr.Message, c.want)
			}
		})
	}
}
