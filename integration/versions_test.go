package integration

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestVersionsWithTheAWSSDK: a published version keeps the code and configuration it was
// published with while $LATEST moves on, and is invoked by its number.
func TestVersionsWithTheAWSSDK(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "versions"})
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, functionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	client := a.sdk()
	env := func(qualifier string) (string, string) {
		t.Helper()
		in := &awslambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"mode":"env"}`)}
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		out, err := client.Invoke(ctx, in)
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoking fn:%s: %v %s", qualifier, err, out.Payload)
		}
		return string(out.Payload), aws.ToString(out.ExecutedVersion)
	}

	v1, err := client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("fn"), Description: aws.String("first")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v1.Version) != "1" || !strings.HasSuffix(aws.ToString(v1.FunctionArn), ":function:fn:1") || aws.ToString(v1.Description) != "first" {
		t.Fatalf("published: version %q arn %q description %q", aws.ToString(v1.Version), aws.ToString(v1.FunctionArn), aws.ToString(v1.Description))
	}
	// Unchanged $LATEST: publishing again returns version 1.
	if again, err := client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("fn")}); err != nil || aws.ToString(again.Version) != "1" {
		t.Fatalf("republishing an unchanged function: %v %v", err, again)
	}

	// $LATEST moves on; version 1 keeps GREETING=hi.
	_, err = client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
		Environment: &types.Environment{Variables: map[string]string{"GREETING": "changed"}}})
	if err != nil {
		t.Fatal(err)
	}
	if payload, executed := env("1"); !strings.Contains(payload, `"GREETING":"hi"`) || executed != "1" || !strings.Contains(payload, `"AWS_LAMBDA_FUNCTION_VERSION":"1"`) {
		t.Errorf("version 1 (executed %q): %s", executed, payload)
	}
	if payload, executed := env(""); !strings.Contains(payload, `"GREETING":"changed"`) || executed != "$LATEST" {
		t.Errorf("$LATEST (executed %q): %s", executed, payload)
	}
	if payload, _ := env("$LATEST"); !strings.Contains(payload, `"GREETING":"changed"`) {
		t.Errorf("$LATEST by name: %s", payload)
	}

	// A stale RevisionId is refused; the current one publishes version 2.
	_, err = client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("fn"), RevisionId: v1.RevisionId})
	var pf *types.PreconditionFailedException
	if !errors.As(err, &pf) {
		t.Errorf("publishing with a stale revision: %T %v", err, err)
	}
	v2, err := client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("fn")})
	if err != nil || aws.ToString(v2.Version) != "2" || v2.Environment.Variables["GREETING"] != "changed" {
		t.Fatalf("second version: %v %+v", err, v2)
	}

	list, err := client.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range list.Versions {
		got = append(got, aws.ToString(v.Version))
	}
	if strings.Join(got, ",") != "$LATEST,1,2" {
		t.Errorf("versions %v, want $LATEST,1,2", got)
	}
	page, err := client.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: aws.String("fn"), MaxItems: aws.Int32(2)})
	if err != nil || len(page.Versions) != 2 || page.NextMarker == nil {
		t.Fatalf("first page: %v %+v", err, page)
	}
	rest, err := client.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: aws.String("fn"), Marker: page.NextMarker})
	if err != nil || len(rest.Versions) != 1 || aws.ToString(rest.Versions[0].Version) != "2" || rest.NextMarker != nil {
		t.Fatalf("second page: %v %+v", err, rest)
	}

	cfg, err := client.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn"), Qualifier: aws.String("1")})
	if err != nil || aws.ToString(cfg.Version) != "1" || cfg.Environment.Variables["GREETING"] != "hi" {
		t.Errorf("configuration of version 1: %v %+v", err, cfg)
	}
	_, err = client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn"), Qualifier: aws.String("9")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("invoking a version that does not exist: %T %v", err, err)
	}

	// Versions survive a restart (Raft log and snapshot).
	a.stop()
	a.start()
	if payload, executed := env("1"); !strings.Contains(payload, `"GREETING":"hi"`) || executed != "1" {
		t.Errorf("version 1 after a restart (executed %q): %s", executed, payload)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestAliasesWithTheAWSSDK: an alias routes its invocations between two versions by weight,
// reports the version that ran, can have a function URL, and moves without a redeploy.
func TestAliasesWithTheAWSSDK(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "aliases"})
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, functionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	client := a.sdk()
	publish := func(greeting string) string {
		t.Helper()
		if _, err := client.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
			Environment: &types.Environment{Variables: map[string]string{"GREETING": greeting}}}); err != nil {
			t.Fatal(err)
		}
		v, err := client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("fn")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(v.Version)
	}
	v1, v2 := publish("one"), publish("two")

	live, err := client.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"), FunctionVersion: aws.String(v1),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v2: 0.1}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(aws.ToString(live.AliasArn), ":function:fn:live") || aws.ToString(live.FunctionVersion) != v1 {
		t.Fatalf("alias: %+v", live)
	}
	for name, in := range map[string]*awslambda.CreateAliasInput{
		"a numeric name":    {FunctionName: aws.String("fn"), Name: aws.String("12"), FunctionVersion: aws.String(v1)},
		"a missing version": {FunctionName: aws.String("fn"), Name: aws.String("x"), FunctionVersion: aws.String("99")},
		"a weight of 1":     {FunctionName: aws.String("fn"), Name: aws.String("x"), FunctionVersion: aws.String(v1), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v2: 1}}},
	} {
		if _, err := client.CreateAlias(ctx, in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := client.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"), FunctionVersion: aws.String(v1)}); !errors.As(err, new(*types.ResourceConflictException)) {
		t.Errorf("creating it twice: %T %v", err, err)
	}

	// 2,000 calls: version 2 runs 10% of them, and each reports the version that ran.
	const calls = 2000
	counts := map[string]int{}
	for i := 0; i < calls; i++ {
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn:live"), Payload: []byte(`{"mode":"env"}`)})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoking fn:live: %v", err)
		}
		executed := aws.ToString(out.ExecutedVersion)
		want := map[string]string{v1: `"GREETING":"one"`, v2: `"GREETING":"two"`}[executed]
		if want == "" || !strings.Contains(string(out.Payload), want) {
			t.Fatalf("executed version %q ran with %s", executed, out.Payload)
		}
		counts[executed]++
	}
	if share := float64(counts[v2]) / calls; share < 0.08 || share > 0.12 {
		t.Errorf("version %s ran %d of %d calls (%.1f%%), want 10%% within 2 points", v2, counts[v2], calls, 100*share)
	}

	// A function URL of the alias follows it when it moves.
	if _, err := client.CreateFunctionUrlConfig(ctx, &awslambda.CreateFunctionUrlConfigInput{FunctionName: aws.String("fn"), Qualifier: aws.String("live"), AuthType: types.FunctionUrlAuthTypeNone}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateAlias(ctx, &awslambda.UpdateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"), FunctionVersion: aws.String(v2),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}}}); err != nil {
		t.Fatal(err)
	}
	if c := getURL(t, a.addr+"/fn/fn--live/?mode=env"); c.status != 200 || !strings.Contains(string(c.body), `"GREETING":"two"`) {
		t.Errorf("the alias's URL after moving it to version %s: %d %s", v2, c.status, c.body)
	}
	got, err := client.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live")})
	if err != nil || aws.ToString(got.FunctionVersion) != v2 || got.RoutingConfig != nil {
		t.Errorf("GetAlias after the update: %v %+v", err, got)
	}
	list, err := client.ListAliases(ctx, &awslambda.ListAliasesInput{FunctionName: aws.String("fn")})
	if err != nil || len(list.Aliases) != 1 {
		t.Errorf("ListAliases: %v %+v", err, list)
	}
	if _, err := client.DeleteAlias(ctx, &awslambda.DeleteAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if c := getURL(t, a.addr+"/fn/fn--live/"); c.status != 404 {
		t.Errorf("the URL of a deleted alias answered %d", c.status)
	}
	if _, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn:live")}); !errors.As(err, new(*types.ResourceNotFoundException)) {
		t.Errorf("invoking a deleted alias: %T %v", err, err)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestApplyPublishesAndAliases: publish = true and alias blocks, applied from HCL.
func TestApplyPublishesAndAliases(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "apply-versions"})
	hcl := func(greeting, alias string) string {
		return fmt.Sprintf(`
function "pub" {
  runtime     = "provided.al2023"
  code        = %q
  publish     = true
  reserved_concurrency = 3
  environment = { GREETING = %q }
  %s
  url {
    auth_type = "NONE"
    qualifier = "live"
  }
}
`, fnDir, greeting, alias)
	}
	apply := func(src string) string {
		t.Helper()
		out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, src))
		if code != 0 {
			t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
		}
		return out
	}
	plan := func(src string) (string, int) {
		t.Helper()
		out, errOut, code := a.cli("plan", "-address", a.addr, writeFunctions(t, src))
		if code == 1 {
			t.Fatalf("plan failed:\n%s\n%s", out, errOut)
		}
		return out, code
	}
	if out, code := plan(hcl("one", `alias "live" { version = 1 }`)); code != 2 || !strings.Contains(out, "pub: to create") ||
		!strings.Contains(out, "version 1 to publish") || !strings.Contains(out, "alias live to create (-> 1)") || !strings.Contains(out, "URL to create") {
		t.Errorf("plan before the first apply exited %d:\n%s", code, out)
	}
	out := apply(hcl("one", `alias "live" { version = 1 }`))
	if !strings.Contains(out, "version 1 published") || !strings.Contains(out, "alias live created") || !strings.Contains(out, "pub--live") ||
		!strings.Contains(out, "reserved_concurrency none -> 3") {
		t.Errorf("first apply:\n%s", out)
	}
	if out := apply(hcl("one", `alias "live" { version = 1 }`)); !strings.Contains(out, "unchanged") || strings.Contains(out, "published") {
		t.Errorf("re-applying the same file:\n%s", out)
	}
	if out, code := plan(hcl("one", `alias "live" { version = 1 }`)); code != 0 || !strings.Contains(out, "pub: unchanged") {
		t.Errorf("plan of the applied file exited %d:\n%s", code, out)
	}
	second := hcl("two", `alias "live" {
    version = 1
    routing = { "2" = 0.5 }
  }`)
	for i := 0; i < 2; i++ { // planning twice: the first plan changed nothing
		out, code := plan(second)
		if code != 2 || !strings.Contains(out, "configuration to update (environment") || !strings.Contains(out, "a new version to publish") ||
			!strings.Contains(out, "alias live to update (1 -> 1 + 50% to 2)") {
			t.Errorf("plan of the second file exited %d:\n%s", code, out)
		}
	}
	out = apply(second)
	if !strings.Contains(out, "version 2 published") || !strings.Contains(out, "alias live updated (1 -> 1 + 50% to 2)") {
		t.Errorf("second apply:\n%s", out)
	}
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		c := getURL(t, a.addr+"/fn/pub--live/?mode=env")
		if c.status != 200 {
			t.Fatalf("the alias's URL: %d %s", c.status, c.body)
		}
		for _, g := range []string{"one", "two"} {
			if strings.Contains(string(c.body), `"GREETING":"`+g+`"`) {
				seen[g] = true
			}
		}
	}
	if !seen["one"] || !seen["two"] {
		t.Errorf("four calls of a 50%% split reached %v", seen)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestReservedConcurrencyWithTheAWSSDK: a burst of 50 parallel calls never runs more than the
// reservation at once (measured inside the function); the rest are throttled at once with
// Lambda's reason, and removing the reservation lifts it.
func TestReservedConcurrencyWithTheAWSSDK(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "reserved"})
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, functionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	const limit = 4
	if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("small"), ReservedConcurrentExecutions: aws.Int32(limit)}); err != nil {
		t.Fatal(err)
	}
	got, err := client.GetFunctionConcurrency(ctx, &awslambda.GetFunctionConcurrencyInput{FunctionName: aws.String("small")})
	if err != nil || aws.ToInt32(got.ReservedConcurrentExecutions) != limit {
		t.Fatalf("GetFunctionConcurrency: %v %+v", err, got)
	}

	var (
		mu        sync.Mutex
		spans     []span
		throttled int
		wg        sync.WaitGroup
	)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("small"), Payload: []byte(`{"mode":"sleep","ms":500}`)})
			mu.Lock()
			defer mu.Unlock()
			var tm *types.TooManyRequestsException
			switch {
			case errors.As(err, &tm):
				if tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
					t.Errorf("throttle reason %q", tm.Reason)
				}
				throttled++
			case err != nil:
				t.Errorf("invoke: %v", err)
			default:
				var s struct{ Start, End int64 }
				if json.Unmarshal(out.Payload, &s) != nil || s.Start == 0 {
					t.Errorf("payload %s", out.Payload)
					return
				}
				spans = append(spans, span{s.Start, s.End})
			}
		}()
	}
	wg.Wait()
	most := mostAtOnce(spans)
	if most > limit || len(spans) < limit || throttled == 0 || len(spans)+throttled != 50 {
		t.Errorf("%d ran (at most %d at once, limit %d), %d throttled", len(spans), most, limit, throttled)
	}

	if _, err := client.DeleteFunctionConcurrency(ctx, &awslambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("small")}); err != nil {
		t.Fatal(err)
	}
	if got, err := client.GetFunctionConcurrency(ctx, &awslambda.GetFunctionConcurrencyInput{FunctionName: aws.String("small")}); err != nil || got.ReservedConcurrentExecutions != nil {
		t.Errorf("after DeleteFunctionConcurrency: %v %+v", err, got)
	}
	zero := int32(0)
	if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("small"), ReservedConcurrentExecutions: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("small")}); !errors.As(err, new(*types.TooManyRequestsException)) {
		t.Errorf("a function reserved to 0 ran: %v", err)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestNodeConcurrencyLimit: max_concurrency caps what unreserved functions run at once, and a
// reservation is carved out of it.
func TestNodeConcurrencyLimit(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "maxconc", extra: "max_concurrency = 4"})
	if out, errOut, code := a.cli("apply", "-address", a.addr, writeFunctions(t, functionsHCL())); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	ctx := context.Background()
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	// small reserves 1 of the 4: the other functions share 3.
	if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("small"), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("roomy"), ReservedConcurrentExecutions: aws.Int32(4)}); err == nil {
		t.Error("reserving more than max_concurrency leaves was accepted")
	}
	var (
		mu                sync.Mutex
		ran, throttled    int
		wrongReason, errs []string
		spans             []span
		wg                sync.WaitGroup
	)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		fn := []string{"fn", "roomy"}[i%2]
		go func() {
			defer wg.Done()
			out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"mode":"sleep","ms":700}`)})
			mu.Lock()
			defer mu.Unlock()
			var tm *types.TooManyRequestsException
			switch {
			case errors.As(err, &tm):
				throttled++
				if tm.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded {
					wrongReason = append(wrongReason, string(tm.Reason))
				}
			case err != nil:
				errs = append(errs, err.Error())
			default:
				ran++
				var sp struct{ Start, End int64 }
				_ = json.Unmarshal(out.Payload, &sp)
				spans = append(spans, span{sp.Start, sp.End})
			}
		}()
	}
	wg.Wait()
	most := mostAtOnce(spans)
	if len(errs) > 0 || len(wrongReason) > 0 || most > 3 || ran == 0 || throttled == 0 || ran+throttled != 12 {
		t.Errorf("%d ran (%d at once, at most 3 may), %d throttled; reasons %v; errors %v", ran, most, throttled, wrongReason, errs)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestApplyPrune: a function no file declares stays unless apply is given -prune.
func TestApplyPrune(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "prune"})
	both := writeFunctions(t, functionsHCL())
	onlyFn := writeFunctions(t, fmt.Sprintf("function \"fn\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  memory_mb = 128\n  timeout = \"2s\"\n  freeze_delay = \"0s\"\n  environment = { GREETING = \"hi\" }\n}\n", fnDir))
	if out, errOut, code := a.cli("apply", "-address", a.addr, both); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	if out, _, code := a.cli("apply", "-address", a.addr, onlyFn); code != 0 || strings.Contains(out, ": deleted") {
		t.Fatalf("apply without -prune exited %d:\n%s", code, out)
	}
	if out, _, code := a.cli("plan", "-address", a.addr, "-prune", onlyFn); code != 2 || !strings.Contains(out, "small: to delete") || !strings.Contains(out, "fn: unchanged") {
		t.Errorf("plan -prune exited %d:\n%s", code, out)
	}
	if r := a.invoke("small", `{}`, nil); r.status != 200 {
		t.Fatalf("small after plan -prune: %d %s", r.status, r.body)
	}
	out, _, code := a.cli("apply", "-address", a.addr, "-prune", onlyFn)
	if code != 0 || !strings.Contains(out, "small: deleted") || !strings.Contains(out, "3 deleted") {
		t.Errorf("apply -prune exited %d:\n%s", code, out)
	}
	if r := a.invoke("small", `{}`, nil); r.status != 404 {
		t.Errorf("small after apply -prune: %d", r.status)
	}
	if out, _, code := a.cli("plan", "-address", a.addr, "-prune", onlyFn); code != 0 {
		t.Errorf("plan -prune after pruning exited %d:\n%s", code, out)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// span is when an invocation ran, by the function's own clock (its "sleep" mode reports it).
type span struct{ start, end int64 }

// mostAtOnce is the most invocations running at one instant.
func mostAtOnce(spans []span) int {
	most := 0
	for _, s := range spans {
		n := 0
		for _, o := range spans {
			if o.start <= s.start && s.start < o.end {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// TestApplyUploadsSharedCodeOnce: functions on one code folder upload it once; the others refer
// to the zip the agent holds (GatewayCodeSha256), and a reference to code it lacks is refused.
func TestApplyUploadsSharedCodeOnce(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "sharedcode"})
	hcl := fmt.Sprintf(`
function "one" {
  runtime = "provided.al2023"
  code    = %[1]q
}
function "two" {
  runtime = "provided.al2023"
  code    = %[1]q
}
`, fnDir)
	out, errOut, code := a.cli("apply", writeFunctions(t, hcl))
	if code != 0 || strings.Count(out, "MB zip uploaded)") != 1 || strings.Count(out, "MB zip already on the agent)") != 1 {
		t.Fatalf("apply exited %d: want one upload and one reference:\n%s\n%s", code, out, errOut)
	}
	for _, name := range []string{"one", "two"} {
		if r := a.invoke(name, `{"name":"x"}`, nil); r.status != 200 || !strings.Contains(string(r.body), "Hello, x!") {
			t.Errorf("invoking %s: %d %s", name, r.status, r.body)
		}
	}
	ctx := context.Background()
	fn, err := a.sdk().GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("two")})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(fn.Configuration.CodeSha256))
	sha := hex.EncodeToString(raw)
	for path, want := range map[string]int{"/v1/code/" + sha: 200, "/v1/code/" + strings.Repeat("0", 64): 404} {
		req, _ := http.NewRequest("HEAD", a.addr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("HEAD %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	body := `{"FunctionName":"three","Runtime":"provided.al2023","Code":{"GatewayCodeSha256":"` + strings.Repeat("0", 64) + `"}}`
	resp, err := http.Post(a.addr+"/2015-03-31/functions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "holds no such code") {
		t.Errorf("a reference to code the agent lacks: %d %s", resp.StatusCode, b)
	}
}
