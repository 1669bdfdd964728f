package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lambdagw/gateway/gateway/httpapi"
	"github.com/lambdagw/gateway/plugins/host"
)

// The node's health, as /v1/health and /v1/health/ready report it. Every answer reads what the
// node already knows (Raft's own view, the plugin supervisor's state, flags) or what a
// background loop checked last (disk space, the sandbox driver's folders): a health poll costs
// no I/O and no call to a peer.

// maxApplyLag is how many committed entries this node may not have applied yet and still count
// as caught up (a burst of writes is applied within moments).
const maxApplyLag = 64

// minFreeBytes and minFreeRatio: the data dir's file system fails the disk check when its free
// space is below the smaller of the two (1 GiB, or 5% of a small disk).
const (
	minFreeBytes = 1 << 30
	minFreeRatio = 0.05
)

// sysCheckInterval is how often the background loop checks the disk and the sandbox.
const sysCheckInterval = 10 * time.Second

// raftView is what the health checks read of the cluster node.
type raftView interface {
	// Leader returns the leader's ID ("" when none is known).
	Leader() (id, addr string)
	// Stats are Raft's counters (applied_index, commit_index).
	Stats() map[string]string
}

// health implements httpapi.Health.
type health struct {
	raft    raftView
	plugins func() []host.Status // nil: no plugins
	// started is set once the node serves; draining once it shuts down.
	started, draining atomic.Bool
	// dataDir is the folder whose file system the disk check reads; sandboxDir the sandbox
	// driver's state folder (written to, to prove it usable); cgroupRoot must be readable when
	// set (the libcontainer driver).
	dataDir, sandboxDir, cgroupRoot string
	sys                             atomic.Pointer[[2]httpapi.HealthCheck] // disk, sandbox
}

// Checks returns raft, store, sandbox, disk, plugins and node, in that order.
func (h *health) Checks() []httpapi.HealthCheck {
	out := make([]httpapi.HealthCheck, 0, 6)
	out = append(out, h.raftCheck(), h.storeCheck())
	if sys := h.sys.Load(); sys != nil {
		out = append(out, sys[1], sys[0])
	} else {
		out = append(out, httpapi.HealthCheck{Name: "sandbox", Detail: "not checked yet"}, httpapi.HealthCheck{Name: "disk", Detail: "not checked yet"})
	}
	out = append(out, h.pluginsCheck(), h.nodeCheck())
	return out
}

// Ready: started, not draining, a leader known, the store caught up.
func (h *health) Ready() (bool, string) {
	if c := h.nodeCheck(); !c.OK {
		return false, c.Detail
	}
	if c := h.raftCheck(); !c.OK {
		return false, c.Detail
	}
	if c := h.storeCheck(); !c.OK {
		return false, c.Detail
	}
	return true, ""
}

func (h *health) raftCheck() httpapi.HealthCheck {
	id, _ := h.raft.Leader()
	if id == "" {
		return httpapi.HealthCheck{Name: "raft", Detail: "no raft leader known: this node cannot reach a quorum of the cluster"}
	}
	return httpapi.HealthCheck{Name: "raft", OK: true, Detail: "leader " + id}
}

func (h *health) storeCheck() httpapi.HealthCheck {
	c := httpapi.HealthCheck{Name: "store"}
	if id, _ := h.raft.Leader(); id == "" {
		c.Detail = "unknown without a raft leader"
		return c
	}
	st := h.raft.Stats()
	applied, err1 := strconv.ParseUint(st["applied_index"], 10, 64)
	commit, err2 := strconv.ParseUint(st["commit_index"], 10, 64)
	if err1 != nil || err2 != nil {
		c.Detail = "raft reports no applied or commit index"
		return c
	}
	c.Detail = "applied " + strconv.FormatUint(applied, 10) + " of " + strconv.FormatUint(commit, 10) + " committed entries"
	c.OK = applied+maxApplyLag >= commit
	return c
}

func (h *health) pluginsCheck() httpapi.HealthCheck {
	c := httpapi.HealthCheck{Name: "plugins", OK: true, Detail: "none configured"}
	if h.plugins == nil {
		return c
	}
	sts := h.plugins()
	if len(sts) == 0 {
		return c
	}
	c.Detail = fmt.Sprintf("%d running", len(sts))
	var bad []string
	for _, st := range sts {
		if st.State != host.StateRunning {
			bad = append(bad, fmt.Sprintf("%s is %s (%d restarts)", st.Name, st.State, st.Restarts))
		}
	}
	if len(bad) > 0 {
		c.OK = false
		c.Detail = strings.Join(bad, "; ")
	}
	return c
}

func (h *health) nodeCheck() httpapi.HealthCheck {
	switch {
	case h.draining.Load():
		return httpapi.HealthCheck{Name: "node", Detail: "draining: shutting down"}
	case !h.started.Load():
		return httpapi.HealthCheck{Name: "node", Detail: "starting"}
	}
	return httpapi.HealthCheck{Name: "node", OK: true, Detail: "serving"}
}

// run checks the disk and the sandbox every sysCheckInterval, until ctx ends (the caller
// checks once before, so the first answer has them).
func (h *health) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(sysCheckInterval):
		}
		h.checkSystem()
	}
}

// checkSystem checks the data dir's free space and the sandbox driver's folders.
func (h *health) checkSystem() {
	var res [2]httpapi.HealthCheck
	res[0] = diskCheck(h.dataDir, minFreeBytes, minFreeRatio)
	res[1] = h.sandboxCheck()
	h.sys.Store(&res)
}

// diskCheck fails when the file system of dir has less free space than the smaller of
// minBytes and minRatio of its size.
func diskCheck(dir string, minBytes uint64, minRatio float64) httpapi.HealthCheck {
	c := httpapi.HealthCheck{Name: "disk"}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		c.Detail = "cannot read the data dir's free space: " + errText(err)
		return c
	}
	total, free := st.Blocks*uint64(st.Bsize), st.Bavail*uint64(st.Bsize)
	limit := min(minBytes, uint64(float64(total)*minRatio))
	pct := 0.0
	if total > 0 {
		pct = 100 * float64(free) / float64(total)
	}
	c.Detail = fmt.Sprintf("data dir: %d MiB free (%.1f%%)", free>>20, pct)
	c.OK = free >= limit
	if !c.OK {
		c.Detail += fmt.Sprintf(", below the %d MiB minimum", limit>>20)
	}
	return c
}

// sandboxCheck proves the sandbox driver's state folder writable (a file made and removed) and
// the cgroup hierarchy readable.
func (h *health) sandboxCheck() httpapi.HealthCheck {
	c := httpapi.HealthCheck{Name: "sandbox"}
	if h.cgroupRoot != "" {
		if _, err := os.ReadDir(h.cgroupRoot); err != nil {
			c.Detail = "the cgroup hierarchy cannot be read: " + errText(err)
			return c
		}
	}
	f, err := os.CreateTemp(h.sandboxDir, ".health-*")
	if err != nil {
		c.Detail = "the sandbox state folder is not writable: " + errText(err)
		return c
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		c.Detail = "the sandbox state folder is not writable: " + errText(err)
		return c
	}
	c.OK, c.Detail = true, "usable"
	return c
}

// errText is an error without the path it names (health answers are open to anyone).
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
