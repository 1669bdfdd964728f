package sandbox_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lambdagw/gateway/internal/invoke"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox"
)

// fsFunction is the test function mounting c.
func fsFunction(name string, c structs.FileSystemConfig) *structs.Function {
	return testFunction(name, func(f *structs.Function) { f.FileSystems = []structs.FileSystemConfig{c} })
}

// hostFileSystems opens specs as the agent does, closed with the test.
func hostFileSystems(t *testing.T, specs ...sandbox.FileSystemSpec) *sandbox.HostFileSystems {
	t.Helper()
	h, err := sandbox.OpenFileSystems(specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func owner(t *testing.T, p string) (uint32, uint32, os.FileMode) {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	s := st.Sys().(*syscall.Stat_t)
	return s.Uid, s.Gid, st.Mode()
}

// TestFileSystemsShared: environments of two functions mounting one access point share its
// files, made on the host with the access point's posix_user, whatever host uid each
// environment runs as; a third function without the mount sees nothing of them; a read-only
// mount refuses writes with EROFS; the mount is nosuid and nodev, a setuid file in it does not
// elevate, and the function can neither remount nor unmount it. With and without user
// namespaces; the process driver refuses file systems, saying why.
func TestFileSystemsShared(t *testing.T) {
	share := t.TempDir()
	if err := os.Chmod(share, 0o755); err != nil {
		t.Fatal(err)
	}
	fss := hostFileSystems(t, sandbox.FileSystemSpec{Name: "shared", Root: share, AccessPoints: []sandbox.AccessPointSpec{{
		Name: "team", RootDirectory: "/team/a", PosixUser: &[2]uint32{4242, 4343},
		Create: &sandbox.DirCreation{UID: 4242, GID: 4343, Mode: 0o750 | os.ModeSetgid},
	}}})
	team := structs.FileSystemConfig{FileSystem: "shared", AccessPoint: "team", LocalMountPath: "/mnt/shared"}
	for _, dc := range drivers() {
		t.Run(dc.name, func(t *testing.T) {
			h := newHarness(t, dc.new(t), func(c *sandbox.ManagerConfig) { c.FileSystems = fss })
			writer := fsFunction("writer", team)
			if dc.name == "process" {
				if _, err := h.m.Invoke(context.Background(), writer, request(`{}`)); err == nil || !strings.Contains(err.Error(), "/mnt") {
					t.Fatalf("the process driver should refuse file systems, naming /mnt: %v", err)
				}
				return
			}
			file := dc.name + ".txt"
			if got := decode(t, callFn(t, h, writer, `{"mode":"writefile","path":"/mnt/shared/`+file+`","value":"from the writer"}`).Payload); got["error"] != "" {
				t.Fatalf("writing: %v", got)
			}
			// The access point's root was made with its creation_info, the file with its posix_user.
			if uid, gid, mode := owner(t, filepath.Join(share, "team", "a")); uid != 4242 || gid != 4343 || mode.Perm() != 0o750 || mode&os.ModeSetgid == 0 {
				t.Errorf("root directory: %d:%d %v", uid, gid, mode)
			}
			if uid, gid, _ := owner(t, filepath.Join(share, "team", "a", file)); uid != 4242 || gid != 4343 {
				t.Errorf("the file on the host is %d:%d, want the posix_user 4242:4343", uid, gid)
			}
			reader := fsFunction("reader", team)
			if got := decode(t, callFn(t, h, reader, `{"mode":"readfile","path":"/mnt/shared/`+file+`"}`).Payload); got["content"] != "from the writer" {
				t.Fatalf("the reader read %v", got)
			}
			// Seen from inside, the files are the runtime user's own.
			if got := decode(t, callFn(t, h, reader, `{"mode":"stat","path":"/mnt/shared/`+file+`"}`).Payload); got["uid"] != float64(993) || got["gid"] != float64(990) {
				t.Errorf("inside, the file is %v", got)
			}
			// The reader overwrites the writer's file: the same identity on the file system.
			if got := decode(t, callFn(t, h, reader, `{"mode":"writefile","path":"/mnt/shared/`+file+`","value":"from the reader"}`).Payload); got["error"] != "" {
				t.Errorf("the reader cannot write the writer's file: %v", got)
			}
			other := testFunction("other", nil)
			if got := decode(t, callFn(t, h, other, `{"mode":"readfile","path":"/mnt/shared/`+file+`"}`).Payload); got["error"] == "" {
				t.Errorf("a function without the mount read the file: %v", got)
			}
			ro := team
			ro.ReadOnly, ro.LocalMountPath = true, "/mnt/ro/data"
			roFn := fsFunction("ro", ro)
			if got := decode(t, callFn(t, h, roFn, `{"mode":"readfile","path":"/mnt/ro/data/`+file+`"}`).Payload); got["content"] != "from the reader" {
				t.Errorf("read-only mount: %v", got)
			}
			if got := decode(t, callFn(t, h, roFn, `{"mode":"writefile","path":"/mnt/ro/data/x","value":"x"}`).Payload); !strings.Contains(got["error"].(string), "read-only file system") {
				t.Errorf("writing in a read-only mount: %v", got)
			}
			// /mnt itself is root's: nothing can be made beside the mount.
			if got := decode(t, callFn(t, h, roFn, `{"mode":"writefile","path":"/mnt/x","value":"x"}`).Payload); got["error"] == "" {
				t.Errorf("/mnt is writable")
			}
			mi := decode(t, callFn(t, h, writer, `{"mode":"mountinfo"}`).Payload)
			var line string
			for _, l := range mi["lines"].([]any) {
				if f := strings.Fields(l.(string)); len(f) > 5 && f[4] == "/mnt/shared" {
					line = l.(string)
				}
			}
			if f := strings.Fields(line); len(f) < 6 || !strings.Contains(f[5], "nosuid") || !strings.Contains(f[5], "nodev") || !strings.Contains(f[5], "idmapped") {
				t.Errorf("the mount's line in the environment: %q", line)
			}
			// A setuid-root program in the share runs as the sandbox user.
			suid := filepath.Join(share, "team", "a", "whoami-"+dc.name)
			copyFile(t, filepath.Join(codeDir, "bootstrap"), suid)
			if err := os.Chown(suid, 0, 0); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(suid, 0o4755); err != nil {
				t.Fatal(err)
			}
			if got := decode(t, callFn(t, h, writer, `{"mode":"exec","path":"/mnt/shared/whoami-`+dc.name+`","value":"whoami"}`).Payload); got["output"] != "euid=993 egid=990" {
				t.Errorf("a setuid program in the share: %v", got)
			}
			got := decode(t, callFn(t, h, roFn, `{"mode":"remount","path":"/mnt/ro/data"}`).Payload)
			t.Logf("remounting: %v", got)
			for op, errno := range got {
				if errno == "ok" {
					t.Errorf("the function could %s the read-only mount: %v", op, got)
				}
			}
			if got := decode(t, callFn(t, h, roFn, `{"mode":"writefile","path":"/mnt/ro/data/x","value":"x"}`).Payload); got["error"] == "" {
				t.Errorf("the read-only mount became writable")
			}
		})
	}
	// Every environment's file system was unmounted on the host when it went.
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err != nil {
		t.Fatal(err)
	} else if strings.Contains(string(mi), " "+share) {
		t.Errorf("a file system is still mounted:\n%s", mi)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFileSystemsHostile: a function that may write in a whole file system cannot point another
// function's access point out of it: once it swapped the access point's folder for a symbolic
// link to the host's /etc, the access point's next environment fails to start with
// EFSMountFailureException's error instead of mounting the host's /etc, and one already running
// keeps its folder. Links in the share resolve inside the environment, never on the host.
func TestFileSystemsHostile(t *testing.T) {
	share := t.TempDir()
	if err := os.Chown(share, sandbox.DefaultFileSystemUID, sandbox.DefaultFileSystemGID); err != nil {
		t.Fatal(err)
	}
	fss := hostFileSystems(t, sandbox.FileSystemSpec{Name: "shared", Root: share, AccessPoints: []sandbox.AccessPointSpec{{
		Name: "team", RootDirectory: "/team", PosixUser: &[2]uint32{sandbox.DefaultFileSystemUID, sandbox.DefaultFileSystemGID},
		Create: &sandbox.DirCreation{UID: sandbox.DefaultFileSystemUID, GID: sandbox.DefaultFileSystemGID, Mode: 0o755},
	}}})
	h := newHarness(t, newLibcontainer(t, "default", true), func(c *sandbox.ManagerConfig) { c.FileSystems = fss })
	victim := fsFunction("victim", structs.FileSystemConfig{FileSystem: "shared", AccessPoint: "team", LocalMountPath: "/mnt/team"})
	if got := decode(t, callFn(t, h, victim, `{"mode":"writefile","path":"/mnt/team/mine","value":"v"}`).Payload); got["error"] != "" {
		t.Fatal(got)
	}
	// Hostile mounts the whole file system with the sandbox user's identity, the access point's
	// too: it may rename the access point's folder.
	hostile := fsFunction("hostile", structs.FileSystemConfig{FileSystem: "shared", LocalMountPath: "/mnt/all"})
	if got := decode(t, callFn(t, h, hostile, `{"mode":"symlink","path":"/mnt/all/team","value":"/etc"}`).Payload); got["error"] != "" {
		t.Fatalf("the hostile function could not swap the folder: %v", got)
	}
	if target, err := os.Readlink(filepath.Join(share, "team")); err != nil || target != "/etc" {
		t.Fatalf("the swap did not happen on the host: %q %v", target, err)
	}
	// The warm environment keeps the folder it mounted (now team.old on the host).
	if got := decode(t, callFn(t, h, victim, `{"mode":"readfile","path":"/mnt/team/mine"}`).Payload); got["content"] != "v" {
		t.Errorf("the running environment lost its folder: %v", got)
	}
	// A new environment of the access point is refused.
	fresh := fsFunction("fresh", structs.FileSystemConfig{FileSystem: "shared", AccessPoint: "team", LocalMountPath: "/mnt/team"})
	_, err := h.m.Invoke(context.Background(), fresh, request(`{"mode":"readfile","path":"/mnt/team/passwd"}`))
	if !errors.Is(err, invoke.ErrFileSystem) || !strings.Contains(err.Error(), "not a folder of the file system") {
		t.Fatalf("an access point whose folder became a link to /etc: %v", err)
	}
	// Links in the share are read inside the environment: /etc/hostname is the host's, not
	// the environment's (whose root has none).
	if _, err := os.Stat("/etc/hostname"); err != nil {
		t.Skip("the host has no /etc/hostname to tell the two apart")
	}
	for _, link := range []string{"/etc/hostname", "../../../../../../etc/hostname"} {
		if err := os.Remove(filepath.Join(share, "link")); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.Symlink(link, filepath.Join(share, "link")); err != nil {
			t.Fatal(err)
		}
		if got := decode(t, callFn(t, h, hostile, `{"mode":"readfile","path":"/mnt/all/link"}`).Payload); got["error"] == "" {
			t.Errorf("a link to %s in the share read the host's file: %v", link, got)
		}
	}
}

// TestFileSystemWithoutIDMapping: a file system whose kernel driver cannot be ID-mapped (ramfs
// here, NFS on Linux so far) fails the environment with invoke.ErrFileSystem saying so, and
// leaves nothing mounted.
func TestFileSystemWithoutIDMapping(t *testing.T) {
	d := newLibcontainer(t, "default", true)
	share := t.TempDir()
	if err := syscall.Mount("ramfs", share, "ramfs", 0, "mode=755"); err != nil {
		t.Skipf("no ramfs to try: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(share, syscall.MNT_DETACH) })
	h := newHarness(t, d, func(c *sandbox.ManagerConfig) {
		c.FileSystems = hostFileSystems(t, sandbox.FileSystemSpec{Name: "ram", Root: share})
	})
	fn := fsFunction("ram", structs.FileSystemConfig{FileSystem: "ram", LocalMountPath: "/mnt/ram"})
	_, err := h.m.Invoke(context.Background(), fn, request(`{}`))
	if !errors.Is(err, invoke.ErrFileSystem) || !strings.Contains(err.Error(), "does not support ID-mapped mounts") {
		t.Fatalf("a file system that cannot be ID-mapped: %v", err)
	}
	// The ramfs itself, and no staged clone of it.
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Count(string(mi), " - ramfs ") != 1 {
		t.Errorf("staged mounts left:\n%s", mi)
	}
}

// TestFileSystemNoIDMap: a file system mounted without an ID mapping (NFS's way: the server maps identities): the
// mount works, the runtime's user being its own host uid there.
func TestFileSystemNoIDMap(t *testing.T) {
	d := newLibcontainer(t, "default", false)
	share := t.TempDir()
	if err := syscall.Mount("ramfs", share, "ramfs", 0, "mode=777"); err != nil {
		t.Skipf("no ramfs to try: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(share, syscall.MNT_DETACH) })
	h := newHarness(t, d, func(c *sandbox.ManagerConfig) {
		c.FileSystems = hostFileSystems(t, sandbox.FileSystemSpec{Name: "ram", Root: share, NoIDMap: true})
	})
	fn := fsFunction("ram", structs.FileSystemConfig{FileSystem: "ram", LocalMountPath: "/mnt/ram"})
	if got := decode(t, callFn(t, h, fn, `{"mode":"writefile","path":"/mnt/ram/f","value":"x"}`).Payload); got["error"] != "" {
		t.Fatalf("writing: %v", got)
	}
	if uid, gid, _ := owner(t, filepath.Join(share, "f")); uid != 993 || gid != 990 {
		t.Errorf("the file is %d:%d on the host, want the runtime's own 993:990", uid, gid)
	}
	mi := decode(t, callFn(t, h, fn, `{"mode":"mountinfo"}`).Payload)
	for _, l := range mi["lines"].([]any) {
		if f := strings.Fields(l.(string)); len(f) > 5 && f[4] == "/mnt/ram" && (!strings.Contains(f[5], "nosuid") || strings.Contains(f[5], "idmapped")) {
			t.Errorf("the mount: %s", l)
		}
	}
}
