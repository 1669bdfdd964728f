package integration

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
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

// TestCodeSigningImage: image functions deploy under code signing configurations with their
// signatures where cosign sign puts them, beside the image in its registry. Under Enforce an
// image cosign signed with an allowed key deploys and runs, in cosign's bundle form (an OCI
// referrer) and in its earlier .sig form; an unsigned image and one signed with another key are
// refused (CodeVerificationFailedException), and an image given another image's signature fails
// the integrity check (InvalidCodeSignatureException).
func TestCodeSigningImage(t *testing.T) {
	needRoot(t)
	cosign := cosignBin(t)
	dir := t.TempDir()
	runCosign(t, cosign, dir, "generate-key-pair")
	runCosign(t, cosign, dir, "generate-key-pair", "--output-key-prefix", "other")
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push := func(tag, greeting string) string {
		t.Helper()
		ref, _ := name.ParseReference(host + "/team/fn:" + tag)
		img := functionImage(t, greeting)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return host + "/team/fn@" + d.String()
	}
	sign := func(key, pinned string, extra ...string) {
		t.Helper()
		args := append([]string{"sign", "--key", key, "--tlog-upload=false", "--use-signing-config=false", "--allow-insecure-registry", "--yes"}, extra...)
		runCosign(t, cosign, dir, append(args, pinned)...)
	}
	bundled := push("bundled", "bundle form")
	sign("cosign.key", bundled)
	legacy := push("legacy", "sig form")
	sign("cosign.key", legacy, "--new-bundle-format=false")
	push("unsigned", "unsigned")
	byOther := push("other", "other key")
	sign("other.key", byOther)
	// An image given the signature of another: bundled's referrers, copied to its tag.
	stolen := push("stolen", "stolen signature")
	from, _ := name.ParseReference(host + "/team/fn:sha256-" + strings.TrimPrefix(bundled[strings.Index(bundled, "@")+1:], "sha256:"))
	to, _ := name.ParseReference(host + "/team/fn:sha256-" + strings.TrimPrefix(stolen[strings.Index(stolen, "@")+1:], "sha256:"))
	idx, err := remote.Index(from)
	if err != nil {
		t.Fatalf("the bundle's referrers index: %v", err)
	}
	if err := remote.WriteIndex(to, idx); err != nil {
		t.Fatal(err)
	}

	top := "signing_publisher \"release\" { public_key = \"" + filepath.Join(dir, "cosign.pub") + "\" }\n" +
		"signing_publisher \"other\" { public_key = \"" + filepath.Join(dir, "other.pub") + "\" }\n"
	a := startAgent(t, agentOptions{node: "signimg", top: top})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := a.sdk()
	csc, err := codeSigningConfig(ctx, c, "release", types.CodeSigningPolicyEnforce)
	if err != nil {
		t.Fatal(err)
	}
	create := func(fn, tag string) error {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(fn), PackageType: types.PackageTypeImage,
			Code: &types.FunctionCode{ImageUri: aws.String(host + "/team/fn:" + tag)}, Role: aws.String(apiRole),
			CodeSigningConfigArn: csc.CodeSigningConfig.CodeSigningConfigArn})
		return err
	}
	for fn, greeting := range map[string]string{"bundled": "bundle form", "legacy": "sig form"} {
		if err := create(fn, fn); err != nil {
			t.Fatalf("an image cosign signed (%s): %v", fn, err)
		}
		if r := a.invoke(fn, `{"mode":"readfile","path":"greeting"}`, nil); !strings.Contains(string(r.body), `"content":"`+greeting+`"`) {
			t.Errorf("invoking %s: %d %s", fn, r.status, r.body)
		}
	}
	if err := create("unsigned", "unsigned"); !isError[*types.CodeVerificationFailedException](err) {
		t.Errorf("an unsigned image: %v", err)
	}
	if err := create("other", "other"); !isError[*types.CodeVerificationFailedException](err) {
		t.Errorf("an image signed with a key not allowed: %v", err)
	}
	if err := create("stolen", "stolen"); !isError[*types.InvalidCodeSignatureException](err) {
		t.Errorf("an image with another image's signature: %v", err)
	}
}
