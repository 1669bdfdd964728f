package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
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
)

// functionImage is an image of the test function: /app/bootstrap as its ENTRYPOINT, /app its
// WORKDIR, a greeting file and a variable of the image's own.
func functionImage(t *testing.T, greeting string) v1.Image {
	t.Helper()
	bootstrap, err := os.ReadFile(filepath.Join(fnDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	layer := tarLayer(t, map[string][]byte{"app/bootstrap": bootstrap, "app/greeting": []byte(greeting)}, map[string]bool{"app/bootstrap": true}, nil)
	return imageOf(t, []v1.Layer{layer}, v1.Config{Entrypoint: []string{"/app/bootstrap"}, Env: []string{"GREETING=from-image"}, WorkingDir: "/app"})
}

// TestImageFunctions: with the AWS SDK, a PackageType Image function is created from an image in
// a registry (go-containerregistry's, on loopback), runs on its image's root, is described as
// Lambda describes it, and a published version keeps running its pinned image after the tag
// moves and $LATEST is updated. An image that does not exist is refused at deploy.
func TestImageFunctions(t *testing.T) {
	needRoot(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push := func(img v1.Image) string {
		ref, err := name.ParseReference(host + "/team/fn:live")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	a := startAgent(t, agentOptions{node: "images"})
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	invoke := func(qualifier, payload string) map[string]any {
		t.Helper()
		in := &awslambda.InvokeInput{FunctionName: aws.String("img"), Payload: []byte(payload)}
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		out, err := client.Invoke(ctx, in)
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoke %s: %v %s", payload, err, out.Payload)
		}
		var v map[string]any
		if err := json.Unmarshal(out.Payload, &v); err != nil {
			t.Fatalf("%s: %v", out.Payload, err)
		}
		return v
	}

	first := push(functionImage(t, "v1"))
	out, err := client.CreateFunction(ctx, &awslambda.CreateFunctionInput{
		FunctionName: aws.String("img"), Role: aws.String(apiRole), PackageType: types.PackageTypeImage,
		Code:        &types.FunctionCode{ImageUri: aws.String(host + "/team/fn:live")},
		Environment: &types.Environment{Variables: map[string]string{"OWN": "fn"}},
		MemorySize:  aws.Int32(128), Timeout: aws.Int32(10),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.PackageType != types.PackageTypeImage || out.Runtime != "" || aws.ToString(out.CodeSha256) != strings.TrimPrefix(first, "sha256:") {
		t.Fatalf("CreateFunction answered %+v", out)
	}
	if got := invoke("", `{"mode":"readfile","path":"greeting"}`); got["content"] != "v1" {
		t.Fatalf("the image's greeting, read from its working folder: %v", got)
	}
	env := invoke("", `{"mode":"env"}`)
	if env["GREETING"] != "from-image" || env["OWN"] != "fn" || env["AWS_LAMBDA_FUNCTION_NAME"] != "img" {
		t.Fatalf("environment %v", env)
	}
	got, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("img")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Code.RepositoryType) != "ECR" || aws.ToString(got.Code.ImageUri) != host+"/team/fn:live" ||
		aws.ToString(got.Code.ResolvedImageUri) != host+"/team/fn@"+first {
		t.Fatalf("GetFunction's Code: %+v", got.Code)
	}

	// The agent's main thread stays in the host's mount namespace (sandbox/libcontainer keeps
	// libcontainer's namespace-joining goroutines off it), so no environment's mounts outlive it.
	agentNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", a.cmd.Process.Pid))
	ownNS, _ := os.Readlink("/proc/self/ns/mnt")
	if err != nil || agentNS != ownNS {
		t.Fatalf("the agent's main thread is in mount namespace %s (%v), not the host's %s", agentNS, err, ownNS)
	}

	v1out, err := client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("img")})
	if err != nil {
		t.Fatal(err)
	}
	// The tag moves; $LATEST follows it when its code is updated, version 1 does not.
	second := push(functionImage(t, "v2"))
	if _, err := client.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("img"), ImageUri: aws.String(host + "/team/fn:live")}); err != nil {
		t.Fatal(err)
	}
	if got := invoke("", `{"mode":"readfile","path":"greeting"}`); got["content"] != "v2" {
		t.Fatalf("$LATEST after the update: %v", got)
	}
	if got := invoke(aws.ToString(v1out.Version), `{"mode":"readfile","path":"greeting"}`); got["content"] != "v1" {
		t.Fatalf("version 1 after the tag moved: %v", got)
	}
	got, err = client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("img")})
	if err != nil || aws.ToString(got.Code.ResolvedImageUri) != host+"/team/fn@"+second {
		t.Fatalf("$LATEST resolves to %+v (%v), want %s", got.Code, err, second)
	}

	_, err = client.CreateFunction(ctx, &awslambda.CreateFunctionInput{
		FunctionName: aws.String("nothing"), Role: aws.String(apiRole), PackageType: types.PackageTypeImage,
		Code: &types.FunctionCode{ImageUri: aws.String(host + "/team/nothing:1")},
	})
	if !isError[*types.InvalidParameterValueException](err) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("an image that does not exist: %T %v", err, err)
	}
	if _, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("nothing")}); !isError[*types.ResourceNotFoundException](err) {
		t.Fatalf("a refused image function was created: %v", err)
	}
}

// TestImageFunctionApply: an image function declared in HCL is created by `gateway apply` from
// a registry's image, runs with its image_config, and a second plan finds nothing to do; a new
// image_uri is applied as a code update.
func TestImageFunctionApply(t *testing.T) {
	needRoot(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for tag, greeting := range map[string]string{"1": "v1", "2": "v2"} {
		ref, _ := name.ParseReference(host + "/team/fn:" + tag)
		if err := remote.Write(ref, functionImage(t, greeting)); err != nil {
			t.Fatal(err)
		}
	}
	a := startAgent(t, agentOptions{node: "imageapply", top: "code_gc {\n  grace    = \"2s\"\n  interval = \"1s\"\n}\n"})
	hcl := func(tag string) string {
		return `function "img" {
  package_type = "Image"
  image_uri    = "` + host + `/team/fn:` + tag + `"
  image_config {
    working_directory = "/"
  }
  timeout = "10s"
}
`
	}
	a.apply(hcl("1"))
	if r := a.invoke("img", `{"mode":"readfile","path":"app/greeting"}`, nil); !strings.Contains(string(r.body), `"content":"v1"`) {
		t.Fatalf("invoking the applied image function (working directory / from image_config): %d %s", r.status, r.body)
	}
	if out, errOut, code := a.cli("plan", writeFunctions(t, hcl("1"))); code != 0 {
		t.Fatalf("a plan after apply exited %d:\n%s\n%s", code, out, errOut)
	}
	out, _, code := a.cli("plan", writeFunctions(t, hcl("2")))
	if code != 2 || !strings.Contains(out, "image to update") {
		t.Fatalf("a plan with a new image_uri exited %d:\n%s", code, out)
	}
	a.apply(hcl("2"))
	if r := a.invoke("img", `{"mode":"readfile","path":"app/greeting"}`, nil); !strings.Contains(string(r.body), `"content":"v2"`) {
		t.Fatalf("after applying the new image: %d %s", r.status, r.body)
	}
	// The first image, which no function runs any more, is removed after code_gc's grace,
	// layers and all; the one in use stays.
	images := func() []string {
		ents, _ := os.ReadDir(filepath.Join(a.dataDir, "images", "images", "sha256"))
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	layers := func() []string {
		l, _ := filepath.Glob(filepath.Join(a.dataDir, "images", "layers", "sha256", "*.size"))
		return l
	}
	// One collection removes the image's record, then its layers: wait for both.
	for deadline := time.Now().Add(15 * time.Second); len(images()) != 1 || len(layers()) != 1; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after the grace: images %v, layers %v; want the one image in use and its layer", images(), layers())
		}
	}
	if r := a.invoke("img", `{"mode":"readfile","path":"app/greeting"}`, nil); !strings.Contains(string(r.body), `"content":"v2"`) {
		t.Fatalf("after the collection: %d %s", r.status, r.body)
	}
}

// TestManagedRuntime: an agent file's runtime block makes a managed runtime of an image (here an
// OCI layout on disk holding the test function as /var/runtime/bootstrap); a zip function created
// on it through the SDK runs on that image with its code at /var/task and its handler given to the
// runtime, and a runtime the agent does not declare is refused, naming those it does.
func TestManagedRuntime(t *testing.T) {
	needRoot(t)
	bootstrap, err := os.ReadFile(filepath.Join(fnDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	layer := tarLayer(t, map[string][]byte{"var/runtime/bootstrap": bootstrap, "etc/runtime-release": []byte("gotest 1")},
		map[string]bool{"var/runtime/bootstrap": true}, nil)
	img := imageOf(t, []v1.Layer{layer}, v1.Config{Entrypoint: []string{"/var/runtime/bootstrap"}, Env: []string{"RUNTIME_HOME=/var/runtime"}})
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, agentOptions{node: "runtimes", top: "runtime \"gotest1.x\" {\n  image = \"oci-layout:" + dir + ":1\"\n}\n"})
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	in := createFunctionInput("onrt", codeZip(t, map[string]string{"data.txt": "the code"}), nil)
	in.Runtime, in.Handler = types.Runtime("gotest1.x"), aws.String("app.handler")
	if _, err := client.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	call := func(payload string) map[string]any {
		t.Helper()
		// The runtime's image is pulled as the agent starts; the first call may come first.
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("onrt"), Payload: []byte(payload)})
			if err == nil && out.FunctionError == nil {
				var v map[string]any
				if err := json.Unmarshal(out.Payload, &v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("invoking a function on the managed runtime: %v %+v", err, out)
			}
		}
	}
	if got := call(`{"mode":"readfile","path":"/etc/runtime-release"}`); got["content"] != "gotest 1" {
		t.Fatalf("the runtime's image: %v", got)
	}
	if got := call(`{"mode":"readfile","path":"data.txt"}`); got["content"] != "the code" {
		t.Fatalf("the code at /var/task: %v", got)
	}
	if env := call(`{"mode":"env"}`); env["_HANDLER"] != "app.handler" || env["RUNTIME_HOME"] != "/var/runtime" {
		t.Fatalf("environment %v", env)
	}
	out, errOut, code := a.cli("runtimes")
	if code != 0 || !strings.Contains(out, "gotest1.x") || !strings.Contains(out, "yes") || !strings.Contains(out, "@sha256:") {
		t.Fatalf("gateway runtimes exited %d:\n%s\n%s", code, out, errOut)
	}
	bad := createFunctionInput("elsewhere", codeZip(t, nil), nil)
	bad.Runtime = types.Runtime("nodejs99.x")
	_, err = client.CreateFunction(ctx, bad)
	if !isError[*types.InvalidParameterValueException](err) || !strings.Contains(err.Error(), "gotest1.x") {
		t.Fatalf("an undeclared runtime: %v", err)
	}
}
