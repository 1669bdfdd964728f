package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lambdagw/gateway/internal/unpack"
)

// External extensions: every executable in /opt/extensions (a function's layers, or its image)
// is started before the runtime, in name order, as the runtime is (user, environment,
// namespaces, cgroup); the runtime is started once each has registered under its file name.

// extensionsDir is where external extensions are found, inside the environment.
const extensionsDir = "/opt/extensions"

// externalShutdownBudget is how long the extensions and the runtime get at shutdown when an
// external extension runs (Lambda's 2,000 ms).
const externalShutdownBudget = 2000 * time.Millisecond

// externalExtensions lists the names in /opt/extensions as the environment will see it: the
// function's layers merged at /opt, or else the root's (an image's layers, base first, with
// overlayfs' whiteouts and opaque folders). A symlink counts: it is the environment's to
// resolve, never the host's.
func externalExtensions(optLayers, rootLayers []string) []string {
	sub := "extensions"
	layers := optLayers
	if len(layers) == 0 {
		layers, sub = rootLayers, filepath.Join("opt", "extensions")
	}
	names := map[string]bool{}
	for _, l := range layers {
		dir := filepath.Join(l, sub)
		if unpack.IsOpaque(dir) || unpack.IsOpaque(filepath.Dir(dir)) {
			clear(names)
		}
		// Layers are untrusted: a symlink on the way is never followed on the host (it would
		// list a host folder). Inside the environment it may well resolve; such a layer's
		// extensions are not started.
		if hidden, ok := realDirs(l, sub); !ok {
			if hidden {
				clear(names) // a file, whiteout or symlink in this layer hides the folder below
			}
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, ent := range entries {
			info, err := ent.Info()
			if err != nil {
				continue
			}
			switch m := info.Mode(); {
			case unpack.IsWhiteout(info):
				delete(names, ent.Name())
			case m.IsRegular() && m&0o111 != 0, m&os.ModeSymlink != 0:
				names[ent.Name()] = true
			default:
				delete(names, ent.Name()) // a folder or a plain file hides a lower layer's
			}
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// realDirs reports whether every component of sub under root is a real folder (no symlink);
// hidden: one exists but is not a folder.
func realDirs(root, sub string) (hidden, ok bool) {
	p := root
	for _, c := range strings.Split(sub, string(filepath.Separator)) {
		p = filepath.Join(p, c)
		st, err := os.Lstat(p)
		if err != nil {
			return false, false
		}
		if !st.IsDir() {
			return true, false
		}
	}
	return false, true
}

// initExtensions starts the external extensions, then the runtime once each registered. Any
// failure fails Init with Extension.Crash, as on Lambda; so does an extension that exits.
func (e *environment) initExtensions() {
	pr, pw, err := os.Pipe()
	if err != nil {
		e.failInit(&initError{errorType: "Extension.Crash", status: "error", message: "creating the extensions' output pipe: " + err.Error()})
		return
	}
	xo := newOutput(e, pr)
	xo.extension = true
	e.mu.Lock()
	e.extOut = xo
	e.mu.Unlock()
	go xo.run()
	for _, name := range e.external {
		p, err := e.inst.Spawn(context.Background(), []string{extensionsDir + "/" + name}, pw)
		if err != nil {
			pw.Close()
			e.out.line(fmt.Sprintf("EXTENSION Name: %s State: LaunchError Error: %v", name, err))
			e.failInit(&initError{errorType: "Extension.LaunchError", status: "error", message: fmt.Sprintf("extension %s: %v", name, err)})
			return
		}
		go e.watchExtension(name, p)
	}
	pw.Close() // the extensions hold their copies: the reader ends when the last exits
	select {
	case <-e.extRegistered:
	case <-e.dead:
		return
	}
	if err := e.execRuntime(context.Background()); err != nil {
		e.failInit(&initError{errorType: "Runtime.ExitError", status: "error", message: err.Error()})
	}
}

// watchExtension handles an external extension's exit: Extension.Crash during Init, a reset of
// the environment after it (the invocation in progress fails with it), an acknowledgement of
// SHUTDOWN during the shutdown.
func (e *environment) watchExtension(name string, p Process) {
	select {
	case <-p.Exited():
	case <-e.dead:
		return
	}
	st := p.ExitStatus()
	e.mu.Lock()
	sd := e.extShutdown
	for _, x := range e.exts {
		if x.name != name {
			continue
		}
		x.exited = true
		if sd != nil && x.shutdownSent {
			x.shutdownSent = false
			if sd.left--; sd.left == 0 {
				close(sd.done)
			}
		}
	}
	if sd != nil {
		e.mu.Unlock()
		return
	}
	inited := e.phase.initialised()
	dead := e.phase == phaseDead
	e.mu.Unlock()
	if dead {
		return
	}
	e.mu.Lock()
	xo := e.extOut
	e.mu.Unlock()
	xo.drain()
	e.out.line(fmt.Sprintf("EXTENSION Name: %s State: Crashed Error: %s", name, st))
	if !inited {
		e.failInit(&initError{errorType: "Extension.Crash", status: "error", message: fmt.Sprintf("extension %s exited: %s", name, st)})
		return
	}
	e.resetWith("extension crashed", "error", "Extension.Crash")
}
