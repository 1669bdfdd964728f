package structs

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// File systems: an operator declares them in each agent's file (file_system blocks: a host
// folder or an NFS export, with access points), and a function mounts one of them under /mnt
// (Lambda's FileSystemConfigs, EFS on premises). The function names it; where its files are is
// each node's business.

// FileSystemConfig is a function's mount of a file system its nodes declare.
type FileSystemConfig struct {
	// FileSystem is the agent's file_system block; AccessPoint one of its access_point blocks
	// ("": the file system's root, with the sandbox user's identity).
	FileSystem  string `json:"file_system"`
	AccessPoint string `json:"access_point,omitempty"`
	// LocalMountPath is where the function sees it: /mnt/<something>.
	LocalMountPath string `json:"local_mount_path"`
	// ReadOnly mounts it read-only: writes fail with EROFS.
	ReadOnly bool `json:"read_only,omitempty"`
	// ARN is the file system's ARN as the API was given it (an EFS access point's, say),
	// answered back as it came: tools that compare what they wrote with what they read
	// (Terraform) see no change.
	ARN string `json:"arn,omitempty"`
}

// Name is the file system as a function file names it: "shared" or "shared/team-a".
func (c FileSystemConfig) Name() string {
	if c.AccessPoint == "" {
		return c.FileSystem
	}
	return c.FileSystem + "/" + c.AccessPoint
}

// Bounds of a function's file systems (Lambda's).
const (
	MaxFileSystems        = 1
	MaxLocalMountPathLen  = 160
	FileSystemMountParent = "/mnt"
	fileSystemsField      = "FileSystemConfigs"
	localMountPathField   = "FileSystemConfigs.LocalMountPath"
	fileSystemNameField   = "FileSystemConfigs.Arn"
)

// localMountPathRE is Lambda's rule, with nested folders allowed: /mnt/ and letters, digits,
// '.', '_', '-' and '/'.
var localMountPathRE = regexp.MustCompile(`^/mnt/[a-zA-Z0-9._/-]+$`)

// ValidateLocalMountPath checks where a function mounts a file system: a folder under /mnt (not
// /mnt itself), written plainly: no "..", no "." or empty component, no trailing '/'.
func ValidateLocalMountPath(p string) []FieldError {
	bad := func(why string) []FieldError {
		return []FieldError{{Field: localMountPathField, Summary: "Invalid local_mount_path",
			Message: fmt.Sprintf("%q %s: a file system is mounted at /mnt/<name> (letters, digits, '.', '_', '-', and '/' between folders)", p, why)}}
	}
	switch {
	case p == "" || p == FileSystemMountParent || p == FileSystemMountParent+"/":
		return bad("is not a folder under /mnt")
	case len(p) > MaxLocalMountPathLen:
		return bad(fmt.Sprintf("has %d characters, more than %d", len(p), MaxLocalMountPathLen))
	case !strings.HasPrefix(p, FileSystemMountParent+"/"):
		return bad("is outside /mnt")
	case strings.Contains(p, ".."):
		return bad("has \"..\"")
	case !localMountPathRE.MatchString(p):
		return bad("has a character other than letters, digits, '.', '_', '-' and '/'")
	case path.Clean(p) != p:
		return bad("is not written plainly (an empty or \".\" folder, or a trailing '/')")
	}
	return nil
}

// ValidateFileSystems checks a function's file systems: at most one (as Lambda), each naming a
// file system (and access point) by a valid name, mounted at a valid path. Whether the node
// declares them is the gateway's to say.
func ValidateFileSystems(fss []FileSystemConfig) []FieldError {
	var errs []FieldError
	if len(fss) > MaxFileSystems {
		errs = append(errs, FieldError{Field: fileSystemsField, Summary: "Too many file systems",
			Message: fmt.Sprintf("%d file systems: a function mounts at most %d, as in Lambda", len(fss), MaxFileSystems)})
	}
	for _, c := range fss {
		if !ValidName(c.FileSystem) {
			errs = append(errs, FieldError{Field: fileSystemNameField, Summary: "Invalid file system name",
				Message: fmt.Sprintf("%q: a file system's name has 1 to 64 letters, digits, '-' and '_'", c.FileSystem)})
		}
		if c.AccessPoint != "" && !ValidName(c.AccessPoint) {
			errs = append(errs, FieldError{Field: fileSystemNameField, Summary: "Invalid access point name",
				Message: fmt.Sprintf("%q: an access point's name has 1 to 64 letters, digits, '-' and '_'", c.AccessPoint)})
		}
		errs = append(errs, ValidateLocalMountPath(c.LocalMountPath)...)
	}
	return errs
}

// NodeFileSystem is a file system a node declares (its file_system block), with the names of
// its access points.
type NodeFileSystem struct {
	Name         string   `json:"name"`
	AccessPoints []string `json:"access_points,omitempty"`
}
