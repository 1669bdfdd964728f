package integration

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lambdagw/gateway/integration/nodeimage"
)

// The Node.js handler the tests run (nodeimage.Handler) and the runtime client's command.
const nodeHandler = nodeimage.Handler

var ricEntrypoint = nodeimage.Entrypoint

// tarLayer makes a layer of files given as path -> content (mode 0755 for executables named in
// exec), plus the trees of dirs (image path -> host folder), symlinks kept.
func tarLayer(t *testing.T, files map[string][]byte, exec map[string]bool, dirs map[string]string) v1.Layer {
	t.Helper()
	l, err := nodeimage.TarLayer(files, exec, dirs)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// nodeLayers are a Node.js root built from this machine's node and a layer with npm's
// aws-lambda-ric, as make deps installs it.
func nodeLayers(t *testing.T) []v1.Layer {
	t.Helper()
	layers, err := nodeimage.Layers("..")
	if err != nil {
		t.Fatal(err)
	}
	return layers
}

// imageOf is an image of layers with cfg, for linux on this machine's architecture.
func imageOf(t *testing.T, layers []v1.Layer, cfg v1.Config) v1.Image {
	t.Helper()
	img, err := nodeimage.ImageOf(layers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkNodeFunction calls the Node.js handler three times through the SDK: its answer, warm on
// the second call, and a thrown error reported as Lambda's Node.js runtime reports it.
func checkNodeFunction(t *testing.T, a *agentProc, client *awslambda.Client, fn string) {
	t.Helper()
	ctx := context.Background()
	var out *awslambda.InvokeOutput
	var err error
	// A managed runtime's image is pulled as the agent starts: the first call may come first.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		out, err = client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"name":"node"}`)})
		if err == nil && out.FunctionError == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || out.FunctionError != nil {
		var payload []byte
		if out != nil {
			payload = out.Payload
		}
		t.Fatalf("invoking %s: %v %s\nits log:\n%s", fn, err, payload, a.functionLogs(fn))
	}
	var got struct {
		Message string
		Calls   int
		Node    string
	}
	if err := json.Unmarshal(out.Payload, &got); err != nil || got.Message != "Hello, node!" || got.Calls != 1 || !strings.HasPrefix(got.Node, "v") {
		t.Fatalf("first call answered %s (%v)", out.Payload, err)
	}
	out, err = client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"name":"again"}`)})
	if err != nil || json.Unmarshal(out.Payload, &got) != nil || got.Calls != 2 {
		t.Fatalf("second call (warm: the same environment counts 2): %v %s", err, out.Payload)
	}
	out, err = client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"fail":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var fail struct{ ErrorType, ErrorMessage string }
	if aws.ToString(out.FunctionError) != "Unhandled" || json.Unmarshal(out.Payload, &fail) != nil ||
		fail.ErrorType != "TypeError" || fail.ErrorMessage != "bad input: x" {
		t.Fatalf("a thrown TypeError: function error %q, %s", aws.ToString(out.FunctionError), out.Payload)
	}
}

// TestNodeRuntimeInterfaceClient runs an unmodified Node.js handler under npm's aws-lambda-ric,
// the Node.js runtime interface client nobody here wrote, on a Node.js root built from this
// machine's node: as a zip on a managed runtime (a runtime block naming an OCI layout), and as a
// container image pushed to a registry.
func TestNodeRuntimeInterfaceClient(t *testing.T) {
	needRoot(t)
	layers := nodeLayers(t)
	// The runtime's image: Node.js and the runtime client, the handler given as the argument.
	// NODE_PATH as AWS's Node.js base images set it: a layer's nodejs/node_modules is found.
	rt := imageOf(t, layers, v1.Config{Entrypoint: ricEntrypoint,
		Env: nodeimage.Env})
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(rt, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "20"})); err != nil {
		t.Fatal(err)
	}
	// The function's own image: the same base with its code at /var/task.
	fnLayer := tarLayer(t, map[string][]byte{"var/task/index.js": []byte(nodeHandler)}, nil, nil)
	img := imageOf(t, append(append([]v1.Layer(nil), layers...), fnLayer),
		v1.Config{Entrypoint: ricEntrypoint, Cmd: []string{"index.handler"}, WorkingDir: "/var/task"})
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := name.ParseReference(host + "/team/node-fn:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}

	a := startAgent(t, agentOptions{node: "noderic", top: "runtime \"nodejs20.x\" {\n  image = \"oci-layout:" + dir + ":20\"\n}\n"})
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()

	t.Run("ZipOnManagedRuntime", func(t *testing.T) {
		zipped := zipOf(t, map[string]string{"index.js": nodeHandler})
		in := &awslambda.CreateFunctionInput{FunctionName: aws.String("nodezip"), Role: aws.String(apiRole),
			Runtime: types.RuntimeNodejs20x, Handler: aws.String("index.handler"), Code: &types.FunctionCode{ZipFile: zipped},
			MemorySize: aws.Int32(256), Timeout: aws.Int32(20)}
		if _, err := client.CreateFunction(ctx, in); err != nil {
			t.Fatal(err)
		}
		checkNodeFunction(t, a, client, "nodezip")
	})
	t.Run("DependenciesInALayer", func(t *testing.T) {
		// The handler's dependency moved out of its zip into a layer, as people do with
		// node_modules: the zip holds only the handler.
		dep := zipOf(t, map[string]string{
			"nodejs/node_modules/greeter/package.json": `{"name":"greeter","version":"1.0.0","main":"index.js"}`,
			"nodejs/node_modules/greeter/index.js":     "exports.greet = (name) => `Hello, ${name}!`;\n",
		})
		layer, err := client.PublishLayerVersion(ctx, &awslambda.PublishLayerVersionInput{LayerName: aws.String("greeter"),
			Content: &types.LayerVersionContentInput{ZipFile: dep}, CompatibleRuntimes: []types.Runtime{types.RuntimeNodejs20x}})
		if err != nil {
			t.Fatal(err)
		}
		handler := strings.Replace(nodeHandler, `"Hello, " + event.name + "!"`, `require("greeter").greet(event.name)`, 1)
		if handler == nodeHandler {
			t.Fatal("the handler was not rewritten to use its dependency")
		}
		in := &awslambda.CreateFunctionInput{FunctionName: aws.String("nodelayer"), Role: aws.String(apiRole),
			Runtime: types.RuntimeNodejs20x, Handler: aws.String("index.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"index.js": handler})},
			MemorySize: aws.Int32(256), Timeout: aws.Int32(20), Layers: []string{aws.ToString(layer.LayerVersionArn)}}
		if _, err := client.CreateFunction(ctx, in); err != nil {
			t.Fatal(err)
		}
		checkNodeFunction(t, a, client, "nodelayer")
	})
	t.Run("ExtensionInALayer", func(t *testing.T) {
		// A Node.js external extension, as published ones are written: it registers, subscribes
		// to the Telemetry API with a listener of its own, and reports at SHUTDOWN what it got.
		layer, err := client.PublishLayerVersion(ctx, &awslambda.PublishLayerVersionInput{LayerName: aws.String("node-telemetry"),
			Content: &types.LayerVersionContentInput{ZipFile: zipModes(t, map[string]string{"extensions/node-telemetry": nodeExtension},
				map[string]bool{"extensions/node-telemetry": true})}})
		if err != nil {
			t.Fatal(err)
		}
		in := &awslambda.CreateFunctionInput{FunctionName: aws.String("nodeext"), Role: aws.String(apiRole),
			Runtime: types.RuntimeNodejs20x, Handler: aws.String("index.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string]string{"index.js": nodeHandler})},
			MemorySize: aws.Int32(256), Timeout: aws.Int32(20), Layers: []string{aws.ToString(layer.LayerVersionArn)}}
		if _, err := client.CreateFunction(ctx, in); err != nil {
			t.Fatal(err)
		}
		checkNodeFunction(t, a, client, "nodeext")
		// A new configuration retires the environment: its extension gets SHUTDOWN.
		if _, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("nodeext"),
			Environment: &types.Environment{Variables: map[string]string{"NEXT": "1"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("nodeext"), Payload: []byte(`{"name":"new"}`)}); err != nil {
			t.Fatal(err)
		}
		var logs string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if logs = a.functionLogs("nodeext"); strings.Contains(logs, "node-telemetry SHUTDOWN spindown") {
				break
			}
		}
		for _, want := range []string{"EXTENSION Name: node-telemetry State: Registered Events: [INVOKE,SHUTDOWN]",
			"node-telemetry registered 200", "node-telemetry subscribed 200", "node-telemetry INVOKE ",
			"node-telemetry SHUTDOWN spindown saw platform.extension,platform.initReport,platform.initRuntimeDone,platform.initStart,platform.report,platform.runtimeDone,platform.start,platform.telemetrySubscription"} {
			if !strings.Contains(logs, want) {
				t.Fatalf("no %q in the function's log:\n%s", want, logs)
			}
		}
	})
	t.Run("ContainerImage", func(t *testing.T) {
		in := &awslambda.CreateFunctionInput{FunctionName: aws.String("nodeimg"), Role: aws.String(apiRole),
			PackageType: types.PackageTypeImage, Code: &types.FunctionCode{ImageUri: aws.String(host + "/team/node-fn:1")},
			MemorySize: aws.Int32(256), Timeout: aws.Int32(20)}
		if _, err := client.CreateFunction(ctx, in); err != nil {
			t.Fatal(err)
		}
		checkNodeFunction(t, a, client, "nodeimg")
	})
}

// nodeExtension is an external extension in Node.js, run by the runtime's node: it registers
// for INVOKE and SHUTDOWN, subscribes to the Telemetry API (platform events) on a listener of
// its own, logs each event, and at SHUTDOWN the event types it received, then exits.
const nodeExtension = `#!/usr/bin/node
"use strict";
const http = require("http");
const name = require("path").basename(__filename);
const api = "http://" + process.env.AWS_LAMBDA_RUNTIME_API;
const seen = new Set();
http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    if (req.method === "POST") for (const ev of JSON.parse(body)) seen.add(ev.type);
    res.end();
  });
}).listen(4250, "0.0.0.0", main);

async function main() {
  const reg = await fetch(api + "/2020-01-01/extension/register", { method: "POST",
    headers: { "Lambda-Extension-Name": name }, body: JSON.stringify({ events: ["INVOKE", "SHUTDOWN"] }) });
  const id = reg.headers.get("lambda-extension-identifier");
  console.log(name + " registered " + reg.status);
  const sub = await fetch(api + "/2022-07-01/telemetry", { method: "PUT", headers: { "Lambda-Extension-Identifier": id },
    body: JSON.stringify({ schemaVersion: "2022-12-13", types: ["platform"], buffering: { timeoutMs: 25 },
      destination: { protocol: "HTTP", URI: "http://sandbox.localdomain:4250/" } }) });
  console.log(name + " subscribed " + sub.status);
  for (;;) {
    const r = await fetch(api + "/2020-01-01/extension/event/next", { headers: { "Lambda-Extension-Identifier": id } });
    const ev = await r.json();
    if (ev.eventType === "SHUTDOWN") {
      console.log(name + " SHUTDOWN " + ev.shutdownReason + " saw " + [...seen].sort().join(","));
      process.exit(0);
    }
    console.log(name + " INVOKE " + ev.requestId);
  }
}
`

// zipOf is a zip of the files given (mode 0644), in name order.
func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	return zipModes(t, files, nil)
}

// zipModes is zipOf with the files named in exec executable (0755).
func zipModes(t *testing.T, files map[string]string, exec map[string]bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate}
		h.SetMode(0o644)
		if exec[n] {
			h.SetMode(0o755)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(files[n]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
