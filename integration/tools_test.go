package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The AWS tools users already have, against an agent that requires signed requests: the
// Terraform AWS provider and the AWS CLI manage functions through the Lambda API unchanged.

// tfMirror is where this machine keeps the Terraform AWS provider (Terraform cannot download
// it here).
const tfMirror = "/opt/tf-plugins"

func terraformMain(endpoint, zipPath, greeting, imageURI, layerPath string) string {
	return fmt.Sprintf(`
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = %q
  secret_key                  = %q
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    lambda = %q
  }
}

resource "aws_lambda_function" "fn" {
  function_name    = "tf"
  role             = "arn:aws:iam::123456789012:role/tf"
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  filename         = %q
  source_code_hash = filebase64sha256(%q)
  memory_size      = 128
  timeout          = 5
  publish          = true
  layers           = [aws_lambda_layer_version.deps.arn]
  environment {
    variables = { GREETING = %q }
  }
  dead_letter_config {
    target_arn = "arn:aws:sqs:us-east-1:123456789012:tf-dlq"
  }
  vpc_config {
    subnet_ids         = ["tfnet"]
    security_group_ids = ["tfdb"]
  }
  logging_config {
    log_format            = "JSON"
    application_log_level = "INFO"
    system_log_level      = "WARN"
  }
  code_signing_config_arn = aws_lambda_code_signing_config.csc.arn
}

resource "aws_lambda_code_signing_config" "csc" {
  description = "terraform"
  allowed_publishers {
    signing_profile_version_arns = ["arn:aws:signer:us-east-1:123456789012:/signing-profiles/tfrelease/v1"]
  }
  policies {
    untrusted_artifact_on_deployment = "Warn"
  }
}

resource "aws_lambda_function_event_invoke_config" "async" {
  function_name                = aws_lambda_function.fn.function_name
  qualifier                    = aws_lambda_alias.live.name
  maximum_retry_attempts       = 1
  maximum_event_age_in_seconds = 3600
  destination_config {
    on_failure {
      destination = "arn:aws:sqs:us-east-1:123456789012:tf-failed"
    }
    on_success {
      destination = aws_lambda_function.img.arn
    }
  }
}

resource "aws_lambda_layer_version" "deps" {
  layer_name          = "tfdeps"
  filename            = %q
  source_code_hash    = filebase64sha256(%q)
  compatible_runtimes = ["provided.al2023"]
  description         = "shared files"
}

resource "aws_lambda_alias" "live" {
  name             = "live"
  function_name    = aws_lambda_function.fn.function_name
  function_version = aws_lambda_function.fn.version
}

resource "aws_lambda_function_url" "url" {
  function_name      = aws_lambda_function.fn.function_name
  qualifier          = aws_lambda_alias.live.name
  authorization_type = "NONE"
}

resource "aws_lambda_provisioned_concurrency_config" "warm" {
  function_name                     = aws_lambda_function.fn.function_name
  qualifier                         = aws_lambda_alias.live.name
  provisioned_concurrent_executions = 1
}

resource "aws_lambda_function" "img" {
  function_name = "tfimg"
  role          = "arn:aws:iam::123456789012:role/tf"
  package_type  = "Image"
  image_uri     = %q
  memory_size   = 128
  timeout       = 5
  image_config {
    working_directory = "/app"
  }
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowEvents"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn.function_name
  principal     = "events.amazonaws.com"
  source_arn    = "arn:aws:events:us-east-1:123456789012:rule/nightly"
}
`, authAdminID, authAdminSecret, endpoint, zipPath, zipPath, greeting, layerPath, layerPath, imageURI)
}

func TestTerraformAWSProvider(t *testing.T) {
	needRoot(t)
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not installed on this machine")
	}
	if _, err := os.Stat(filepath.Join(tfMirror, "registry.terraform.io/hashicorp/aws")); err != nil {
		t.Skipf("the Terraform AWS provider is not in %s on this machine", tfMirror)
	}
	key := newSigningKey(t, t.TempDir(), "tfrelease")
	a := startAgent(t, agentOptions{node: "tf", keys: []testKey{{"ops", authAdminID, authAdminSecret, "admin"}},
		top: "network \"tfnet\" {\n  subnet = \"10.254.7.0/24\"\n}\negress_policy \"tfdb\" {\n  allow = [\"10.254.8.0/24:5432\"]\n}\n" +
			fmt.Sprintf("signing_publisher \"tfrelease\" {\n  public_key = %q\n}\n", key.pub)})
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	imageURI := strings.TrimPrefix(srv.URL, "http://") + "/team/fn:tf"
	ref, _ := name.ParseReference(imageURI)
	if err := remote.Write(ref, functionImage(t, "from terraform")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "fn.zip")
	if err := os.WriteFile(zipPath, codeZip(t, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	layerPath := filepath.Join(dir, "layer.zip")
	if err := os.WriteFile(layerPath, zipOf(t, map[string]string{"shared/greeting.txt": "from a layer"}), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "terraformrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf(`provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
`, tfMirror)), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(greeting string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(terraformMain(a.addr, zipPath, greeting, imageURI, layerPath)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, tf, append(args, "-no-color")...)
		cmd.Dir = dir
		cmd.Env = append(withoutAWSEnv(os.Environ()), "TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	write("hi")
	if out, code := run("init", "-input=false"); code != 0 {
		t.Fatalf("terraform init exited %d:\n%s", code, out)
	}
	if out, code := run("apply", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform apply exited %d:\n%s", code, out)
	}
	ctx := context.Background()
	client := a.sdk()
	fn, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("tf")})
	if err != nil || aws.ToString(fn.Configuration.Role) != "arn:aws:iam::123456789012:role/tf" || fn.Configuration.Environment.Variables["GREETING"] != "hi" {
		t.Fatalf("the function Terraform created: %v %+v", err, fn)
	}
	if csc, err := client.GetFunctionCodeSigningConfig(ctx, &awslambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("tf")}); err != nil ||
		!strings.Contains(aws.ToString(csc.CodeSigningConfigArn), ":code-signing-config:csc-") {
		t.Errorf("the function's code signing configuration (code_signing_config_arn): %v %+v", err, csc)
	}
	if l := fn.Configuration.LoggingConfig; l == nil || l.LogFormat != "JSON" || l.ApplicationLogLevel != "INFO" || l.SystemLogLevel != "WARN" || aws.ToString(l.LogGroup) != "/aws/lambda/tf" {
		t.Errorf("the function's LoggingConfig: %+v", l)
	}
	if v := fn.Configuration.VpcConfig; v == nil || len(v.SubnetIds) != 1 || v.SubnetIds[0] != "tfnet" || len(v.SecurityGroupIds) != 1 || v.SecurityGroupIds[0] != "tfdb" {
		t.Errorf("the function's network (vpc_config): %+v", v)
	}
	pc, err := client.GetProvisionedConcurrencyConfig(ctx, &awslambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live")})
	if err != nil || pc.Status != types.ProvisionedConcurrencyStatusEnumReady {
		t.Errorf("provisioned concurrency: %v %+v", err, pc)
	}
	eic, err := client.GetFunctionEventInvokeConfig(ctx, &awslambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live")})
	if err != nil || aws.ToInt32(eic.MaximumRetryAttempts) != 1 || aws.ToInt32(eic.MaximumEventAgeInSeconds) != 3600 ||
		aws.ToString(eic.DestinationConfig.OnFailure.Destination) != "arn:aws:sqs:us-east-1:123456789012:tf-failed" {
		t.Errorf("the event invoke configuration Terraform made: %v %+v", err, eic)
	}
	pol, err := client.GetPolicy(ctx, &awslambda.GetPolicyInput{FunctionName: aws.String("tf")})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `"Sid":"AllowEvents"`) || !strings.Contains(aws.ToString(pol.Policy), `"Service":"events.amazonaws.com"`) {
		t.Errorf("policy: %v %+v", err, pol)
	}
	greeting := func() string {
		t.Helper()
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live"), Payload: []byte(`{"mode":"env"}`)})
		if err != nil || out.FunctionError != nil {
			t.Fatalf("invoking tf:live: %v", err)
		}
		_, rest, _ := strings.Cut(string(out.Payload), `"GREETING":"`)
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}
	if g := greeting(); g != "hi" {
		t.Errorf("tf:live has GREETING=%q", g)
	}
	// The layer Terraform published is at /opt.
	if out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("tf"), Qualifier: aws.String("live"),
		Payload: []byte(`{"mode":"readfile","path":"/opt/shared/greeting.txt"}`)}); err != nil || !strings.Contains(string(out.Payload), `"content":"from a layer"`) {
		t.Fatalf("the layer of the function Terraform created: %v %s", err, out.Payload)
	}
	// The image function, from its image's working folder as image_config sets it.
	if out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("tfimg"), Payload: []byte(`{"mode":"readfile","path":"greeting"}`)}); err != nil ||
		out.FunctionError != nil || !strings.Contains(string(out.Payload), `"content":"from terraform"`) {
		t.Fatalf("invoking the image function Terraform created: %v %+v", err, out)
	}
	// What Terraform reads back matches what it wrote: no perpetual diff.
	if out, code := run("plan", "-detailed-exitcode", "-input=false"); code != 0 {
		t.Fatalf("terraform plan after apply exited %d (want 0, no changes):\n%s", code, out)
	}
	// A change publishes a new version and moves the alias.
	write("changed")
	if out, code := run("apply", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform apply of a change exited %d:\n%s", code, out)
	}
	if g := greeting(); g != "changed" {
		t.Errorf("after the change tf:live has GREETING=%q", g)
	}
	if out, code := run("plan", "-detailed-exitcode", "-input=false"); code != 0 {
		t.Fatalf("terraform plan after the change exited %d:\n%s", code, out)
	}
	if out, code := run("destroy", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform destroy exited %d:\n%s", code, out)
	}
	if _, err := client.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("tf")}); !isError[*types.ResourceNotFoundException](err) {
		t.Errorf("after destroy: %v", err)
	}
}

func TestAWSCLI(t *testing.T) {
	needRoot(t)
	awsBin, err := exec.LookPath("aws")
	if err != nil || exec.Command(awsBin, "--version").Run() != nil {
		t.Skip("the AWS CLI is not installed on this machine")
	}
	a := startAgent(t, agentOptions{node: "awscli", keys: []testKey{{"ops", authAdminID, authAdminSecret, "admin"}}})
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "fn.zip")
	if err := os.WriteFile(zipPath, codeZip(t, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(secret string, args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsBin, append([]string{"--endpoint-url", a.addr, "--output", "json", "lambda"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(withoutAWSEnv(os.Environ()), "AWS_ACCESS_KEY_ID="+authAdminID, "AWS_SECRET_ACCESS_KEY="+secret,
			"AWS_DEFAULT_REGION=eu-central-1", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run(authAdminSecret, "create-function", "--function-name", "cli", "--runtime", "provided.al2023", "--handler", "bootstrap",
		"--role", "arn:aws:iam::123456789012:role/cli", "--zip-file", "fileb://fn.zip", "--environment", "Variables={GREETING=cli}"); code != 0 || !strings.Contains(out, `"FunctionName": "cli"`) {
		t.Fatalf("create-function exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "publish-version", "--function-name", "cli"); code != 0 || !strings.Contains(out, `"Version": "1"`) {
		t.Fatalf("publish-version exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "create-alias", "--function-name", "cli", "--name", "live", "--function-version", "1"); code != 0 {
		t.Fatalf("create-alias exited %d:\n%s", code, out)
	}
	out, code := run(authAdminSecret, "invoke", "--function-name", "cli", "--qualifier", "live", "--payload", `{"mode":"env"}`, "out.json")
	body, _ := os.ReadFile(filepath.Join(dir, "out.json"))
	if code != 0 || !strings.Contains(out, `"ExecutedVersion": "1"`) || !strings.Contains(string(body), `"GREETING":"cli"`) {
		t.Fatalf("invoke exited %d:\n%s\n%s", code, out, body)
	}
	if out, code := run(authAdminSecret, "list-functions"); code != 0 || !strings.Contains(out, `"FunctionName": "cli"`) {
		t.Errorf("list-functions exited %d:\n%s", code, out)
	}
	if out, code := run("not-the-secret", "get-function", "--function-name", "cli"); code == 0 || !strings.Contains(out, "InvalidSignatureException") {
		t.Errorf("a wrong secret: exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "delete-function", "--function-name", "cli", "--qualifier", "1"); code == 0 || !strings.Contains(out, "ResourceConflictException") {
		t.Errorf("deleting a version an alias uses: exited %d:\n%s", code, out)
	}
	// A layer: published, attached, its files at /opt.
	if err := os.WriteFile(filepath.Join(dir, "layer.zip"), zipOf(t, map[string]string{"etc/settings.json": `{"from":"cli layer"}`}), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = run(authAdminSecret, "publish-layer-version", "--layer-name", "clideps", "--zip-file", "fileb://layer.zip",
		"--compatible-runtimes", "provided.al2023", "--description", "settings")
	arnRE := regexp.MustCompile(`"LayerVersionArn": "(arn:aws:lambda:[a-z0-9-]+:000000000000:layer:clideps:1)"`)
	m := arnRE.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("publish-layer-version exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "update-function-configuration", "--function-name", "cli", "--layers", m[1]); code != 0 || !strings.Contains(out, `"Arn": "`+m[1]+`"`) {
		t.Fatalf("update-function-configuration --layers exited %d:\n%s", code, out)
	}
	out, code = run(authAdminSecret, "invoke", "--function-name", "cli", "--payload", `{"mode":"readfile","path":"/opt/etc/settings.json"}`, "layer.json")
	body, _ = os.ReadFile(filepath.Join(dir, "layer.json"))
	if code != 0 || !strings.Contains(string(body), `cli layer`) {
		t.Fatalf("reading the layer's file exited %d:\n%s\n%s", code, out, body)
	}
	if out, code := run(authAdminSecret, "list-layers"); code != 0 || !strings.Contains(out, `"LayerName": "clideps"`) {
		t.Errorf("list-layers exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "get-layer-version-by-arn", "--arn", m[1]); code != 0 || !strings.Contains(out, `"Description": "settings"`) {
		t.Errorf("get-layer-version-by-arn exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "add-layer-version-permission", "--layer-name", "clideps", "--version-number", "1",
		"--statement-id", "all", "--action", "lambda:GetLayerVersion", "--principal", "*"); code != 0 || !strings.Contains(out, "RevisionId") {
		t.Errorf("add-layer-version-permission exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "delete-layer-version", "--layer-name", "clideps", "--version-number", "1"); code != 0 {
		t.Errorf("delete-layer-version exited %d:\n%s", code, out)
	}
	// Asynchronous invocation settings: an alias's event invoke configuration, and the
	// function's dead-letter queue.
	if out, code := run(authAdminSecret, "put-function-event-invoke-config", "--function-name", "cli", "--qualifier", "live", "--maximum-retry-attempts", "1",
		"--destination-config", `{"OnFailure":{"Destination":"arn:aws:sqs:eu-central-1:123456789012:failed"}}`); code != 0 ||
		!strings.Contains(out, `:function:cli:live"`) || !strings.Contains(out, `"MaximumRetryAttempts": 1`) || !strings.Contains(out, `"arn:aws:sqs:eu-central-1:123456789012:failed"`) {
		t.Errorf("put-function-event-invoke-config exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "update-function-event-invoke-config", "--function-name", "cli", "--qualifier", "live",
		"--maximum-event-age-in-seconds", "600"); code != 0 || !strings.Contains(out, `"MaximumEventAgeInSeconds": 600`) || !strings.Contains(out, `"MaximumRetryAttempts": 1`) {
		t.Errorf("update-function-event-invoke-config exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "list-function-event-invoke-configs", "--function-name", "cli"); code != 0 || !strings.Contains(out, `:function:cli:live"`) {
		t.Errorf("list-function-event-invoke-configs exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "delete-function-event-invoke-config", "--function-name", "cli", "--qualifier", "live"); code != 0 {
		t.Errorf("delete-function-event-invoke-config exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "update-function-configuration", "--function-name", "cli", "--dead-letter-config",
		"TargetArn=arn:aws:sqs:eu-central-1:123456789012:dlq"); code != 0 || !strings.Contains(out, `"TargetArn": "arn:aws:sqs:eu-central-1:123456789012:dlq"`) {
		t.Errorf("update-function-configuration --dead-letter-config exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "delete-function", "--function-name", "cli"); code != 0 {
		t.Errorf("delete-function exited %d:\n%s", code, out)
	}

	// An image function from a registry on loopback: created, described with its pinned image,
	// and invoked.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := name.ParseReference(host + "/team/fn:cli")
	img := functionImage(t, "from the cli")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	if out, code := run(authAdminSecret, "create-function", "--function-name", "cliimg", "--package-type", "Image",
		"--code", "ImageUri="+host+"/team/fn:cli", "--role", "arn:aws:iam::123456789012:role/cli"); code != 0 || !strings.Contains(out, `"PackageType": "Image"`) {
		t.Fatalf("create-function of an image exited %d:\n%s", code, out)
	}
	if out, code := run(authAdminSecret, "get-function", "--function-name", "cliimg"); code != 0 ||
		!strings.Contains(out, `"ResolvedImageUri": "`+host+`/team/fn@`+digest.String()+`"`) || !strings.Contains(out, `"RepositoryType": "ECR"`) {
		t.Fatalf("get-function of an image exited %d:\n%s", code, out)
	}
	out, code = run(authAdminSecret, "invoke", "--function-name", "cliimg", "--payload", `{"mode":"readfile","path":"greeting"}`, "img.json")
	body, _ = os.ReadFile(filepath.Join(dir, "img.json"))
	if code != 0 || !strings.Contains(string(body), `"content":"from the cli"`) {
		t.Fatalf("invoking the image function exited %d:\n%s\n%s", code, out, body)
	}
}
