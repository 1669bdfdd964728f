package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lambdagw/gateway/internal/structs"
)

// Images gives the root file system of container-image functions (the agent's image store
// implements it).
type Images interface {
	// Root returns the image a resolved reference (pinned to its digest) names, every layer
	// unpacked on this node, fetching what is missing.
	Root(ctx context.Context, resolvedURI string) (*ImageRoot, error)
}

// ImageRoot is an image as an environment uses it.
type ImageRoot struct {
	// Layers are host folders, the base first, merged read-only into the root.
	Layers     []string
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE
	WorkingDir string
}

// Runtimes gives the base images of managed runtimes (the agent's runtime blocks).
type Runtimes interface {
	// RuntimeImage returns the image (pinned to its digest) of the managed runtime name, or why
	// this node cannot run it.
	RuntimeImage(name string) (string, error)
}

// errNoImages says the node was given no image store.
var errNoImages = errors.New("this node serves no container images")

// imageSpec fills spec for an image function: its root, its command (the function's ImageConfig
// over the image's ENTRYPOINT, CMD and WORKDIR, as Lambda takes them) and its environment (the
// image's ENV, then the function's variables and Lambda's own over it). The image's USER is not
// used: every function runs as the sandbox user.
func (m *Manager) imageSpec(ctx context.Context, fn *structs.Function, version, envID string, provisioned bool, spec *Spec) error {
	if m.cfg.Images == nil {
		return errNoImages
	}
	root, err := m.cfg.Images.Root(ctx, fn.ResolvedImageURI)
	if err != nil {
		return fmt.Errorf("getting image %s: %w", fn.ResolvedImageURI, err)
	}
	entry, cmd, wd := root.Entrypoint, root.Cmd, root.WorkingDir
	if ic := fn.ImageConfig; ic != nil {
		if len(ic.EntryPoint) > 0 {
			entry = ic.EntryPoint
		}
		if len(ic.Command) > 0 {
			cmd = ic.Command
		}
		if ic.WorkingDirectory != "" {
			wd = ic.WorkingDirectory
		}
	}
	args := append(append([]string(nil), entry...), cmd...)
	if len(args) == 0 {
		return fmt.Errorf("image %s has no ENTRYPOINT or CMD, and the function sets none", fn.ResolvedImageURI)
	}
	withHandler := fn
	if fn.Handler == "" && len(cmd) > 0 {
		c := *fn
		c.Handler = cmd[0] // as Lambda: the CMD names the handler
		withHandler = &c
	}
	spec.CodeDir = ""
	spec.RootLayers = root.Layers
	spec.Args = args
	spec.Cwd = wd
	spec.Env = mergeEnv(root.Env, runtimeEnv(withHandler, version, m.cfg.Region, envID, provisioned), fn.Environment)
	return nil
}

// mergeEnv is the image's variables with over's (runtimeEnv: the function's and Lambda's) added,
// over's value winning for a name both set, except Lambda's defaults (TZ, LANG, PATH,
// LD_LIBRARY_PATH), which give way to the image's unless the function set them itself.
func mergeEnv(image, over []string, fnEnv map[string]string) []string {
	defaults := map[string]bool{"TZ": true, "LANG": true, "PATH": true, "LD_LIBRARY_PATH": true}
	out := make([]string, 0, len(image)+len(over))
	idx := map[string]int{}
	fromImage := map[string]bool{}
	for _, kv := range image {
		k, _, _ := strings.Cut(kv, "=")
		if k == "" {
			continue
		}
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		fromImage[k] = true
		out = append(out, kv)
	}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		_, fnSets := fnEnv[k]
		if i, ok := idx[k]; ok {
			if fromImage[k] && defaults[k] && !fnSets {
				continue
			}
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// runtimeSpec fills spec for a zip function on a managed runtime: the runtime's image as the
// root, the code at /var/task over it, the image's ENTRYPOINT (else its CMD) run with the
// function's handler as its argument, as the AWS base images' /lambda-entrypoint.sh takes it,
// and the image's ENV under the function's variables and Lambda's.
func (m *Manager) runtimeSpec(ctx context.Context, fn *structs.Function, version, envID string, provisioned bool, spec *Spec) error {
	if m.cfg.Runtimes == nil || m.cfg.Images == nil {
		return fmt.Errorf("runtime %s: this node has no managed runtimes", fn.Runtime)
	}
	uri, err := m.cfg.Runtimes.RuntimeImage(fn.Runtime)
	if err != nil {
		return err
	}
	root, err := m.cfg.Images.Root(ctx, uri)
	if err != nil {
		return fmt.Errorf("getting the image of runtime %s: %w", fn.Runtime, err)
	}
	cmd := root.Entrypoint
	if len(cmd) == 0 {
		cmd = root.Cmd
	}
	if len(cmd) == 0 {
		return fmt.Errorf("the image of runtime %s has no ENTRYPOINT or CMD", fn.Runtime)
	}
	spec.RootLayers = root.Layers
	spec.Args = append(append([]string(nil), cmd...), fn.Handler)
	spec.Cwd = "/var/task"
	spec.Env = mergeEnv(root.Env, runtimeEnv(fn, version, m.cfg.Region, envID, provisioned), fn.Environment)
	return nil
}
