package structs

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// LayerVersion is one immutable version of a layer (Lambda's PublishLayerVersion): a zip
// whose files functions see under /opt. Its content is kept in the code store, by hash, like a
// function's code.
type LayerVersion struct {
	Name string `json:"name"`
	// Version is given by the replicated state when the version is published: 1, 2, ...; a
	// deleted version's number is never given again.
	Version                 int64     `json:"version"`
	Description             string    `json:"description,omitempty"`
	CompatibleRuntimes      []string  `json:"compatible_runtimes,omitempty"`
	CompatibleArchitectures []string  `json:"compatible_architectures,omitempty"`
	LicenseInfo             string    `json:"license_info,omitempty"`
	CodeSha256              string    `json:"code_sha256"`
	CodeSize                int64     `json:"code_size"`
	UnzippedSize            int64     `json:"unzipped_size"`
	CreatedDate             time.Time `json:"created_date"`
	// Policy is the version's permission statements (AddLayerVersionPermission), kept for the
	// tools that read them back; PolicyRevision changes with each.
	Policy         []*LayerStatement `json:"policy,omitempty"`
	PolicyRevision string            `json:"policy_revision,omitempty"`
	CreateIndex    uint64            `json:"create_index"`
}

// LayerStatement is one statement of a layer version's policy.
type LayerStatement struct {
	Sid string `json:"sid"`
	// Statement is the IAM statement as Lambda renders it.
	Statement json.RawMessage `json:"statement"`
}

// FunctionLayer is a layer version a function uses, pinned to its content when the function
// was configured, so that deleting the layer version later changes nothing for the function
// (as in Lambda).
type FunctionLayer struct {
	Name         string `json:"name"`
	Version      int64  `json:"version"`
	CodeSha256   string `json:"code_sha256"`
	CodeSize     int64  `json:"code_size"`
	UnzippedSize int64  `json:"unzipped_size"`
}

// Limits of layers (Lambda's).
const (
	MaxLayersPerFunction = 5
	MaxLayerNameLen      = 140
	MaxLicenseInfoLen    = 512
	MaxCompatibleItems   = 15
)

var layerNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,140}$`)

// ValidLayerName reports whether name may name a layer: 1 to 140 letters, digits, '-' or '_'.
func ValidLayerName(name string) bool { return layerNameRE.MatchString(name) }

// Validate checks a layer version about to be published.
func (l *LayerVersion) Validate() []FieldError {
	var errs []FieldError
	add := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
	}
	if !ValidLayerName(l.Name) {
		add("LayerName", "%q: a layer name has 1 to %d letters, digits, '-' or '_'", l.Name, MaxLayerNameLen)
	}
	if n := len([]rune(l.Description)); n > MaxDescriptionLen {
		add("Description", "%d characters is too long: the limit is %d", n, MaxDescriptionLen)
	}
	if n := len([]rune(l.LicenseInfo)); n > MaxLicenseInfoLen {
		add("LicenseInfo", "%d characters is too long: the limit is %d", n, MaxLicenseInfoLen)
	}
	if len(l.CompatibleRuntimes) > MaxCompatibleItems {
		add("CompatibleRuntimes", "%d runtimes: the limit is %d", len(l.CompatibleRuntimes), MaxCompatibleItems)
	}
	for _, r := range l.CompatibleRuntimes {
		if !ValidRuntimeName(r) {
			add("CompatibleRuntimes", "%q is not a runtime name", r)
		}
	}
	for _, a := range l.CompatibleArchitectures {
		if a != "x86_64" && a != "arm64" {
			add("CompatibleArchitectures", "%q: an architecture is x86_64 or arm64", a)
		}
	}
	if len(l.CompatibleArchitectures) > 2 {
		add("CompatibleArchitectures", "at most 2 architectures")
	}
	return errs
}

// ValidateLayers checks the layers of a function: how many, one version of each layer, not on
// an image (as Lambda: an image carries its own /opt), and the unzipped size of the code and
// every layer together.
func (f *Function) ValidateLayers() []FieldError {
	var errs []FieldError
	if len(f.Layers) == 0 {
		return nil
	}
	add := func(format string, a ...any) {
		errs = append(errs, FieldError{Field: "Layers", Message: fmt.Sprintf(format, a...)})
	}
	if f.IsImage() {
		add("an Image function cannot have layers: put their files in the image")
	}
	if len(f.Layers) > MaxLayersPerFunction {
		add("%d layers: a function has at most %d", len(f.Layers), MaxLayersPerFunction)
	}
	seen := map[string]bool{}
	total := f.CodeUnzippedSize
	for _, l := range f.Layers {
		if seen[l.Name] {
			add("layer %s is named twice: a function uses at most one version of a layer", l.Name)
		}
		seen[l.Name] = true
		total += l.UnzippedSize
	}
	if total > MaxUnzippedCodeBytes {
		add("the code and its layers unzip to %d bytes (%.1f MB), over the limit of %d MB", total, float64(total)/(1<<20), MaxUnzippedCodeBytes>>20)
	}
	return errs
}

// LayerVersionARN is a layer version's ARN, arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION.
type LayerVersionARN struct {
	Region, Account, Name string
	Version               int64
}

// ParseLayerVersionARN splits a layer version's ARN; its error says what is wrong with its form.
func ParseLayerVersionARN(arn string) (LayerVersionARN, error) {
	p := strings.Split(arn, ":")
	if len(p) != 8 || p[0] != "arn" || p[2] != "lambda" || p[5] != "layer" {
		return LayerVersionARN{}, fmt.Errorf("%q is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)", arn)
	}
	if !ValidLayerName(p[6]) {
		return LayerVersionARN{}, fmt.Errorf("%q: a layer name has 1 to %d letters, digits, '-' or '_'", p[6], MaxLayerNameLen)
	}
	v, err := strconv.ParseInt(p[7], 10, 64)
	if err != nil || v < 1 {
		return LayerVersionARN{}, fmt.Errorf("%q: the version at the end of a layer version ARN is a number from 1", arn)
	}
	return LayerVersionARN{Region: p[3], Account: p[4], Name: p[6], Version: v}, nil
}
