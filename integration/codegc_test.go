package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
)

// TestCodeGC: with code_gc { grace = "3s", interval = "1s" }, a function created with code A,
// published as version 1, then updated to B and then to C. B's zip and unpacked tree stay for the
// grace period, then are deleted from data_dir; A (version 1's) and C ($LATEST's) stay, and both
// still run with their own code.
func TestCodeGC(t *testing.T) {
	needRoot(t)
	a := startAgent(t, agentOptions{node: "gc", top: "code_gc {\n  grace    = \"3s\"\n  interval = \"1s\"\n}\n"})
	client := a.sdk()
	ctx := context.Background()
	zips, shas := map[string][]byte{}, map[string]string{}
	for _, v := range []string{"A", "B", "C"} {
		zips[v] = codeZip(t, map[string]string{"version.txt": v})
		sum := sha256.Sum256(zips[v])
		shas[v] = hex.EncodeToString(sum[:])
	}
	// onDisk reports whether code v's zip and unpacked tree are in the code store.
	onDisk := func(v string) (zip, tree bool) {
		_, errZip := os.Stat(filepath.Join(a.dataDir, "code", "blobs", shas[v]))
		_, errTree := os.Stat(filepath.Join(a.dataDir, "code", "unpacked", shas[v]))
		return errZip == nil, errTree == nil
	}
	// runs checks that fn (name or name:qualifier) runs code v.
	runs := func(fn, v string) {
		t.Helper()
		r := a.invoke(fn, `{"mode":"readfile","path":"/var/task/version.txt"}`, nil)
		if r.status != 200 || decodeJSON(t, r.body)["content"] != v {
			t.Fatalf("%s: %d %s, want code %s", fn, r.status, r.body, v)
		}
	}
	createFunction(t, client, "gcfn", zips["A"], nil)
	runs("gcfn", "A")
	if out, err := client.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("gcfn")}); err != nil || aws.ToString(out.Version) != "1" {
		t.Fatalf("PublishVersion: %v", err)
	}
	update := func(v string) {
		t.Helper()
		if _, err := client.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("gcfn"), ZipFile: zips[v]}); err != nil {
			t.Fatalf("UpdateFunctionCode to %s: %v", v, err)
		}
	}
	update("B")
	runs("gcfn", "B")
	update("C")
	// B is unreferenced from now on, but within its grace period.
	if zip, tree := onDisk("B"); !zip || !tree {
		t.Fatalf("B's code was deleted at once: zip %v, tree %v", zip, tree)
	}
	runs("gcfn", "C")
	waitFor(t, "B's zip and tree deleted", 30*time.Second, func() bool {
		zip, tree := onDisk("B")
		return !zip && !tree
	})
	for _, v := range []string{"A", "C"} {
		if zip, tree := onDisk(v); !zip || !tree {
			t.Errorf("code %s, still run, was deleted: zip %v, tree %v", v, zip, tree)
		}
	}
	runs("gcfn", "C")
	runs("gcfn:1", "A")
	if !strings.Contains(a.out.String(), fmt.Sprintf("deleted code no function or version runs: sha256=%s", shas["B"])) {
		t.Errorf("the agent's log does not say B's code was deleted")
	}
}
