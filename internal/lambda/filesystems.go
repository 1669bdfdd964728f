package lambda

import (
	"fmt"
	"strings"

	"github.com/lambdagw/gateway/internal/structs"
)

// File systems in the API: Lambda's FileSystemConfigs, whose Arn names an EFS access point. The
// gateway's file systems are the agents' file_system blocks; an ARN names one of them, or one
// of their access points:
//
//	arn:aws:elasticfilesystem:<region>:<account>:access-point/<access point>   (as Lambda's)
//	arn:lambdagw:file-system:<region>::<file system>[/<access point>]           (the gateway's)
//
// The first names the access point alone (its name is unique on a node); the gateway finds its
// file system. Regions and accounts are not checked, as nowhere else in the gateway.

// FileSystemConfig is one item of FileSystemConfigs.
type FileSystemConfig struct {
	Arn            string `json:"Arn"`            //nolint:revive // Lambda's field name
	LocalMountPath string `json:"LocalMountPath"` //nolint:revive
	// GatewayReadOnly mounts the file system read-only (the gateway's own field: Lambda says
	// so with the function's IAM policy, which the gateway has not).
	GatewayReadOnly bool `json:"GatewayReadOnly,omitempty"`
}

// FileSystemARN is the gateway's ARN of a file system, or of an access point of it (ap).
func FileSystemARN(region, fs, ap string) string {
	arn := "arn:lambdagw:file-system:" + region + "::" + fs
	if ap != "" {
		arn += "/" + ap
	}
	return arn
}

// FileSystemARNHelp says how a file system's ARN is written, for errors.
const FileSystemARNHelp = `use arn:aws:elasticfilesystem:<region>:<account>:access-point/<access point> or arn:lambdagw:file-system:<region>::<file system>[/<access point>], naming the agents' file_system blocks`

// ParseFileSystemARN reads a file system's ARN: the gateway's form gives the file system and
// maybe an access point; an EFS access point's gives the access point only (fs is "").
func ParseFileSystemARN(arn string) (fs, ap string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" {
		switch {
		case parts[1] == "lambdagw" && parts[2] == "file-system":
			fs, ap, hasAP := strings.Cut(parts[5], "/")
			if structs.ValidName(fs) && (!hasAP || structs.ValidName(ap)) {
				return fs, ap, nil
			}
		case strings.HasPrefix(parts[1], "aws") && parts[2] == "elasticfilesystem":
			if name, ok := strings.CutPrefix(parts[5], "access-point/"); ok && structs.ValidName(name) {
				return "", name, nil
			}
			if strings.HasPrefix(parts[5], "file-system/") {
				return "", "", InvalidParameter("FileSystemConfigs.Arn: %q names an EFS file system; as in Lambda, name one of its access points (%s)", arn, FileSystemARNHelp)
			}
		}
	}
	return "", "", InvalidParameter("FileSystemConfigs.Arn: %q is not the ARN of a file system of the gateway: %s", arn, FileSystemARNHelp)
}

// FileSystemConfigsFrom describes a function's file systems as Lambda does, each by the ARN it
// was given when that still names it.
func FileSystemConfigsFrom(fss []structs.FileSystemConfig, region string) []FileSystemConfig {
	var out []FileSystemConfig
	for _, c := range fss {
		arn := FileSystemARN(region, c.FileSystem, c.AccessPoint)
		if c.ARN != "" {
			if fs, ap, err := ParseFileSystemARN(c.ARN); err == nil && ap == c.AccessPoint && (fs == "" || fs == c.FileSystem) {
				arn = c.ARN
			}
		}
		out = append(out, FileSystemConfig{Arn: arn, LocalMountPath: c.LocalMountPath, GatewayReadOnly: c.ReadOnly})
	}
	return out
}

// FileSystemConfigsInput is the FileSystemConfigs that sets fss, in the gateway's ARNs.
func FileSystemConfigsInput(fss []structs.FileSystemConfig, region string) []FileSystemConfig {
	out := []FileSystemConfig{}
	for _, c := range fss {
		out = append(out, FileSystemConfig{Arn: FileSystemARN(region, c.FileSystem, c.AccessPoint),
			LocalMountPath: c.LocalMountPath, GatewayReadOnly: c.ReadOnly})
	}
	return out
}

// Name is the file system an answer's Arn names as a function file does ("shared",
// "shared/team-a"); an EFS access point's ARN gives only the access point ("/team-a").
func (c FileSystemConfig) Name() string {
	fs, ap, err := ParseFileSystemARN(c.Arn)
	if err != nil {
		return c.Arn
	}
	if ap == "" {
		return fs
	}
	return fmt.Sprintf("%s/%s", fs, ap)
}
