package gateway

import (
	"slices"
	"strings"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// fileSystems reads the API's FileSystemConfigs as the function keeps them: each ARN names a
// file system of this node, or one of its access points; an EFS access point's ARN names the
// access point alone, whose file system is the one of this node that declares it. The rules of
// internal/structs (how many, where they mount) are validate's; whether the node declares them,
// checkFileSystems'.
func (g *Gateway) fileSystems(in []lambda.FileSystemConfig) ([]structs.FileSystemConfig, error) {
	var out []structs.FileSystemConfig
	for _, c := range in {
		fs, ap, err := lambda.ParseFileSystemARN(c.Arn)
		if err != nil {
			return nil, err
		}
		if fs == "" {
			for _, nfs := range g.nodeFileSystems() {
				if slices.Contains(nfs.AccessPoints, ap) {
					fs = nfs.Name
				}
			}
			if fs == "" {
				return nil, lambda.InvalidParameter("FileSystemConfigs.Arn: %s: this node declares no access point %q (%s)", c.Arn, ap, g.fileSystemsText())
			}
		}
		out = append(out, structs.FileSystemConfig{FileSystem: fs, AccessPoint: ap, LocalMountPath: c.LocalMountPath,
			ReadOnly: c.GatewayReadOnly, ARN: c.Arn})
	}
	return out, nil
}

// checkFileSystems refuses a function that mounts a file system (or an access point) this node
// does not declare, naming those it has. Each node declares its own in its agent file: a node
// that lacks one refuses to run the function rather than run it without.
func (g *Gateway) checkFileSystems(fn *structs.Function) error {
	for _, c := range fn.FileSystems {
		i := slices.IndexFunc(g.nodeFileSystems(), func(n structs.NodeFileSystem) bool { return n.Name == c.FileSystem })
		switch {
		case i < 0:
			return lambda.InvalidParameter("FileSystemConfigs.Arn: file system %q is not declared on this node (%s)", c.FileSystem, g.fileSystemsText())
		case c.AccessPoint != "" && !slices.Contains(g.nodeFileSystems()[i].AccessPoints, c.AccessPoint):
			return lambda.InvalidParameter("FileSystemConfigs.Arn: file system %q has no access point %q on this node (%s)", c.FileSystem, c.AccessPoint, g.fileSystemsText())
		}
	}
	return nil
}

func (g *Gateway) nodeFileSystems() []structs.NodeFileSystem {
	if g.cfg.FileSystems == nil {
		return nil
	}
	return g.cfg.FileSystems()
}

// fileSystemsText names the node's file systems and access points, for errors.
func (g *Gateway) fileSystemsText() string {
	var names []string
	for _, fs := range g.nodeFileSystems() {
		names = append(names, fs.Name)
		for _, ap := range fs.AccessPoints {
			names = append(names, fs.Name+"/"+ap)
		}
	}
	if len(names) == 0 {
		return "it declares none: an agent's file_system blocks declare them"
	}
	return "its file systems: " + strings.Join(names, ", ")
}
