package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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

	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/testfixtures/sigtest"
)

// signingKey is a publisher's key pair on disk: the PEM private key and public key files.
type signingKey struct{ priv, pub string }

// newSigningKey writes a new key pair into dir as name.key and name.pub.
func newSigningKey(t *testing.T, dir, name string) signingKey {
	t.Helper()
	priv, pub, err := signing.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k := signingKey{priv: filepath.Join(dir, name+".key"), pub: filepath.Join(dir, name+".pub")}
	if err := os.WriteFile(k.priv, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.pub, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// signedZip returns z signed with k, as gateway sign writes it.
func signedZip(t *testing.T, z []byte, k signingKey) []byte {
	t.Helper()
	pem, err := os.ReadFile(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sigtest.SignZip(z, pem)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// codeSigningConfig is CreateCodeSigningConfig allowing publisher with policy.
func codeSigningConfig(ctx context.Context, c *awslambda.Client, publisher string, policy types.CodeSigningPolicy) (*awslambda.CreateCodeSigningConfigOutput, error) {
	return c.CreateCodeSigningConfig(ctx, &awslambda.CreateCodeSigningConfigInput{
		AllowedPublishers:   &types.AllowedPublishers{SigningProfileVersionArns: []string{profileARN(publisher)}},
		CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: policy},
	})
}

// profileARN names a publisher as the Lambda API does: a signing profile's ARN.
func profileARN(name string) string {
	return "arn:aws:signer:us-east-1:123456789012:/signing-profiles/" + name + "/v1"
}

// TestCodeSigningZip: zips deploy under code signing configurations through the AWS SDK as
// under Lambda's. Under Enforce a zip signed by an allowed publisher deploys (and says who signed
// it), an unsigned one and one signed by another key are refused (CodeVerificationFailedException),
// and one altered after signing is refused (InvalidCodeSignatureException) under Warn too; under
// Warn an unsigned zip deploys and the agent logs it. The configuration operations answer
// Lambda's shapes, the publishers' ARNs as given; one in use cannot be deleted. Restarted with
// the key revoked, the node refuses to run the code it had deployed.
func TestCodeSigningZip(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	release, other := newSigningKey(t, dir, "release"), newSigningKey(t, dir, "other")
	top := "signing_publisher \"release\" { public_key = %q }\nsigning_publisher \"other\" { public_key = %q }\n"
	a := startAgent(t, agentOptions{node: "signing", top: fmt.Sprintf(top, release.pub, other.pub)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := a.sdk()

	enforce, err := c.CreateCodeSigningConfig(ctx, &awslambda.CreateCodeSigningConfigInput{
		AllowedPublishers:   &types.AllowedPublishers{SigningProfileVersionArns: []string{profileARN("release")}},
		CodeSigningPolicies: &types.CodeSigningPolicies{UntrustedArtifactOnDeployment: types.CodeSigningPolicyEnforce},
		Description:         aws.String("release team only"),
	})
	if err != nil {
		t.Fatal(err)
	}
	csc := enforce.CodeSigningConfig
	if id := aws.ToString(csc.CodeSigningConfigId); len(id) != 21 || !strings.HasPrefix(id, "csc-") ||
		aws.ToString(csc.CodeSigningConfigArn) != "arn:aws:lambda:us-east-1:000000000000:code-signing-config:"+id ||
		csc.AllowedPublishers.SigningProfileVersionArns[0] != profileARN("release") || csc.CodeSigningPolicies.UntrustedArtifactOnDeployment != types.CodeSigningPolicyEnforce {
		t.Fatalf("created: %+v", csc)
	}
	if _, err := c.CreateCodeSigningConfig(ctx, &awslambda.CreateCodeSigningConfigInput{
		AllowedPublishers: &types.AllowedPublishers{SigningProfileVersionArns: []string{profileARN("nobody")}},
	}); !isError[*types.InvalidParameterValueException](err) {
		t.Errorf("a publisher the node does not declare: %v", err)
	}

	z := codeZip(t, map[string]string{"greeting": "signed"})
	create := func(name string, zip []byte) (*awslambda.CreateFunctionOutput, error) {
		return c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String(apiRole), Code: &types.FunctionCode{ZipFile: zip},
			CodeSigningConfigArn: csc.CodeSigningConfigArn})
	}
	out, err := create("signed", signedZip(t, z, release))
	if err != nil {
		t.Fatalf("a zip signed by an allowed publisher: %v", err)
	}
	if aws.ToString(out.SigningProfileVersionArn) != "arn:aws:signer:us-east-1:000000000000:/signing-profiles/release" {
		t.Errorf("SigningProfileVersionArn %q", aws.ToString(out.SigningProfileVersionArn))
	}
	if r := a.invoke("signed", `{"mode":"readfile","path":"greeting"}`, nil); !strings.Contains(string(r.body), `"content":"signed"`) {
		t.Fatalf("invoking the signed function: %+v", r)
	}
	if _, err := create("unsigned", z); !isError[*types.CodeVerificationFailedException](err) {
		t.Errorf("an unsigned zip under Enforce: %v", err)
	}
	if _, err := create("byother", signedZip(t, z, other)); !isError[*types.CodeVerificationFailedException](err) {
		t.Errorf("a zip signed by a key not allowed: %v", err)
	}
	altered := signedZip(t, z, release)
	altered[40] ^= 1 // in the first entry, after signing
	if _, err := create("altered", altered); !isError[*types.InvalidCodeSignatureException](err) {
		t.Errorf("a zip altered after signing: %v", err)
	}
	if _, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("unsigned")}); !isError[*types.ResourceNotFoundException](err) {
		t.Errorf("a refused deploy left a function: %v", err)
	}
	// Updates are checked under the configuration attached.
	if _, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("signed"), ZipFile: z}); !isError[*types.CodeVerificationFailedException](err) {
		t.Errorf("updating to unsigned code: %v", err)
	}
	z2 := codeZip(t, map[string]string{"greeting": "signed again"})
	if _, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("signed"), ZipFile: signedZip(t, z2, release)}); err != nil {
		t.Errorf("updating to signed code: %v", err)
	}
	if r := a.invoke("signed", `{"mode":"readfile","path":"greeting"}`, nil); !strings.Contains(string(r.body), `"content":"signed again"`) {
		t.Errorf("after the update: %+v", r)
	}

	// Warn deploys what does not verify, and says so in the agent's log.
	warn, err := codeSigningConfig(ctx, c, "release", types.CodeSigningPolicyWarn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("warned"), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String(apiRole), Code: &types.FunctionCode{ZipFile: signedZip(t, z, other)},
		CodeSigningConfigArn: warn.CodeSigningConfig.CodeSigningConfigArn}); err != nil {
		t.Fatalf("a zip signed by another key under Warn: %v", err)
	}
	if !strings.Contains(a.out.String(), "deploying code that does not verify") {
		t.Errorf("the agent did not log the Warn deploy:\n%s", a.out.String())
	}
	if r := a.invoke("warned", `{"mode":"readfile","path":"greeting"}`, nil); !strings.Contains(string(r.body), `"content":"signed"`) {
		t.Errorf("invoking the Warn function: %+v", r)
	}
	if _, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("warned"), ZipFile: altered}); !isError[*types.InvalidCodeSignatureException](err) {
		t.Errorf("an altered zip under Warn: %v", err)
	}

	// The configuration operations.
	got, err := c.GetFunctionCodeSigningConfig(ctx, &awslambda.GetFunctionCodeSigningConfigInput{FunctionName: aws.String("signed")})
	if err != nil || aws.ToString(got.CodeSigningConfigArn) != aws.ToString(csc.CodeSigningConfigArn) {
		t.Errorf("GetFunctionCodeSigningConfig: %+v, %v", got, err)
	}
	fns, err := c.ListFunctionsByCodeSigningConfig(ctx, &awslambda.ListFunctionsByCodeSigningConfigInput{CodeSigningConfigArn: csc.CodeSigningConfigArn})
	if err != nil || len(fns.FunctionArns) != 1 || !strings.HasSuffix(fns.FunctionArns[0], ":function:signed") {
		t.Errorf("ListFunctionsByCodeSigningConfig: %+v, %v", fns, err)
	}
	list, err := c.ListCodeSigningConfigs(ctx, &awslambda.ListCodeSigningConfigsInput{})
	if err != nil || len(list.CodeSigningConfigs) != 2 {
		t.Errorf("ListCodeSigningConfigs: %+v, %v", list, err)
	}
	if _, err := c.DeleteCodeSigningConfig(ctx, &awslambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: csc.CodeSigningConfigArn}); !isError[*types.ResourceConflictException](err) {
		t.Errorf("deleting a configuration in use: %v", err)
	}
	upd, err := c.UpdateCodeSigningConfig(ctx, &awslambda.UpdateCodeSigningConfigInput{CodeSigningConfigArn: warn.CodeSigningConfig.CodeSigningConfigArn,
		AllowedPublishers: &types.AllowedPublishers{SigningProfileVersionArns: []string{profileARN("release"), profileARN("other")}}})
	if err != nil || len(upd.CodeSigningConfig.AllowedPublishers.SigningProfileVersionArns) != 2 ||
		upd.CodeSigningConfig.CodeSigningPolicies.UntrustedArtifactOnDeployment != types.CodeSigningPolicyWarn {
		t.Errorf("UpdateCodeSigningConfig: %+v, %v", upd, err)
	}
	if _, err := c.GetCodeSigningConfig(ctx, &awslambda.GetCodeSigningConfigInput{CodeSigningConfigArn: aws.String("arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0000000000000000a")}); !isError[*types.ResourceNotFoundException](err) && !isError[*types.CodeSigningConfigNotFoundException](err) {
		t.Errorf("a configuration that does not exist: %v", err)
	}
	if _, err := c.PutFunctionCodeSigningConfig(ctx, &awslambda.PutFunctionCodeSigningConfigInput{FunctionName: aws.String("warned"),
		CodeSigningConfigArn: aws.String("arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0000000000000000a")}); !isError[*types.CodeSigningConfigNotFoundException](err) {
		t.Errorf("attaching a configuration that does not exist: %v", err)
	}
	if _, err := c.DeleteFunctionCodeSigningConfig(ctx, &awslambda.DeleteFunctionCodeSigningConfigInput{FunctionName: aws.String("warned")}); err != nil {
		t.Errorf("DeleteFunctionCodeSigningConfig: %v", err)
	}
	if _, err := c.DeleteCodeSigningConfig(ctx, &awslambda.DeleteCodeSigningConfigInput{CodeSigningConfigArn: warn.CodeSigningConfig.CodeSigningConfigArn}); err != nil {
		t.Errorf("deleting a configuration no function uses: %v", err)
	}

	// Every node checks the code again before it runs it, with its own publishers: restarted
	// with the release key revoked, this one refuses to start the function's environments.
	a.stop()
	conf, _ := os.ReadFile(a.confPath)
	conf = append(conf, []byte(fmt.Sprintf("code_signing { revoked = [%q] }\n", release.pub))...)
	if err := os.WriteFile(a.confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	a.start()
	if r := a.invoke("signed", `{}`, nil); r.status != 400 || !strings.Contains(string(r.body), "revoked") {
		t.Errorf("running code signed with a key revoked since: %+v", r)
	}
}

// cosignBin is the cosign that make deps installs into .tools/bin (or one on PATH); a test that
// needs it fails without one, since make test installs it.
func cosignBin(t *testing.T) string {
	t.Helper()
	if p := filepath.Join(repoRoot, ".tools", "bin", "cosign"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	t.Fatal("cosign is not installed: make deps builds it into .tools/bin")
	return ""
}

// runCosign runs cosign offline with the key password "pw" in dir.
func runCosign(t *testing.T, cosign, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cosign, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=pw", "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign %v: %v\n%s", args, err, out)
	}
}

// TestCodeSigningApply: gateway apply of a function file with a code_signing_config block and
// functions naming it: one whose zip comes with the bundle cosign sign-blob made beside it
// (code_signature), one zip signed by gateway sign with gateway sign keygen's key; both deploy
// under Enforce and run, and a plan after finds nothing to change. A function with an unsigned
// zip is refused (CodeVerificationFailedException in apply's error); the AWS CLI's code signing
// commands work against the API, and a zip cosign signed, made a signed zip by gateway sign
// attach, deploys through aws lambda create-function unchanged.
func TestCodeSigningApply(t *testing.T) {
	needRoot(t)
	cosign := cosignBin(t)
	dir := t.TempDir()
	runCosign(t, cosign, dir, "generate-key-pair")
	if out, errOut, code := (&agentProc{t: t}).cliIn(dir, "sign", "keygen", "-name", filepath.Join(dir, "team")); code != 0 {
		t.Fatalf("gateway sign keygen exited %d:\n%s%s", code, out, errOut)
	}
	top := fmt.Sprintf("signing_publisher \"release\" { public_key = %q }\nsigning_publisher \"team\" { public_key = %q }\n",
		filepath.Join(dir, "cosign.pub"), filepath.Join(dir, "team.pub"))
	a := startAgent(t, agentOptions{node: "signapply", top: top})

	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("a.zip", codeZip(t, map[string]string{"greeting": "cosign"}))
	runCosign(t, cosign, dir, "sign-blob", "--key", "cosign.key", "--bundle", "a.zip.sigstore.json",
		"--use-signing-config=false", "--tlog-upload=false", "--yes", "a.zip")
	write("b.zip", codeZip(t, map[string]string{"greeting": "gateway sign"}))
	if out, errOut, code := a.cliIn(dir, "sign", "-key", filepath.Join(dir, "team.key"), "-out", filepath.Join(dir, "b.signed.zip"), filepath.Join(dir, "b.zip")); code != 0 {
		t.Fatalf("gateway sign exited %d:\n%s%s", code, out, errOut)
	}
	write("c.zip", codeZip(t, nil))
	files := fmt.Sprintf(`
code_signing_config "prod" {
  description                      = "release and team"
  allowed_publishers               = ["release", "team"]
  untrusted_artifact_on_deployment = "Enforce"
}
function "cosigned" {
  runtime             = "provided.al2023"
  code                = %q
  code_signature      = %q
  code_signing_config = "prod"
}
function "gwsigned" {
  runtime             = "provided.al2023"
  code                = %q
  code_signing_config = "prod"
}
`, filepath.Join(dir, "a.zip"), filepath.Join(dir, "a.zip.sigstore.json"), filepath.Join(dir, "b.signed.zip"))
	a.apply(files)
	for fn, want := range map[string]string{"cosigned": "cosign", "gwsigned": "gateway sign"} {
		if r := a.invoke(fn, `{"mode":"readfile","path":"greeting"}`, nil); !strings.Contains(string(r.body), `"content":"`+want+`"`) {
			t.Errorf("invoking %s: %d %s", fn, r.status, r.body)
		}
	}
	path := writeFunctions(t, files)
	if out, errOut, code := a.cli("plan", path); code != 0 {
		t.Errorf("plan after apply exited %d (want 0, nothing to change):\n%s%s", code, out, errOut)
	}
	unsigned := files + fmt.Sprintf("function \"unsigned\" {\n  runtime = \"provided.al2023\"\n  code = %q\n  code_signing_config = \"prod\"\n}\n", filepath.Join(dir, "c.zip"))
	if out, errOut, code := a.cli("apply", writeFunctions(t, unsigned)); code == 0 || !strings.Contains(out+errOut, "CodeVerificationFailedException") {
		t.Errorf("applying an unsigned function under Enforce exited %d:\n%s%s", code, out, errOut)
	}

	// The AWS CLI's commands.
	awsBin, err := exec.LookPath("aws")
	if err != nil || exec.Command(awsBin, "--version").Run() != nil {
		t.Log("the AWS CLI is not installed on this machine: its part is skipped")
		return
	}
	run := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsBin, append([]string{"--endpoint-url", a.addr, "--output", "json", "lambda"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(withoutAWSEnv(os.Environ()), "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y",
			"AWS_DEFAULT_REGION=us-east-1", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := run("create-code-signing-config", "--description", "cli",
		"--allowed-publishers", "SigningProfileVersionArns="+profileARN("release"),
		"--code-signing-policies", "UntrustedArtifactOnDeployment=Enforce")
	m := regexpFind(`"CodeSigningConfigArn": "([^"]+)"`, out)
	if code != 0 || m == "" || !strings.Contains(out, profileARN("release")) {
		t.Fatalf("create-code-signing-config exited %d:\n%s", code, out)
	}
	if out, code := run("get-code-signing-config", "--code-signing-config-arn", m); code != 0 || !strings.Contains(out, `"Description": "cli"`) {
		t.Errorf("get-code-signing-config exited %d:\n%s", code, out)
	}
	if out, code := run("list-code-signing-configs"); code != 0 || !strings.Contains(out, m) || !strings.Contains(out, `"Description": "release and team"`) {
		t.Errorf("list-code-signing-configs exited %d:\n%s", code, out)
	}
	if out, code := run("update-code-signing-config", "--code-signing-config-arn", m, "--description", "changed"); code != 0 || !strings.Contains(out, `"Description": "changed"`) {
		t.Errorf("update-code-signing-config exited %d:\n%s", code, out)
	}
	if out, errOut, code := a.cliIn(dir, "sign", "attach", "-bundle", "a.zip.sigstore.json", "-out", "a.signed.zip", "a.zip"); code != 0 {
		t.Fatalf("gateway sign attach exited %d:\n%s%s", code, out, errOut)
	}
	if out, code := run("create-function", "--function-name", "clisigned", "--runtime", "provided.al2023", "--handler", "bootstrap",
		"--role", apiRole, "--zip-file", "fileb://a.signed.zip", "--code-signing-config-arn", m); code != 0 ||
		!strings.Contains(out, `"SigningProfileVersionArn": "arn:aws:signer:us-east-1:000000000000:/signing-profiles/release"`) {
		t.Fatalf("create-function of a zip cosign signed exited %d:\n%s", code, out)
	}
	if out, code := run("create-function", "--function-name", "cliunsigned", "--runtime", "provided.al2023", "--handler", "bootstrap",
		"--role", apiRole, "--zip-file", "fileb://a.zip", "--code-signing-config-arn", m); code == 0 || !strings.Contains(out, "CodeVerificationFailedException") {
		t.Errorf("create-function of an unsigned zip exited %d:\n%s", code, out)
	}
	if out, code := run("get-function-code-signing-config", "--function-name", "clisigned"); code != 0 || !strings.Contains(out, m) {
		t.Errorf("get-function-code-signing-config exited %d:\n%s", code, out)
	}
	if out, code := run("list-functions-by-code-signing-config", "--code-signing-config-arn", m); code != 0 || !strings.Contains(out, ":function:clisigned") {
		t.Errorf("list-functions-by-code-signing-config exited %d:\n%s", code, out)
	}
	if out, code := run("delete-code-signing-config", "--code-signing-config-arn", m); code == 0 || !strings.Contains(out, "ResourceConflictException") {
		t.Errorf("delete-code-signing-config of one in use exited %d:\n%s", code, out)
	}
	if out, code := run("delete-function-code-signing-config", "--function-name", "clisigned"); code != 0 {
		t.Errorf("delete-function-code-signing-config exited %d:\n%s", code, out)
	}
	if out, code := run("put-function-code-signing-config", "--function-name", "clisigned", "--code-signing-config-arn", m); code != 0 || !strings.Contains(out, m) {
		t.Errorf("put-function-code-signing-config exited %d:\n%s", code, out)
	}
	if out, code := run("delete-function", "--function-name", "clisigned"); code != 0 {
		t.Errorf("delete-function exited %d:\n%s", code, out)
	}
	if out, code := run("delete-code-signing-config", "--code-signing-config-arn", m); code != 0 {
		t.Errorf("delete-code-signing-config exited %d:\n%s", code, out)
	}
}

func regexpFind(re, s string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

// cliIn runs the gateway binary in dir (for commands that write files there).
func (a *agentProc) cliIn(dir string, args ...string) (string, string, int) {
	a.t.Helper()
	cmd := exec.Command(gatewayBin, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	if a.addr != "" {
		cmd.Env = append(cmd.Env, "GATEWAY_ADDR="+a.addr)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		a.t.Fatalf("running gateway %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// TestCodeSigningOnEveryNode: each node of a cluster checks code against its own publishers
// before it runs it, after fetching it from the peer that took the deploy. Both nodes declare
// the release key; the second revokes it. A function deployed signed through the first runs
// there; the second, which fetches the code to start an environment, refuses it
// (CodeVerificationFailedException naming it).
func TestCodeSigningOnEveryNode(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	release := newSigningKey(t, dir, "release")
	// The two nodes' agent files differ: startClusterWith's nodes share one.
	top := fmt.Sprintf("signing_publisher \"release\" { public_key = %q }\n", release.pub)
	ports := []int{freePort(t), freePort(t)}
	join := fmt.Sprintf("bootstrap_expect = 2\n  join = [\"127.0.0.1:%d\", \"127.0.0.1:%d\"]", ports[0], ports[1])
	n1 := newAgent(t, agentOptions{node: "signnode1", raftPort: ports[0], cluster: join, top: top})
	n2 := newAgent(t, agentOptions{node: "signnode2", raftPort: ports[1], cluster: join,
		top: top + fmt.Sprintf("code_signing { revoked = [%q] }\n", release.pub)})
	n1.waitHealthy()
	n2.waitHealthy()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The configurations are written through the follower, which forwards them to the leader;
	// the function is deployed through the first node, which trusts the key (the second would
	// refuse the deploy itself).
	var leader string
	waitFor(t, "a leader", time.Minute, func() bool { _, leader = members(t, n1); return leader != "" })
	follower := n1
	if leader == n1.name {
		follower = n2
	}
	c := follower.sdk()
	var csc *awslambda.CreateCodeSigningConfigOutput
	var lastErr error
	waitFor(t, "a leader to take the configuration", time.Minute, func() bool {
		csc, lastErr = codeSigningConfig(ctx, c, "release", types.CodeSigningPolicyEnforce)
		if lastErr != nil {
			t.Logf("creating the configuration: %v", lastErr)
		}
		return lastErr == nil
	})
	if _, err := n1.sdk().CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("everywhere"), Runtime: types.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String(apiRole), Code: &types.FunctionCode{ZipFile: signedZip(t, codeZip(t, map[string]string{"greeting": "checked"}), release)},
		CodeSigningConfigArn: csc.CodeSigningConfig.CodeSigningConfigArn}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the function on both nodes", 30*time.Second, func() bool {
		_, err1 := n1.sdk().GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("everywhere")})
		_, err2 := n2.sdk().GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("everywhere")})
		return err1 == nil && err2 == nil
	})
	if _, err := c.PutFunctionEventInvokeConfig(ctx, &awslambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("everywhere"),
		MaximumRetryAttempts: aws.Int32(1)}); err != nil {
		t.Errorf("an event invoke configuration through the follower: %v", err)
	}
	if r := n2.invoke("everywhere", `{"mode":"readfile","path":"greeting"}`, nil); r.status != 400 ||
		!strings.Contains(string(r.body), "CodeVerificationFailedException") && !strings.Contains(string(r.body), "refuses to run") {
		t.Errorf("the node that revoked the key ran the code: %d %s", r.status, r.body)
	}
	if r := n1.invoke("everywhere", `{"mode":"readfile","path":"greeting"}`, nil); !strings.Contains(string(r.body), `"content":"checked"`) {
		t.Errorf("the node that trusts the key: %d %s", r.status, r.body)
	}
}

// TestCodeSigningCertificateIdentity: a publisher that is a certificate identity under a trusted
// root the operator gives (sigtest's offline CA here): a zip signed with a certificate of that
// identity deploys under Enforce and runs; one signed with a certificate of another identity, or
// one that has expired, is refused (CodeVerificationFailedException).
func TestCodeSigningCertificateIdentity(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	ca, err := sigtest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(root, ca.TrustedRoot(), 0o644); err != nil {
		t.Fatal(err)
	}
	const id, issuer = "https://ci.example/org/repo/.github/workflows/release.yml@refs/heads/main", "https://token.ci.example"
	a := startAgent(t, agentOptions{node: "signcert", top: fmt.Sprintf(`signing_publisher "ci" {
  certificate_identity    = %q
  certificate_oidc_issuer = %q
  trusted_root            = %q
}
`, id, issuer, root)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := a.sdk()
	csc, err := codeSigningConfig(ctx, c, "ci", types.CodeSigningPolicyEnforce)
	if err != nil {
		t.Fatal(err)
	}
	z := codeZip(t, map[string]string{"greeting": "from ci"})
	signWith := func(identity string, from, to time.Time) []byte {
		t.Helper()
		leaf, err := ca.Issue(identity, issuer, from, to)
		if err != nil {
			t.Fatal(err)
		}
		b, err := leaf.Sign(sha256.Sum256(z))
		if err != nil {
			t.Fatal(err)
		}
		out, err := signing.Attach(z, b)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	create := func(name string, zip []byte) error {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String(apiRole), Code: &types.FunctionCode{ZipFile: zip},
			CodeSigningConfigArn: csc.CodeSigningConfig.CodeSigningConfigArn})
		return err
	}
	now := time.Now()
	if err := create("bycert", signWith(id, now.Add(-time.Minute), now.Add(time.Hour))); err != nil {
		t.Fatalf("a zip signed with the identity's certificate: %v", err)
	}
	if r := a.invoke("bycert", `{"mode":"readfile","path":"greeting"}`, nil); !strings.Contains(string(r.body), `"content":"from ci"`) {
		t.Errorf("invoking: %d %s", r.status, r.body)
	}
	if err := create("otherid", signWith("https://ci.example/org/other/.github/workflows/x.yml@refs/heads/main", now.Add(-time.Minute), now.Add(time.Hour))); !isError[*types.CodeVerificationFailedException](err) {
		t.Errorf("a certificate of another identity: %v", err)
	}
	if err := create("expired", signWith(id, now.Add(-2*time.Hour), now.Add(-time.Hour))); !isError[*types.CodeVerificationFailedException](err) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired certificate: %v", err)
	}
}
