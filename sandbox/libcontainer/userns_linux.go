//go:build linux && cgo

package libcontainer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// User namespaces: each environment gets its own range of IDsPerEnvironment host uids and gids,
// mapped to 0-65535 inside, so the runtime's uid 993 is a host uid no other environment (of any
// function, or of another agent on the machine) has: two functions never share a uid, and with
// it a keyring, inotify and mqueue quotas, or files.

// IDsPerEnvironment is the size of an environment's uid and gid range: the 16-bit range image
// layers may use (nobody is 65534).
const IDsPerEnvironment = 65536

// IDRange is a range of host uids and gids (the same numbers for both) the driver hands out to
// environments in blocks of IDsPerEnvironment.
type IDRange struct {
	Start, Count int64
}

func (r IDRange) String() string { return fmt.Sprintf("%d-%d", r.Start, r.Start+r.Count-1) }

// DefaultIDRange lies above systemd's range for containers (0x80000-0x6FFFFFFF) and below its
// foreign range (0x7FFE0000): 4,094 environments.
var DefaultIDRange = IDRange{Start: 0x70000000, Count: 0x7FFE0000 - 0x70000000}

// subIDUser is the /etc/subuid and /etc/subgid user whose range the driver takes, as Podman
// takes "containers" for --userns=auto.
const subIDUser = "lambdagw"

// DetectUserNamespaces says whether environments can have their own user namespaces here, and
// with which host IDs: the subordinate range of user lambdagw when /etc/subuid and /etc/subgid
// give one, else DefaultIDRange when it overlaps no subordinate range of another user.
func DetectUserNamespaces() (IDRange, error) {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return IDRange{}, errors.New("the kernel has no user namespaces")
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return IDRange{}, errors.New("user namespaces are disabled (user.max_user_namespaces is 0)")
	}
	uids, err := readSubIDs("/etc/subuid")
	if err != nil {
		return IDRange{}, err
	}
	gids, err := readSubIDs("/etc/subgid")
	if err != nil {
		return IDRange{}, err
	}
	u, uok := uids[subIDUser]
	g, gok := gids[subIDUser]
	switch {
	case uok && gok:
		if u != g {
			return IDRange{}, fmt.Errorf("the subordinate ranges of %s differ in /etc/subuid (%s) and /etc/subgid (%s): give it the same range in both", subIDUser, u, g)
		}
		if u.Count < IDsPerEnvironment {
			return IDRange{}, fmt.Errorf("the subordinate range of %s (%s) holds less than one environment's %d IDs", subIDUser, u, IDsPerEnvironment)
		}
		return u, nil
	case uok || gok:
		return IDRange{}, fmt.Errorf("%s has a subordinate range in only one of /etc/subuid and /etc/subgid", subIDUser)
	}
	for _, m := range []map[string]IDRange{uids, gids} {
		for user, r := range m {
			if r.Start < DefaultIDRange.Start+DefaultIDRange.Count && DefaultIDRange.Start < r.Start+r.Count {
				return IDRange{}, fmt.Errorf("the default range %s overlaps %s's subordinate range %s: give %s a range of its own in /etc/subuid and /etc/subgid",
					DefaultIDRange, user, r, subIDUser)
			}
		}
	}
	return DefaultIDRange, nil
}

// readSubIDs reads a subordinate ID file (user:start:count lines); a missing file is empty.
func readSubIDs(path string) (map[string]IDRange, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	out := map[string]IDRange{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || strings.HasPrefix(parts[0], "#") {
			continue
		}
		start, err1 := strconv.ParseInt(parts[1], 10, 64)
		count, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 != nil || err2 != nil || start < 0 || count <= 0 {
			continue
		}
		if prev, ok := out[parts[0]]; !ok || count > prev.Count {
			out[parts[0]] = IDRange{Start: start, Count: count}
		}
	}
	return out, sc.Err()
}

// idLockFile coordinates the blocks of every driver on the machine: a block is taken by an
// open-file-description lock on its byte of this file, which the kernel drops when the agent
// dies, so no block is ever lost or given twice.
const idLockFile = "/run/lambdagw/userns.lock"

// idAllocator hands out blocks of a range.
type idAllocator struct {
	rng  IDRange
	f    *os.File
	mu   sync.Mutex
	used map[int64]bool // blocks this driver holds
	next int64
}

func newIDAllocator(rng IDRange) (*idAllocator, error) {
	if err := os.MkdirAll(filepath.Dir(idLockFile), 0o711); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(idLockFile), err)
	}
	f, err := os.OpenFile(idLockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the user namespace lock file: %w", err)
	}
	return &idAllocator{rng: rng, f: f, used: map[int64]bool{}}, nil
}

// take locks a free block and returns its first host ID.
func (a *idAllocator) take() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	blocks := a.rng.Count / IDsPerEnvironment
	for i := int64(0); i < blocks; i++ {
		b := (a.next + i) % blocks
		if a.used[b] {
			continue
		}
		start := a.rng.Start + b*IDsPerEnvironment
		// The lock's byte is the block's first ID, so drivers with different ranges that
		// overlap still exclude each other.
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: start, Len: 1}
		if err := unix.FcntlFlock(a.f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
				continue // another agent's
			}
			return 0, fmt.Errorf("locking user namespace IDs %d: %w", start, err)
		}
		a.used[b] = true
		a.next = b + 1
		return start, nil
	}
	return 0, fmt.Errorf("every block of %d IDs in %s is in use", IDsPerEnvironment, a.rng)
}

// release gives a block back once nothing of its environment runs any more.
func (a *idAllocator) release(start int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: start, Len: 1}
	_ = unix.FcntlFlock(a.f.Fd(), unix.F_OFD_SETLK, &lk)
	delete(a.used, (start-a.rng.Start)/IDsPerEnvironment)
}

func (a *idAllocator) close() { a.f.Close() }

// worldTraversable checks that a user without privileges on the host (an environment's mapped
// root, setting up its mounts) can reach path: every folder above it searchable by others.
func worldTraversable(path string) error {
	for p := path; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users (mode %v)", p, st.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}
