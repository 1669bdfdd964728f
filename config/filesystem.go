package config

// The agent file's file_system blocks: host folders and NFS exports functions mount under /mnt,
// with access points (EFS's: a folder of the file system and the identity files are made with).

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/lambdagw/gateway/internal/structs"
)

// FileSystem is a file_system block: a file system functions of this node may mount.
type FileSystem struct {
	Name string
	// Type is FileSystemBind (a host folder, the default) or FileSystemNFS (an export the agent
	// mounts under its data_dir while it runs).
	Type string
	// Source is the host folder (absolute; relative paths are taken from the agent file's
	// folder) or the NFS export, "server:/export".
	Source string
	// Options are the NFS mount options (vers=4.2, soft, ...); nosuid and nodev always apply.
	Options []string
	// AccessPoints are the access_point blocks, in file order.
	AccessPoints []AccessPoint
	DeclRange    hcl.Range
}

// The types of a file system.
const (
	FileSystemBind = "bind"
	FileSystemNFS  = "nfs"
)

// AccessPoint is an access_point block: a folder of the file system that functions naming it
// see as the root, and the identity their files are created with.
type AccessPoint struct {
	Name string
	// RootDirectory is the folder inside the file system, "/" for its root.
	RootDirectory string
	// PosixUser is the uid and gid the functions' files are made with and their access is
	// checked as; nil: the sandbox user's (993:990, as on Lambda).
	PosixUser *PosixUser
	// CreationInfo makes RootDirectory, with this owner and mode, when it does not exist; nil:
	// a missing RootDirectory fails the mount.
	CreationInfo *CreationInfo
	DeclRange    hcl.Range
}

// PosixUser is an access point's identity.
type PosixUser struct {
	UID, GID uint32
}

// CreationInfo is how an access point's root directory is made.
type CreationInfo struct {
	OwnerUID, OwnerGID uint32
	Permissions        os.FileMode
}

type fileSystemBlock struct {
	Name         string              `hcl:"name,label"`
	Type         *string             `hcl:"type,optional"`
	Source       *string             `hcl:"source,optional"`
	Options      *[]string           `hcl:"options,optional"`
	AccessPoints []*accessPointBlock `hcl:"access_point,block"`
	Body         hcl.Body            `hcl:",body"`
}

type accessPointBlock struct {
	Name          string  `hcl:"name,label"`
	RootDirectory *string `hcl:"root_directory,optional"`
	PosixUser     *struct {
		UID  int64    `hcl:"uid"`
		GID  int64    `hcl:"gid"`
		Body hcl.Body `hcl:",body"`
	} `hcl:"posix_user,block"`
	CreationInfo *struct {
		OwnerUID    int64    `hcl:"owner_uid"`
		OwnerGID    int64    `hcl:"owner_gid"`
		Permissions string   `hcl:"permissions"`
		Body        hcl.Body `hcl:",body"`
	} `hcl:"creation_info,block"`
	Body hcl.Body `hcl:",body"`
}

// nfsSourceRE is server:/export (a host name, an IPv4 address or a bracketed IPv6 one).
var nfsSourceRE = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?|\[[0-9a-fA-F:.]+\]):/[^\s,]*$`)

// maxID is the largest uid or gid a file system's identities may take (-1 as uint32 is "none").
const maxID = 1<<32 - 2

// decodeFileSystems validates the file_system blocks: names and access point names unique on
// the node (an EFS access point's ARN names the access point alone), a host folder that exists,
// identities other than root.
func decodeFileSystems(blocks []fileSystemBlock, baseDir string) ([]FileSystem, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var out []FileSystem
	seen := map[string]hcl.Range{}
	aps := map[string]string{} // access point -> its file system
	for _, b := range blocks {
		decl := b.Body.MissingItemRange()
		if d := firstDecl(seen, "File system", b.Name, decl); d != nil {
			diags = append(diags, d)
			continue
		}
		if !structs.ValidName(b.Name) {
			diags = append(diags, rangeDiag("Invalid file system name", fmt.Sprintf("%q: a file system's name has 1 to 64 letters, digits, '-' and '_'.", b.Name), decl))
			continue
		}
		fs := FileSystem{Name: b.Name, Type: FileSystemBind, DeclRange: decl}
		if b.Type != nil && *b.Type != "" {
			fs.Type = *b.Type
		}
		if b.Options != nil {
			fs.Options = *b.Options
		}
		switch fs.Type {
		case FileSystemBind:
			diags = append(diags, decodeBindSource(&fs, b, baseDir)...)
		case FileSystemNFS:
			diags = append(diags, decodeNFSSource(&fs, b)...)
		default:
			diags = append(diags, attrDiag(b.Body, "type", "Invalid file system type",
				fmt.Sprintf("file_system %q: type %q is not one of \"bind\" (a host folder, the default) or \"nfs\" (an NFS export the agent mounts).", b.Name, fs.Type)))
		}
		for _, ab := range b.AccessPoints {
			ap, d := decodeAccessPoint(ab, b.Name)
			diags = append(diags, d...)
			if ap == nil {
				continue
			}
			if fs.Type == FileSystemNFS && ab.PosixUser != nil {
				diags = append(diags, rangeDiag("posix_user on NFS",
					fmt.Sprintf("access_point %q: an NFS file system is mounted without an ID mapping (Linux's NFS client has none), so the gateway cannot give files an identity: have the server squash them (all_squash,anonuid=,anongid=) and remove posix_user.", ap.Name), ap.DeclRange))
			}
			if other, dup := aps[ap.Name]; dup {
				diags = append(diags, rangeDiag("Duplicate access point",
					fmt.Sprintf("access_point %q is also declared in file_system %q: an access point's name is unique on a node, since an EFS access point's ARN names it alone.", ap.Name, other), ap.DeclRange))
				continue
			}
			aps[ap.Name] = b.Name
			fs.AccessPoints = append(fs.AccessPoints, *ap)
		}
		out = append(out, fs)
	}
	return out, diags
}

// decodeBindSource checks a host folder: it exists and is a folder (a typo would otherwise mount
// an empty folder, or fail every environment later).
func decodeBindSource(fs *FileSystem, b fileSystemBlock, baseDir string) hcl.Diagnostics {
	if b.Source == nil || *b.Source == "" {
		return hcl.Diagnostics{rangeDiag("Missing file system source", fmt.Sprintf("file_system %q needs source: the host folder functions mount (relative to this file).", b.Name), fs.DeclRange)}
	}
	if len(fs.Options) > 0 {
		return hcl.Diagnostics{attrDiag(b.Body, "options", "Unused file system options",
			fmt.Sprintf("file_system %q is a host folder: options are mount options of type = \"nfs\". A host folder is mounted nosuid and nodev, read-only where a function asks.", b.Name))}
	}
	fs.Source = filepath.Clean(absPath(baseDir, *b.Source))
	st, err := os.Stat(fs.Source)
	switch {
	case err != nil:
		return hcl.Diagnostics{attrDiag(b.Body, "source", "File system source not found",
			fmt.Sprintf("file_system %q: %v. Create the folder, or fix the path (relative to this file).", b.Name, err))}
	case !st.IsDir():
		return hcl.Diagnostics{attrDiag(b.Body, "source", "Invalid file system source", fmt.Sprintf("file_system %q: %s is not a folder.", b.Name, fs.Source))}
	case fs.Source == "/":
		return hcl.Diagnostics{attrDiag(b.Body, "source", "Invalid file system source", fmt.Sprintf("file_system %q: the host's root cannot be a file system of functions; give it a folder of its own.", b.Name))}
	}
	return nil
}

// decodeNFSSource checks an NFS export and its options.
func decodeNFSSource(fs *FileSystem, b fileSystemBlock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if b.Source == nil || !nfsSourceRE.MatchString(*b.Source) {
		got := "none"
		if b.Source != nil {
			got = strconv.Quote(*b.Source)
		}
		diags = append(diags, attrDiag(b.Body, "source", "Invalid NFS source",
			fmt.Sprintf("file_system %q: source is %s; an NFS export is written server:/export (nfs.example.com:/srv/data, 10.0.0.5:/data).", b.Name, got)))
	} else {
		fs.Source = *b.Source
	}
	for _, o := range fs.Options {
		name, _, _ := strings.Cut(o, "=")
		switch {
		case o == "" || strings.ContainsAny(o, ", \t\n"):
			diags = append(diags, attrDiag(b.Body, "options", "Invalid NFS option", fmt.Sprintf("file_system %q: %q: give each mount option as its own string, without commas or spaces.", b.Name, o)))
		case name == "suid" || name == "dev":
			diags = append(diags, attrDiag(b.Body, "options", "Invalid NFS option", fmt.Sprintf("file_system %q: %q: functions' file systems are always mounted nosuid and nodev.", b.Name, o)))
		}
	}
	return diags
}

// decodeAccessPoint checks an access point of file system fs.
func decodeAccessPoint(b *accessPointBlock, fs string) (*AccessPoint, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	decl := b.Body.MissingItemRange()
	if !structs.ValidName(b.Name) {
		return nil, hcl.Diagnostics{rangeDiag("Invalid access point name", fmt.Sprintf("%q: an access point's name has 1 to 64 letters, digits, '-' and '_'.", b.Name), decl)}
	}
	ap := &AccessPoint{Name: b.Name, RootDirectory: "/", DeclRange: decl}
	if b.RootDirectory != nil {
		ap.RootDirectory = *b.RootDirectory
		r := ap.RootDirectory
		if !strings.HasPrefix(r, "/") || strings.Contains(r, "..") || path.Clean(r) != r || strings.ContainsRune(r, 0) || len(r) > 100 {
			diags = append(diags, attrDiag(b.Body, "root_directory", "Invalid root_directory",
				fmt.Sprintf("access_point %q of file_system %q: %q is not a folder of the file system written plainly: an absolute path inside it (\"/team-a\"), without \"..\", up to 100 characters.", b.Name, fs, r)))
		}
	}
	id := func(body hcl.Body, attr string, v int64, what string) uint32 {
		switch {
		case v == 0:
			diags = append(diags, attrDiag(body, attr, "Root identity refused",
				fmt.Sprintf("access_point %q: %s 0 is the host's root: files functions make (setuid ones among them) would be root's on the host. Give the share an identity of its own.", b.Name, what)))
		case v < 0 || v > maxID:
			diags = append(diags, attrDiag(body, attr, "Invalid "+attr, fmt.Sprintf("access_point %q: %s %d is out of range: 1 to %d.", b.Name, what, v, int64(maxID))))
		}
		return uint32(v)
	}
	if p := b.PosixUser; p != nil {
		ap.PosixUser = &PosixUser{UID: id(p.Body, "uid", p.UID, "uid"), GID: id(p.Body, "gid", p.GID, "gid")}
	}
	if c := b.CreationInfo; c != nil {
		ci := &CreationInfo{}
		// The owner may be root: the folder is made by the agent, and only what the access
		// point's identity may do in it is the functions'.
		for _, o := range []struct {
			attr string
			v    int64
			dst  *uint32
		}{{"owner_uid", c.OwnerUID, &ci.OwnerUID}, {"owner_gid", c.OwnerGID, &ci.OwnerGID}} {
			if o.v < 0 || o.v > maxID {
				diags = append(diags, attrDiag(c.Body, o.attr, "Invalid "+o.attr, fmt.Sprintf("access_point %q: %s %d is out of range: 0 to %d.", b.Name, o.attr, o.v, int64(maxID))))
				continue
			}
			*o.dst = uint32(o.v)
		}
		perm, err := strconv.ParseUint(c.Permissions, 8, 32)
		if err != nil || perm > 0o7777 || len(c.Permissions) < 3 || len(c.Permissions) > 4 {
			diags = append(diags, attrDiag(c.Body, "permissions", "Invalid permissions",
				fmt.Sprintf("access_point %q: permissions %q is not an octal mode of 3 or 4 digits such as \"0755\".", b.Name, c.Permissions)))
		}
		ci.Permissions = os.FileMode(perm & 0o777)
		if perm&0o1000 != 0 {
			ci.Permissions |= os.ModeSticky
		}
		if perm&0o2000 != 0 {
			ci.Permissions |= os.ModeSetgid
		}
		if perm&0o4000 != 0 {
			diags = append(diags, attrDiag(c.Body, "permissions", "Invalid permissions",
				fmt.Sprintf("access_point %q: permissions %q sets the setuid bit, which means nothing on a folder.", b.Name, c.Permissions)))
		}
		ap.CreationInfo = ci
	}
	return ap, diags
}

// NodeFileSystems lists the file systems and access points, as the gateway checks functions'.
func (a *Agent) NodeFileSystems() []structs.NodeFileSystem {
	var out []structs.NodeFileSystem
	for _, fs := range a.FileSystems {
		n := structs.NodeFileSystem{Name: fs.Name}
		for _, ap := range fs.AccessPoints {
			n.AccessPoints = append(n.AccessPoints, ap.Name)
		}
		out = append(out, n)
	}
	return out
}
