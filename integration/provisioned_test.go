package integration

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func provisionedHCL(count int) string {
	return fmt.Sprintf(`
function "pc" {
  runtime      = "provided.al2023"
  code         = %q
  memory_mb    = 128
  timeout      = "5s"
  freeze_delay = "0s"
  publish      = true
  alias "live" {
    version = 1
  }
  provisioned_concurrency {
    qualifier = "live"
    count     = %d
  }
}
`, fnDir, count)
}

// TestProvisionedConcurrency: apply initialises the provisioned environments before it
// returns; the first call finds one warm (no Init Duration, initialisation type
// provisioned-concurrency); they outlive the idle timeout, are replaced when they crash, follow
// changes of the configuration, and come back after a restart.
func TestProvisionedConcurrency(t *testing.T) {
	needRoot(t)
	dataDir := t.TempDir()
	a := startAgent(t, agentOptions{node: "prov", dataDir: dataDir, extra: `idle_timeout = "2s"`})
	ctx := context.Background()
	out, errOut, code := a.cli("apply", writeFunctions(t, provisionedHCL(2)))
	// Progress lines come as it works: the upload's bytes, then the wait for Init.
	if code != 0 || !strings.Contains(out, "provisioned_concurrency live none -> 2") || !strings.Contains(out, "provisioned environments ready") ||
		!regexp.MustCompile(`pc: uploading code: [0-9.]+ MB of the [0-9.]+ MB request sent \(the [0-9.]+ MB zip, base64-encoded\)\n`).MatchString(out) ||
		!strings.Contains(out, "pc: waiting for 2 provisioned environment(s) to finish Init") {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	client := a.sdk(func(o *awslambda.Options) { o.RetryMaxAttempts = 1 })
	provisioned := func() (n int) {
		for _, e := range a.environments() {
			if e.Provisioned {
				if e.Function != "pc" || e.Version != "1" {
					t.Errorf("a provisioned environment of %s:%s", e.Function, e.Version)
				}
				n++
			}
		}
		return n
	}
	waitProvisioned := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for provisioned() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d provisioned environments, want %d: %+v", provisioned(), want, a.environments())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Ready when apply returned, before any call.
	if n := provisioned(); n != 2 {
		t.Fatalf("after apply: %d provisioned environments, want 2: %+v", n, a.environments())
	}
	cfg, err := client.GetProvisionedConcurrencyConfig(ctx, &awslambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live")})
	if err != nil || cfg.Status != types.ProvisionedConcurrencyStatusEnumReady || aws.ToInt32(cfg.AvailableProvisionedConcurrentExecutions) != 2 ||
		aws.ToInt32(cfg.RequestedProvisionedConcurrentExecutions) != 2 || aws.ToInt32(cfg.AllocatedProvisionedConcurrentExecutions) != 2 || aws.ToString(cfg.LastModified) == "" {
		t.Fatalf("GetProvisionedConcurrencyConfig: %v %+v", err, cfg)
	}

	invoke := func(q string, payload string) (string, string) {
		t.Helper()
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("pc"), Qualifier: aws.String(q), Payload: []byte(payload), LogType: types.LogTypeTail})
		if err != nil {
			t.Fatalf("invoking pc:%s: %v", q, err)
		}
		tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
		return string(out.Payload), string(tail)
	}
	t.Run("FirstCallIsWarm", func(t *testing.T) {
		payload, tail := invoke("live", `{"mode":"env"}`)
		if !strings.Contains(payload, `"AWS_LAMBDA_INITIALIZATION_TYPE":"provisioned-concurrency"`) {
			t.Errorf("environment of a provisioned call: %s", payload)
		}
		if !strings.Contains(tail, "REPORT RequestId") || strings.Contains(tail, "Init Duration") {
			t.Errorf("the first call on a provisioned environment reports an Init:\n%s", tail)
		}
		// $LATEST has none: its first call is a cold start, on demand.
		payload, tail = invoke("$LATEST", `{"mode":"env"}`)
		if !strings.Contains(payload, `"AWS_LAMBDA_INITIALIZATION_TYPE":"on-demand"`) || !strings.Contains(tail, "Init Duration") {
			t.Errorf("an on-demand cold start: %s\n%s", payload, tail)
		}
	})

	t.Run("OutliveIdleTimeout", func(t *testing.T) {
		time.Sleep(4 * time.Second) // twice the idle timeout
		for _, e := range a.environments() {
			if e.Function == "pc" && e.Version == "$LATEST" {
				t.Errorf("the on-demand environment outlived the idle timeout: %+v", e)
			}
		}
		if n := provisioned(); n != 2 {
			t.Errorf("%d provisioned environments after the idle timeout, want 2", n)
		}
	})

	t.Run("CrashIsReplaced", func(t *testing.T) {
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live"), Payload: []byte(`{"mode":"crash"}`)})
		if err != nil || aws.ToString(out.FunctionError) == "" {
			t.Fatalf("crash: %v %s", err, out.Payload)
		}
		waitProvisioned(2)
	})

	t.Run("API", func(t *testing.T) {
		_, err := client.PutProvisionedConcurrencyConfig(ctx, &awslambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"),
			Qualifier: aws.String("$LATEST"), ProvisionedConcurrentExecutions: aws.Int32(1)})
		var ipe *types.InvalidParameterValueException
		if !errors.As(err, &ipe) {
			t.Errorf("provisioning $LATEST: %v", err)
		}
		_, err = client.GetProvisionedConcurrencyConfig(ctx, &awslambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("1")})
		var nf *types.ProvisionedConcurrencyConfigNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("a version without a configuration: %v", err)
		}
		_, err = client.PutProvisionedConcurrencyConfig(ctx, &awslambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"),
			Qualifier: aws.String("nope"), ProvisionedConcurrentExecutions: aws.Int32(1)})
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Errorf("provisioning a missing alias: %v", err)
		}
		// Within the reservation only.
		if _, err := client.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("pc"), ReservedConcurrentExecutions: aws.Int32(2)}); err != nil {
			t.Fatal(err)
		}
		_, err = client.PutProvisionedConcurrencyConfig(ctx, &awslambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"),
			Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(1)})
		if !errors.As(err, &ipe) {
			t.Errorf("provisioning beyond the reservation: %v", err)
		}
		if _, err := client.DeleteFunctionConcurrency(ctx, &awslambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("pc")}); err != nil {
			t.Fatal(err)
		}
		list, err := client.ListProvisionedConcurrencyConfigs(ctx, &awslambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("pc")})
		if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 || !strings.HasSuffix(aws.ToString(list.ProvisionedConcurrencyConfigs[0].FunctionArn), ":function:pc:live") {
			t.Fatalf("list: %v %+v", err, list)
		}
		// Down to 1: one environment is retired.
		put, err := client.PutProvisionedConcurrencyConfig(ctx, &awslambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"),
			Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(1)})
		if err != nil || aws.ToInt32(put.RequestedProvisionedConcurrentExecutions) != 1 {
			t.Fatalf("put 1: %v %+v", err, put)
		}
		waitProvisioned(1)
	})

	t.Run("PlanAndApply", func(t *testing.T) {
		// The file says 2 again: plan shows it, apply restores it and waits.
		fnFile := writeFunctions(t, provisionedHCL(2))
		if out, _, code := a.cli("plan", fnFile); code != 2 || !strings.Contains(out, "provisioned_concurrency live 1 -> 2") {
			t.Errorf("plan exited %d:\n%s", code, out)
		}
		if out, errOut, code := a.cli("apply", fnFile); code != 0 || !strings.Contains(out, "provisioned environments ready") {
			t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
		}
		if n := provisioned(); n != 2 {
			t.Errorf("%d provisioned environments after apply, want 2", n)
		}
		if out, _, code := a.cli("plan", fnFile); code != 0 {
			t.Errorf("plan after apply exited %d:\n%s", code, out)
		}
	})

	t.Run("RestartKeepsThem", func(t *testing.T) {
		a.stop()
		checkNothingLeft(t, a)
		a.start()
		waitProvisioned(2)
		_, tail := invoke("live", `{}`)
		if strings.Contains(tail, "Init Duration") {
			t.Errorf("after a restart the first call reports an Init:\n%s", tail)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		if _, err := client.DeleteProvisionedConcurrencyConfig(ctx, &awslambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("live")}); err != nil {
			t.Fatal(err)
		}
		waitProvisioned(0)
	})
}
