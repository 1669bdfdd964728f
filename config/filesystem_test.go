package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lambdagw/gateway/internal/structs"
)

// TestFileSystemBlocks: an agent's host folders (a relative source from the agent file's
// folder) and NFS exports, with access points; the gateway's list of what the node declares.
func TestFileSystemBlocks(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := write(t, dir, "agent.hcl", `
file_system "shared" {
  source = "./data"
  access_point "team-a" {
    root_directory = "/team-a"
    posix_user {
      uid = 1000
      gid = 1001
    }
    creation_info {
      owner_uid   = 0
      owner_gid   = 1001
      permissions = "2775"
    }
  }
  access_point "whole" {}
}
file_system "archive" {
  type    = "nfs"
  source  = "nfs.example.com:/srv/archive"
  options = ["vers=4.2", "soft"]
}
`)
	a, _, diags := LoadAgent(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(a.FileSystems) != 2 {
		t.Fatalf("%d file systems", len(a.FileSystems))
	}
	shared, archive := a.FileSystems[0], a.FileSystems[1]
	if shared.Name != "shared" || shared.Type != FileSystemBind || shared.Source != filepath.Join(dir, "data") || len(shared.AccessPoints) != 2 {
		t.Fatalf("shared: %+v", shared)
	}
	ap := shared.AccessPoints[0]
	if ap.Name != "team-a" || ap.RootDirectory != "/team-a" || *ap.PosixUser != (PosixUser{1000, 1001}) ||
		*ap.CreationInfo != (CreationInfo{OwnerUID: 0, OwnerGID: 1001, Permissions: 0o775 | os.ModeSetgid}) {
		t.Fatalf("team-a: %+v %+v %+v", ap, ap.PosixUser, ap.CreationInfo)
	}
	if whole := shared.AccessPoints[1]; whole.RootDirectory != "/" || whole.PosixUser != nil || whole.CreationInfo != nil {
		t.Fatalf("whole: %+v", whole)
	}
	if archive.Type != FileSystemNFS || archive.Source != "nfs.example.com:/srv/archive" || !reflect.DeepEqual(archive.Options, []string{"vers=4.2", "soft"}) {
		t.Fatalf("archive: %+v", archive)
	}
	want := []structs.NodeFileSystem{{Name: "shared", AccessPoints: []string{"team-a", "whole"}}, {Name: "archive"}}
	if got := a.NodeFileSystems(); !reflect.DeepEqual(got, want) {
		t.Fatalf("NodeFileSystems %+v", got)
	}
}

// TestFileSystemDiagnostics: each mistake in a file_system block is named on its line.
func TestFileSystemDiagnostics(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "file", "not a folder")
	ap := func(body string) string {
		return "file_system \"s\" {\n  source = \"data\"\n  access_point \"a\" {\n" + body + "  }\n}\n"
	}
	cases := []struct {
		name, src, summary, detail string
		line                       int
	}{
		{"missing source", "file_system \"s\" {\n  source = \"missing\"\n}\n", "File system source not found", "no such file or directory", 2},
		{"no source", "file_system \"s\" {\n}\n", "Missing file system source", "needs source", 1},
		{"file source", "file_system \"s\" {\n  source = \"file\"\n}\n", "Invalid file system source", "is not a folder", 2},
		{"host root", "file_system \"s\" {\n  source = \"/\"\n}\n", "Invalid file system source", "host's root", 2},
		{"bad name", "file_system \"a b\" {\n  source = \"data\"\n}\n", "Invalid file system name", `"a b"`, 1},
		{"duplicate", "file_system \"s\" {\n  source = \"data\"\n}\nfile_system \"s\" {\n  source = \"data\"\n}\n", "Duplicate file system", "also declared at", 4},
		{"bad type", "file_system \"s\" {\n  type = \"smb\"\n  source = \"data\"\n}\n", "Invalid file system type", `"smb"`, 2},
		{"bind options", "file_system \"s\" {\n  source = \"data\"\n  options = [\"ro\"]\n}\n", "Unused file system options", "nfs", 3},
		{"nfs source", "file_system \"s\" {\n  type = \"nfs\"\n  source = \"/srv/data\"\n}\n", "Invalid NFS source", "server:/export", 3},
		{"nfs suid", "file_system \"s\" {\n  type = \"nfs\"\n  source = \"nfs:/x\"\n  options = [\"suid\"]\n}\n", "Invalid NFS option", "nosuid and nodev", 4},
		{"nfs comma", "file_system \"s\" {\n  type = \"nfs\"\n  source = \"nfs:/x\"\n  options = [\"vers=4,soft\"]\n}\n", "Invalid NFS option", "without commas", 4},
		{"root dir dots", ap("    root_directory = \"/a/../../etc\"\n"), "Invalid root_directory", `"/a/../../etc"`, 4},
		{"root dir relative", ap("    root_directory = \"team\"\n"), "Invalid root_directory", `"team"`, 4},
		{"root uid", ap("    posix_user {\n      uid = 0\n      gid = 5\n    }\n"), "Root identity refused", "uid 0 is the host's root", 5},
		{"root gid", ap("    posix_user {\n      uid = 5\n      gid = 0\n    }\n"), "Root identity refused", "gid 0", 6},
		{"uid range", ap("    posix_user {\n      uid = -3\n      gid = 5\n    }\n"), "Invalid uid", "-3 is out of range", 5},
		{"no gid", ap("    posix_user {\n      uid = 5\n    }\n"), "Missing required argument", "gid", 4},
		{"permissions", ap("    creation_info {\n      owner_uid = 1\n      owner_gid = 1\n      permissions = \"rwx\"\n    }\n"), "Invalid permissions", `"rwx"`, 7},
		{"setuid dir", ap("    creation_info {\n      owner_uid = 1\n      owner_gid = 1\n      permissions = \"4755\"\n    }\n"), "Invalid permissions", "setuid", 7},
		{"ap name", "file_system \"s\" {\n  source = \"data\"\n  access_point \"a/b\" {}\n}\n", "Invalid access point name", `"a/b"`, 3},
		{"ap twice", "file_system \"s\" {\n  source = \"data\"\n  access_point \"a\" {}\n}\nfile_system \"t\" {\n  source = \"data\"\n  access_point \"a\" {}\n}\n",
			"Duplicate access point", `also declared in file_system "s"`, 7},
		{"nfs posix_user", "file_system \"s\" {\n  type = \"nfs\"\n  source = \"nfs:/x\"\n  access_point \"a\" {\n    posix_user {\n      uid = 5\n      gid = 5\n    }\n  }\n}\n", "posix_user on NFS", "all_squash", 4},
		{"process driver", "sandbox {\n  driver = \"process\"\n}\nfile_system \"s\" {\n  source = \"data\"\n}\n", "File systems need the libcontainer driver", "process driver", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, dir, "agent.hcl", c.src)
			_, _, diags := LoadAgent(p)
			for _, d := range diags {
				if d.Summary == c.summary && strings.Contains(d.Detail, c.detail) && d.Subject != nil &&
					d.Subject.Start.Line == c.line && d.Subject.Filename == p {
					return
				}
			}
			t.Fatalf("want %q (%s) at line %d, got %v", c.summary, c.detail, c.line, diags)
		})
	}
}

// TestFunctionFileSystemBlock: a function's file_system block, and its rules (the API's too) on
// the attribute's line.
func TestFunctionFileSystemBlock(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "build"), 0o755); err != nil {
		t.Fatal(err)
	}
	fnWith := func(blocks string) string {
		return "function \"f\" {\n  runtime = \"provided.al2023\"\n  code = \"build\"\n" + blocks + "}\n"
	}
	fns, _, diags := LoadFunctions(write(t, dir, "ok.hcl", fnWith(`  file_system {
    name             = "shared"
    access_point     = "team-a"
    local_mount_path = "/mnt/shared/data"
    read_only        = true
  }
`)))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := []structs.FileSystemConfig{{FileSystem: "shared", AccessPoint: "team-a", LocalMountPath: "/mnt/shared/data", ReadOnly: true}}
	if got := fns[0].FileSystems; !reflect.DeepEqual(got, want) || !reflect.DeepEqual(fns[0].Structs().FileSystems, want) {
		t.Fatalf("file systems %+v", got)
	}
	mount := func(path string) string {
		return "  file_system {\n    name = \"shared\"\n    local_mount_path = \"" + path + "\"\n  }\n"
	}
	cases := []struct {
		name, blocks, summary, detail string
		line                          int
	}{
		{"outside mnt", mount("/etc"), "Invalid local_mount_path", `"/etc" is outside /mnt`, 6},
		{"mnt itself", mount("/mnt"), "Invalid local_mount_path", "is not a folder under /mnt", 6},
		{"mnt slash", mount("/mnt/"), "Invalid local_mount_path", "is not a folder under /mnt", 6},
		{"dot dot", mount("/mnt/../etc"), "Invalid local_mount_path", `has ".."`, 6},
		{"dot", mount("/mnt/./x"), "Invalid local_mount_path", "not written plainly", 6},
		{"double slash", mount("/mnt//x"), "Invalid local_mount_path", "not written plainly", 6},
		{"space", mount("/mnt/a b"), "Invalid local_mount_path", "a character other than", 6},
		{"too long", mount("/mnt/" + strings.Repeat("x", 160)), "Invalid local_mount_path", "165 characters", 6},
		{"bad name", "  file_system {\n    name = \"a b\"\n    local_mount_path = \"/mnt/x\"\n  }\n", "Invalid file system name", `"a b"`, 5},
		{"two", mount("/mnt/a") + mount("/mnt/b"), "Too many file systems", "at most 1", 8},
		{"no path", "  file_system {\n    name = \"shared\"\n  }\n", "Missing required argument", "local_mount_path", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, dir, "f.hcl", fnWith(c.blocks))
			_, _, diags := LoadFunctions(p)
			for _, d := range diags {
				if d.Summary == c.summary && strings.Contains(d.Detail, c.detail) && d.Subject != nil &&
					d.Subject.Start.Line == c.line && d.Subject.Filename == p {
					return
				}
			}
			t.Fatalf("want %q (%s) at line %d, got %v", c.summary, c.detail, c.line, diags)
		})
	}
}
