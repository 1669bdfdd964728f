package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// fsResult is a test function's answer about a file.
type fsResult struct {
	Content, Error, Output string
	UID, GID               *int
	Lines                  []string
}

func (a *agentProc) fsCall(fn, payload string) fsResult {
	a.t.Helper()
	r := a.invoke(fn, payload, nil)
	var got fsResult
	if r.status != 200 || r.header.Get("X-Amz-Function-Error") != "" || json.Unmarshal(r.body, &got) != nil {
		a.t.Fatalf("invoking %s with %s: %d %s", fn, payload, r.status, r.body)
	}
	return got
}

// TestFileSystems: an agent's file system, through `gateway apply` and the Lambda API, on real
// sandboxes. Two functions share files through an access point (the writer's file is on the
// host with the access point's posix_user, and the reader reads it), a third without the mount
// cannot see them, a read-only mount refuses writes with EROFS, the mount is nosuid and nodev
// in the environment, a change of the mount replaces the function's environments, the API
// answers the file system and refuses one the node does not declare or a path outside /mnt, a
// node whose agent file no longer declares it answers invocations with
// EFSMountFailureException, and nothing stays mounted: not the agent's staged mounts, nor a
// file system mount a crashed run left in data_dir.
func TestFileSystems(t *testing.T) {
	needRoot(t)
	share := t.TempDir()
	if err := os.Chmod(share, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	stale := filepath.Join(dataDir, "filesystems", "old")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", stale, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(stale, syscall.MNT_DETACH) })
	fsBlock := fmt.Sprintf(`
file_system "shared" {
  source = %q
  access_point "team" {
    root_directory = "/team"
    posix_user {
      uid = 4242
      gid = 4343
    }
    creation_info {
      owner_uid   = 4242
      owner_gid   = 4343
      permissions = "0750"
    }
  }
}
`, share)
	a := startAgent(t, agentOptions{node: "fs", dataDir: dataDir, top: fsBlock})
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), stale) {
		t.Errorf("the agent left a stale file system mount of a crashed run in place")
	}
	fns := func(writerPath string) string {
		mount := func(path string, ro bool) string {
			return fmt.Sprintf("  file_system {\n    name = \"shared\"\n    access_point = \"team\"\n    local_mount_path = %q\n    read_only = %v\n  }\n", path, ro)
		}
		fn := func(name, body string) string {
			return fmt.Sprintf("function %q {\n  runtime = \"provided.al2023\"\n  code = %q\n  timeout = \"10s\"\n%s}\n", name, fnDir, body)
		}
		return fn("writer", mount(writerPath, false)) + fn("reader", mount("/mnt/shared", false)) +
			fn("other", "") + fn("viewer", mount("/mnt/ro", true))
	}
	a.apply(fns("/mnt/shared"))

	if got := a.fsCall("writer", `{"mode":"writefile","path":"/mnt/shared/note.txt","value":"from the writer"}`); got.Error != "" {
		t.Fatalf("the writer: %+v", got)
	}
	st, err := os.Stat(filepath.Join(share, "team", "note.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if s := st.Sys().(*syscall.Stat_t); s.Uid != 4242 || s.Gid != 4343 {
		t.Errorf("the writer's file is %d:%d on the host, want the access point's posix_user 4242:4343", s.Uid, s.Gid)
	}
	if st, err := os.Stat(filepath.Join(share, "team")); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("the access point's root directory: %v %v", st.Mode(), err)
	}
	if got := a.fsCall("reader", `{"mode":"readfile","path":"/mnt/shared/note.txt"}`); got.Content != "from the writer" {
		t.Errorf("the reader read %+v", got)
	}
	if got := a.fsCall("other", `{"mode":"readfile","path":"/mnt/shared/note.txt"}`); got.Error == "" {
		t.Errorf("a function without the file system read %+v", got)
	}
	if got := a.fsCall("viewer", `{"mode":"readfile","path":"/mnt/ro/note.txt"}`); got.Content != "from the writer" {
		t.Errorf("the read-only mount read %+v", got)
	}
	if got := a.fsCall("viewer", `{"mode":"writefile","path":"/mnt/ro/x","value":"x"}`); !strings.Contains(got.Error, "read-only file system") {
		t.Errorf("writing in the read-only mount: %+v", got)
	}
	var line string
	for _, l := range a.fsCall("reader", `{"mode":"mountinfo"}`).Lines {
		if f := strings.Fields(l); len(f) > 5 && f[4] == "/mnt/shared" {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 6 || !strings.Contains(f[5], "nosuid") || !strings.Contains(f[5], "nodev") {
		t.Errorf("/mnt/shared in the environment's mountinfo: %q", line)
	}

	// The API answers the file system in the gateway's ARN, and refuses what the node lacks.
	sdk := a.sdk()
	ctx := context.Background()
	got, err := sdk.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("viewer")})
	if err != nil {
		t.Fatal(err)
	}
	if fc := got.FileSystemConfigs; len(fc) != 1 || aws.ToString(fc[0].Arn) != "arn:lambdagw:file-system:us-east-1::shared/team" || aws.ToString(fc[0].LocalMountPath) != "/mnt/ro" {
		t.Errorf("FileSystemConfigs: %+v", fc)
	}
	for arn, path := range map[string]string{
		"arn:lambdagw:file-system:us-east-1::elsewhere":                        "/mnt/x",
		"arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/nobody": "/mnt/x",
		"arn:lambdagw:file-system:us-east-1::shared/team":                      "/mnt/../etc",
	} {
		_, err := sdk.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("other"),
			FileSystemConfigs: []types.FileSystemConfig{{Arn: aws.String(arn), LocalMountPath: aws.String(path)}}})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValueException" {
			t.Errorf("%s at %s: %v", arn, path, err)
		}
	}
	if out, _, code := a.cli("plan", writeFunctions(t, fns("/mnt/shared"))); code != 0 || !strings.Contains(out, "Plan: 0 to change") {
		t.Errorf("plan after apply exited %d:\n%s", code, out)
	}

	// A change of the mount is a change of configuration: the next call runs in a new
	// environment that has it.
	a.apply(fns("/mnt/moved"))
	if got := a.fsCall("writer", `{"mode":"readfile","path":"/mnt/moved/note.txt"}`); got.Content != "from the writer" {
		t.Errorf("after moving the mount: %+v", got)
	}

	// The same node without the file system in its agent file: the function is not run without it.
	a.stop()
	conf, err := os.ReadFile(a.confPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.confPath, []byte(strings.Replace(string(conf), fsBlock, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	a.start()
	r := a.invoke("reader", `{"mode":"readfile","path":"/mnt/shared/note.txt"}`, nil)
	if r.status != 403 || r.header.Get("X-Amzn-ErrorType") != "EFSMountFailureException" || !strings.Contains(string(r.body), `file system \"shared/team\"`) {
		t.Errorf("invoking a function whose file system the node lacks: %d %s %s", r.status, r.header.Get("X-Amzn-ErrorType"), r.body)
	}
	a.stop()
	checkNothingLeft(t, a)
}

// TestFileSystemNFSUnavailable: an NFS file system the agent cannot mount (here: a kernel
// without an NFS client) stops the agent at start with an error naming it, and leaves nothing
// mounted or made in data_dir.
func TestFileSystemNFSUnavailable(t *testing.T) {
	needRoot(t)
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || strings.Contains(string(b), "\tnfs") {
		t.Skip("this kernel has an NFS client: the refusal is for kernels without one")
	}
	a := newAgent(t, agentOptions{node: "nfs", top: `
file_system "archive" {
  type    = "nfs"
  source  = "127.0.0.1:/srv/archive"
  options = ["vers=4.2", "soft", "timeo=10"]
}
`})
	<-a.exited
	out := a.out.String()
	if !strings.Contains(out, "file system archive: mounting the NFS export 127.0.0.1:/srv/archive") || !strings.Contains(out, "no NFS client") {
		t.Errorf("the agent's output does not say why it stopped:\n%s", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(a.dataDir, "filesystems")); len(ents) != 0 {
		t.Errorf("left in data_dir/filesystems: %v", ents)
	}
	checkNothingLeft(t, a)
}
