package main

import (
	"encoding/json"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/reconcile"
)

// fnAgent serves what apply and plan read and write of one function "fn": nil conf is a
// function that does not exist yet. Lists answer empty.
type fnAgent struct {
	mu       sync.Mutex
	conf     *lambda.FunctionConfiguration
	received int64 // bytes of the last create or code update request
	updates  []lambda.UpdateFunctionConfigurationInput
}

func (g *fnAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == "GET" && r.URL.Path == "/2015-03-31/functions/fn":
		if g.conf == nil {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"Message":"Function not found: fn"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(lambda.GetFunctionOutput{Configuration: *g.conf})
	case r.Method == "HEAD" && strings.HasPrefix(r.URL.Path, "/v1/code/"):
		w.WriteHeader(404)
	case r.Method == "POST" && r.URL.Path == "/2015-03-31/functions":
		g.received = int64(len(body))
		var in lambda.CreateFunctionInput
		_ = json.Unmarshal(body, &in)
		g.conf = &lambda.FunctionConfiguration{FunctionName: in.FunctionName}
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(g.conf)
	case r.Method == "PUT" && r.URL.Path == "/2015-03-31/functions/fn/configuration":
		var in lambda.UpdateFunctionConfigurationInput
		_ = json.Unmarshal(body, &in)
		g.updates = append(g.updates, in)
		_ = json.NewEncoder(w).Encode(g.conf)
	case r.Method == "GET":
		_, _ = w.Write([]byte(`{}`))
	default:
		w.Header().Set("X-Amzn-ErrorType", "UnknownOperationException")
		w.WriteHeader(404)
	}
}

// TestApplyProgressSizes: while uploading a large zip, apply's progress lines and its final
// line name the same zip size, and say the request (base64) is the other number.
func TestApplyProgressSizes(t *testing.T) {
	dir := t.TempDir()
	code := filepath.Join(dir, "build")
	_ = os.MkdirAll(code, 0o755)
	noise := make([]byte, 3<<20) // incompressible: the zip is about 3 MB, its base64 about 4 MB
	rand.New(rand.NewSource(1)).Read(noise)
	_ = os.WriteFile(filepath.Join(code, "bootstrap"), noise, 0o755)
	_ = os.WriteFile(filepath.Join(dir, "f.hcl"), []byte("function \"fn\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n}\n"), 0o644)
	pkg, err := codepkg.Build(code)
	if err != nil {
		t.Fatal(err)
	}
	agent := &fnAgent{}
	srv := httptest.NewServer(agent)
	t.Cleanup(srv.Close)

	exit, out, errs := runCLI(t, "apply", "-address", srv.URL, filepath.Join(dir, "f.hcl"))
	if exit != 0 {
		t.Fatalf("exit %d:\n%s\n%s", exit, out, errs)
	}
	zip, request := reconcile.Size(pkg.Size), reconcile.Size(agent.received)
	if zip == request {
		t.Fatalf("the zip (%s) and the request (%s) should differ in size", zip, request)
	}
	progress := regexp.MustCompile(`(?m)^fn: uploading code: (\S+ [KM]?B) of the (\S+ [KM]?B) request sent \(the (\S+ [KM]?B) zip, base64-encoded\)$`)
	lines := progress.FindAllStringSubmatch(out, -1)
	if len(lines) < 2 {
		t.Fatalf("want progress lines, got:\n%s", out)
	}
	for _, m := range lines {
		if m[2] != request || m[3] != zip {
			t.Errorf("progress %q: want the %s request and the %s zip", m[0], request, zip)
		}
	}
	if last := lines[len(lines)-1]; last[1] != request {
		t.Errorf("the last progress line %q does not reach %s", last[0], request)
	}
	if want := "fn: created (code: " + zip + " zip uploaded)\n"; !strings.Contains(out, want) {
		t.Errorf("want %q in:\n%s", want, out)
	}
}

// TestPlanHidesEnvironmentValues: plan names the environment variables that change, not their
// values, and says how to see them; -show-sensitive shows them. apply sends the values.
func TestPlanHidesEnvironmentValues(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "build", "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	p := filepath.Join(dir, "f.hcl")
	_ = os.WriteFile(p, []byte("function \"fn\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n"+
		"  environment = {\n    TOKEN = \"new-secret\"\n    ADDED = \"plain\"\n  }\n}\n"), 0o644)
	pkg, err := codepkg.Build(filepath.Join(dir, "build"))
	if err != nil {
		t.Fatal(err)
	}
	conf := current()
	conf.FunctionName, conf.Handler, conf.Description, conf.CodeSha256, conf.GatewayOptions = "fn", "", "", pkg.Base64Sha256(), nil
	conf.Environment = &lambda.Environment{Variables: map[string]string{"TOKEN": "old-secret", "GONE": "bye"}}
	agent := &fnAgent{conf: &conf}
	srv := httptest.NewServer(agent)
	t.Cleanup(srv.Close)

	exit, out, errs := runCLI(t, "plan", "-address", srv.URL, p)
	if exit != 2 || !strings.Contains(out, "environment: + ADDED, - GONE, ~ TOKEN (values hidden; -show-sensitive shows them)") {
		t.Fatalf("plan: exit %d:\n%s\n%s", exit, out, errs)
	}
	for _, secret := range []string{"old-secret", "new-secret", "bye", "plain"} {
		if strings.Contains(out, secret) {
			t.Errorf("plan shows %q:\n%s", secret, out)
		}
	}
	exit, out, _ = runCLI(t, "plan", "-show-sensitive", "-address", srv.URL, p)
	if want := `environment: + ADDED = "plain", - GONE = "bye", ~ TOKEN = "old-secret" -> "new-secret")`; exit != 2 || !strings.Contains(out, want) {
		t.Fatalf("plan -show-sensitive: exit %d, want %q in:\n%s", exit, want, out)
	}
	if len(agent.updates) != 0 {
		t.Fatalf("plan changed the function: %+v", agent.updates)
	}
	if exit, out, errs = runCLI(t, "apply", "-address", srv.URL, p); exit != 0 || strings.Contains(out, "new-secret") ||
		len(agent.updates) != 1 || agent.updates[0].Environment.Variables["TOKEN"] != "new-secret" {
		t.Fatalf("apply: exit %d, updates %+v:\n%s\n%s", exit, agent.updates, out, errs)
	}
}

// TestPlanAndApplyPrune: the CLI's lines for a function to create and one to prune (and a code
// signing configuration a file made, not one made through the API), its summaries and exit
// codes; a deletion that fails is reported on stderr and fails apply.
func TestPlanAndApplyPrune(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	_ = os.WriteFile(filepath.Join(dir, "build", "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
	p := filepath.Join(dir, "f.hcl")
	_ = os.WriteFile(p, []byte("function \"fn\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n}\n"), 0o644)
	pkg, err := codepkg.Build(filepath.Join(dir, "build"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /2015-03-31/functions/":
			_, _ = w.Write([]byte(`{"Functions":[{"FunctionName":"fn"},{"FunctionName":"old"}]}`))
		case "GET /2015-03-31/functions/fn":
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(404)
		case "POST /2015-03-31/functions":
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{}`))
		case "GET /2020-04-22/code-signing-configs/":
			_, _ = w.Write([]byte(`{"CodeSigningConfigs":[{"CodeSigningConfigId":"csc-0123456789abcdef0","GatewayName":"gone"},{"CodeSigningConfigId":"csc-0123456789abcdef1"}]}`))
		case "DELETE /2020-04-22/code-signing-configs/csc-0123456789abcdef0":
			w.WriteHeader(204)
		case "DELETE /2015-03-31/functions/old":
			w.Header().Set("X-Amzn-ErrorType", "ResourceConflictException")
			w.WriteHeader(409)
			_, _ = w.Write([]byte(`{"Message":"busy"}`))
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(srv.Close)
	zip := reconcile.Size(pkg.Size)

	exit, out, errs := runCLI(t, "plan", "-prune", "-address", srv.URL, p)
	want := "fn: to create (" + zip + " zip to upload)\nold: to delete (no file declares it)\ncode_signing_config gone: to delete (no file declares it)\n" +
		"Plan: 1 to change, 0 unchanged, 2 to delete, 0 failed.\n"
	if exit != 2 || out != want || errs != "" {
		t.Errorf("plan: exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", exit, out, want, errs)
	}
	exit, out, errs = runCLI(t, "apply", "-prune", "-address", srv.URL, p)
	want = "fn: created (code: " + zip + " zip uploaded)\ncode_signing_config gone: deleted (no file declares it)\nApply complete: 1 changed, 0 unchanged, 1 deleted, 1 failed.\n"
	if exit != 1 || out != want || errs != "old: deleting: ResourceConflictException: busy\n" {
		t.Errorf("apply: exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", exit, out, want, errs)
	}
}
