// Package nodeimage builds container images of a Node.js root from this machine's node and npm's
// aws-lambda-ric (as make deps installs it), for the tests and the benchmarks that run unmodified
// Node.js handlers under the runtime interface client nobody here wrote.
package nodeimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Handler is the Node.js handler the tests and benchmarks run, unmodified Lambda code: a
// module-level counter shows a warm environment, a thrown TypeError must reach the caller as
// Node's runtime client reports it, and sleepMs holds the invocation (to keep environments busy).
const Handler = `let calls = 0;
exports.handler = async (event) => {
  calls++;
  if (event.fail) {
    throw new TypeError("bad input: " + event.fail);
  }
  if (event.sleepMs) {
    await new Promise((resolve) => setTimeout(resolve, event.sleepMs));
  }
  return { message: "Hello, " + event.name + "!", calls: calls, node: process.version };
};
`

// Entrypoint starts npm's aws-lambda-ric with the handler as its argument.
var Entrypoint = []string{"/usr/bin/node", "/var/runtime/node_modules/aws-lambda-ric/bin/index.mjs"}

// Env is NODE_PATH as AWS's Node.js base images set it: a layer's nodejs/node_modules is found.
var Env = []string{"NODE_PATH=/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task"}

// RICModules is the node_modules folder make deps installs aws-lambda-ric into, under repo.
func RICModules(repo string) (string, error) {
	ric, err := filepath.Abs(filepath.Join(repo, ".tools", "ric", "node_modules"))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(ric, "aws-lambda-ric", "dist", "rapid-client.node")); err != nil {
		return "", fmt.Errorf("npm's aws-lambda-ric is not installed (%v): run make deps", err)
	}
	return ric, nil
}

// TarLayer makes a layer of files given as path -> content (mode 0755 for executables named in
// exec), plus the trees of dirs (image path -> host folder), symlinks kept.
func TarLayer(files map[string][]byte, exec map[string]bool, dirs map[string]string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, body := range files {
		mode := int64(0o644)
		if exec[p] {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	for at, host := range dirs {
		if err := addTree(tw, at, host); err != nil {
			return nil, fmt.Errorf("adding %s: %w", host, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithCompressionLevel(gzip.BestSpeed))
}

func addTree(tw *tar.Writer, at, host string) error {
	return filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(host, p)
		name := filepath.ToSlash(filepath.Join(at, rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777})
		case d.Type().IsRegular():
			body, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: int64(info.Mode().Perm() | 0o444), Size: int64(len(body))}); err != nil {
				return err
			}
			_, err = tw.Write(body)
			return err
		}
		return nil
	})
}

// Layers are a Node.js root built from this machine's node (the binary, the shared libraries
// ldd names and the loader) and a layer with npm's aws-lambda-ric at /var/runtime/node_modules;
// repo is the repository's root (for .tools/ric).
func Layers(repo string) ([]v1.Layer, error) {
	ric, err := RICModules(repo)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node is not installed: run make deps (%v)", err)
	}
	files := map[string][]byte{}
	var errs []error
	add := func(p string) {
		b, err := os.ReadFile(p) // through symlinks: the layer holds the file at the path asked for
		errs = append(errs, err)
		files[strings.TrimPrefix(p, "/")] = b
	}
	add(node)
	files["usr/bin/node"] = files[strings.TrimPrefix(node, "/")]
	libRE := regexp.MustCompile(`(?m)(/\S+\.so[.0-9]*)\s+\(0x`)
	for _, bin := range []string{node, filepath.Join(ric, "aws-lambda-ric", "dist", "rapid-client.node")} {
		out, err := exec.Command("ldd", bin).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", bin, err)
		}
		for _, m := range libRE.FindAllStringSubmatch(string(out), -1) {
			add(m[1])
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Executable, all of them: the kernel runs the loader, which must be, and maps the libraries.
	execs := map[string]bool{}
	for p := range files {
		execs[p] = true
	}
	base, err := TarLayer(files, execs, nil)
	if err != nil {
		return nil, err
	}
	ricLayer, err := TarLayer(map[string][]byte{"tmp/.keep": nil}, nil, map[string]string{"var/runtime/node_modules": ric})
	if err != nil {
		return nil, err
	}
	return []v1.Layer{base, ricLayer}, nil
}

// ImageOf is an image of layers with cfg, for linux on this machine's architecture.
func ImageOf(layers []v1.Layer, cfg v1.Config) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, cfg
	return mutate.ConfigFile(img, cf)
}
