// Package structs holds the domain types shared by the gateway's packages: what the replicated
// state stores and what the invocation path reads. It imports nothing of the gateway.
package structs

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// LatestVersion is the qualifier of a function's mutable configuration.
const LatestVersion = "$LATEST"

// Function is the $LATEST configuration of a function as the replicated state stores it.
// Values read from the state are never modified in place: writers build a new value.
type Function struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Role is the execution role the function was created with; the gateway keeps it for the
	// API (it has no IAM) and reports DefaultRole when none was given.
	Role string `json:"role,omitempty"`
	// Runtime is "provided", "provided.al2" or "provided.al2023" (custom runtime: /var/task/bootstrap).
	Runtime string `json:"runtime"`
	// Handler is passed to the runtime as _HANDLER; for the provided runtimes a handler naming an
	// executable file in the code is started instead of bootstrap.
	Handler string `json:"handler,omitempty"`
	// PackageType is PackageZip ("" reads as it) or PackageImage: the function's code is a
	// container image, ImageURI, and CodeSha256 is unused.
	PackageType string `json:"package_type,omitempty"`
	// ImageURI is the image as the function was deployed (a tag or a digest); ResolvedImageURI is
	// the same image pinned to its digest at deploy, which is what runs (a published version
	// keeps it, as Lambda does).
	ImageURI         string `json:"image_uri,omitempty"`
	ResolvedImageURI string `json:"resolved_image_uri,omitempty"`
	// ImageConfig overrides the image's ENTRYPOINT, CMD and WORKDIR.
	ImageConfig *ImageConfig `json:"image_config,omitempty"`
	// CodeSha256 is the hex SHA-256 of the code zip, the key of the content-addressed code store.
	CodeSha256 string `json:"code_sha256"`
	CodeSize   int64  `json:"code_size"`
	// CodeUnzippedSize is what the code zip unpacks to, counted against the 250 MB limit of
	// code and layers together (0 for code stored before it was recorded).
	CodeUnzippedSize int64 `json:"code_unzipped_size,omitempty"`
	// Layers are merged read-only at /opt in order, a later layer's file winning.
	Layers   []FunctionLayer `json:"layers,omitempty"`
	MemoryMB int             `json:"memory_mb"`
	// Timeout bounds one invocation (Lambda: 1 s to 900 s).
	Timeout     time.Duration     `json:"timeout"`
	Environment map[string]string `json:"environment,omitempty"`
	// EphemeralStorageMB is the size of /tmp (512 MB to 10240 MB).
	EphemeralStorageMB int `json:"ephemeral_storage_mb"`
	// FreezeDelay is how long an idle environment stays thawed before it is frozen; 0 freezes it as
	// soon as the runtime asks for the next event, as Lambda does; nil means the agent's default.
	FreezeDelay *time.Duration `json:"freeze_delay,omitempty"`
	// DeadLetterTarget ("queue:NAME" or "stream:NAME") receives the payload of an asynchronous
	// invocation that failed for good and has no on-failure destination (Lambda's
	// DeadLetterConfig, the older form of destinations).
	DeadLetterTarget string `json:"dead_letter_target,omitempty"`
	// DeadLetterTargetARN is the target's ARN as the API was given it, answered back as it came.
	DeadLetterTargetARN string `json:"dead_letter_target_arn,omitempty"`
	// Network puts the function's environments on one of the operator's networks (Lambda's
	// VpcConfig); nil keeps them on loopback only.
	Network *FunctionNetwork `json:"network,omitempty"`
	// FileSystems are mounted in every environment at their LocalMountPath (at most one, as
	// Lambda's FileSystemConfigs); each node resolves them from its own file_system blocks.
	FileSystems []FileSystemConfig `json:"file_systems,omitempty"`
	// Logging is the function's LoggingConfig (log format and levels); nil: Text.
	Logging *LoggingConfig `json:"logging,omitempty"`
	// CodeSignature is what the deploy of the code found of its signature, when the function
	// had a code signing configuration then.
	CodeSignature *CodeSignature `json:"code_signature,omitempty"`

	// Version is "" for $LATEST, or the number of a published version ("1", "2", ...): an
	// immutable copy of $LATEST's code and configuration at the time it was published.
	Version string `json:"version,omitempty"`

	// RevisionID changes on every update; environments are keyed by it so an update never reuses an
	// environment started from the old code or configuration.
	RevisionID   string    `json:"revision_id"`
	LastModified time.Time `json:"last_modified"`
	// CreateIndex and ModifyIndex are the Raft log indexes that created and last changed the function.
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// FunctionNetwork is the network a function's environments are on (Lambda's VpcConfig: its
// SubnetIds name the operator's network, its SecurityGroupIds the egress policies).
type FunctionNetwork struct {
	// Name is a network block of the agents' configuration.
	Name string `json:"name"`
	// EgressPolicies name egress_policy blocks of the agents' configuration: what the
	// function may reach beyond what its network allows every function.
	EgressPolicies []string `json:"egress_policies,omitempty"`
	// IPv6AllowedForDualStack is kept as given (the networks are IPv4).
	IPv6AllowedForDualStack bool `json:"ipv6_allowed_for_dual_stack,omitempty"`
}

// Limits of a function's network settings (Lambda's: 16 subnets and 5 security groups; a
// function here is on one network).
const MaxEgressPolicies = 5

// Check lists what is wrong with the network settings, by Lambda API field.
func (n *FunctionNetwork) Check() []FieldError {
	var errs []FieldError
	if !ValidNetworkName(n.Name) {
		errs = append(errs, FieldError{Field: "VpcConfig.SubnetIds", Summary: "Invalid network name",
			Message: fmt.Sprintf("%q: a network name has 1 to 11 lowercase letters, digits and '-'", n.Name)})
	}
	if len(n.EgressPolicies) > MaxEgressPolicies {
		errs = append(errs, FieldError{Field: "VpcConfig.SecurityGroupIds", Summary: "Too many egress policies",
			Message: fmt.Sprintf("%d egress policies: at most %d", len(n.EgressPolicies), MaxEgressPolicies)})
	}
	seen := map[string]bool{}
	for _, p := range n.EgressPolicies {
		switch {
		case !ValidName(p):
			errs = append(errs, FieldError{Field: "VpcConfig.SecurityGroupIds", Summary: "Invalid egress policy name",
				Message: fmt.Sprintf("%q: an egress policy name has 1 to 64 letters, digits, '-' and '_'", p)})
		case seen[p]:
			errs = append(errs, FieldError{Field: "VpcConfig.SecurityGroupIds", Summary: "Duplicate egress policy",
				Message: fmt.Sprintf("%q is named twice", p)})
		}
		seen[p] = true
	}
	return errs
}

// ValidNetworkName says whether s can name a network: its bridge is lgw-<name>, within the
// kernel's 15 characters of an interface name.
func ValidNetworkName(s string) bool {
	if s == "" || len(s) > 11 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

// Package types of a function.
const (
	PackageZip   = "Zip"
	PackageImage = "Image"
)

// ImageConfig is a function's override of its image's configuration (Lambda's ImageConfig).
type ImageConfig struct {
	EntryPoint       []string `json:"entry_point,omitempty"`
	Command          []string `json:"command,omitempty"`
	WorkingDirectory string   `json:"working_directory,omitempty"`
}

// Bounds of ImageConfig (Lambda's).
const (
	MaxImageConfigItems   = 1500
	MaxImageConfigItemLen = 1024
)

// IsImage reports whether the function's code is a container image.
func (f *Function) IsImage() bool { return f.PackageType == PackageImage }

// ImageDigest is the digest ("sha256:...") the function's resolved image is pinned to; "" for a
// zip function.
func (f *Function) ImageDigest() string {
	if !f.IsImage() {
		return ""
	}
	return PinnedDigest(f.ResolvedImageURI)
}

// PinnedDigest is the digest ("sha256:...") an image reference pinned to one names; "" when it
// names none.
func PinnedDigest(ref string) string {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return ref[i+1:]
	}
	return ""
}

// CodeRefs are the hashes of the code store's zips f runs: its code's and its layers'.
func (f *Function) CodeRefs() []string {
	out := make([]string, 0, 1+len(f.Layers))
	if f.CodeSha256 != "" {
		out = append(out, f.CodeSha256)
	}
	for _, l := range f.Layers {
		out = append(out, l.CodeSha256)
	}
	return out
}

// ImageRefs is the digest of the image f runs, none for a zip function.
func (f *Function) ImageRefs() []string {
	if d := f.ImageDigest(); d != "" {
		return []string{d}
	}
	return nil
}

// Refs gathers what refs names of every function, and extra, once each and sorted: what a
// store must keep for them.
func Refs(fns []*Function, refs func(*Function) []string, extra ...string) []string {
	seen := map[string]bool{}
	out := []string{}
	add := func(r string) {
		if r != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, fn := range fns {
		for _, r := range refs(fn) {
			add(r)
		}
	}
	for _, r := range extra {
		add(r)
	}
	sort.Strings(out)
	return out
}

// Qualifier is the version as Lambda names it: "$LATEST" or the version's number.
func (f *Function) Qualifier() string {
	if f.Version == "" {
		return LatestVersion
	}
	return f.Version
}

// Copy returns a deep copy, for writers that derive a new value from a stored one.
func (f *Function) Copy() *Function {
	if f == nil {
		return nil
	}
	c := *f
	if f.ImageConfig != nil {
		ic := *f.ImageConfig
		ic.EntryPoint = append([]string(nil), ic.EntryPoint...)
		ic.Command = append([]string(nil), ic.Command...)
		c.ImageConfig = &ic
	}
	c.Layers = append([]FunctionLayer(nil), f.Layers...)
	if f.Network != nil {
		n := *f.Network
		n.EgressPolicies = append([]string(nil), n.EgressPolicies...)
		c.Network = &n
	}
	c.FileSystems = append([]FileSystemConfig(nil), f.FileSystems...)
	if f.CodeSignature != nil {
		cs := *f.CodeSignature
		c.CodeSignature = &cs
	}
	if f.Logging != nil {
		l := *f.Logging
		c.Logging = &l
	}
	if f.Environment != nil {
		c.Environment = make(map[string]string, len(f.Environment))
		for k, v := range f.Environment {
			c.Environment[k] = v
		}
	}
	return &c
}

// Limits of a function's configuration, as Lambda's (PROTOCOLS.md section 6).
const (
	MinMemoryMB            = 128
	MaxMemoryMB            = 10240
	DefaultMemoryMB        = 128
	MinTimeout             = time.Second
	MaxTimeout             = 900 * time.Second
	DefaultTimeout         = 3 * time.Second
	MinEphemeralMB         = 512
	MaxEphemeralMB         = 10240
	DefaultEphemeralMB     = 512
	MaxEnvironmentBytes    = 4096
	MaxZipBytes            = 50 << 20
	MaxUnzippedCodeBytes   = 250 << 20
	MaxCodeEntries         = 100000 // files, folders and links in one code zip
	MaxSyncPayloadBytes    = 6 << 20
	DefaultInitTimeout     = 10 * time.Second
	DefaultShutdownTimeout = 2 * time.Second
)

// Runtimes lists the runtimes the gateway can start. All are custom runtimes whose entry point is
// /var/task/bootstrap (or the handler, when it names an executable in the code).
var Runtimes = []string{"provided", "provided.al2", "provided.al2023"}

// reservedEnv are the variables Lambda sets itself in every environment: a function's
// configuration cannot set them (HCL and the API reject them; the sandbox filters them too).
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// IsReservedEnv reports whether name is set by the gateway and may not be configured.
func IsReservedEnv(name string) bool { return reservedEnv[name] }

// AccountID is the account in the gateway's ARNs: an on-prem gateway has no AWS account.
const AccountID = "000000000000"

// DefaultRole is the execution role reported for functions created without one (by apply).
const DefaultRole = "arn:aws:iam::000000000000:role/gateway"
