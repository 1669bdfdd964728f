package structs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// Code signing: which publishers may sign the code of a function, and what a deploy of code none
// of them signed does (Lambda's code signing configurations). Publishers are the agents'
// signing_publisher blocks (a public key or a certificate identity); a configuration names them.

// Policies of a code signing configuration for code no allowed publisher signed (Lambda's
// UntrustedArtifactOnDeployment).
const (
	// CodeSigningWarn deploys such code, logging a warning (Lambda's default).
	CodeSigningWarn = "Warn"
	// CodeSigningEnforce refuses it (CodeVerificationFailedException).
	CodeSigningEnforce = "Enforce"
)

// MaxAllowedPublishers is how many publishers a configuration may allow (Lambda's 20 signing
// profile versions).
const MaxAllowedPublishers = 20

// CodeSigningConfig is a code signing configuration.
type CodeSigningConfig struct {
	// ID is "csc-" and 17 lower-case letters and digits, as Lambda names them: random for a
	// configuration made through the API, derived from the name for one a function file
	// declares (CodeSigningConfigID), so apply finds it again.
	ID string `json:"id"`
	// Name is the code_signing_config block's name; "" for a configuration made through the API.
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// AllowedPublishers are the names of signing_publisher blocks of the agents.
	AllowedPublishers []string `json:"allowed_publishers"`
	// AllowedPublisherARNs are the signing profile version ARNs the API was given for them, in
	// the same order, answered back as they came (Terraform sees what it wrote); empty for a
	// configuration a function file declares.
	AllowedPublisherARNs []string `json:"allowed_publisher_arns,omitempty"`
	// UntrustedArtifactOnDeployment is CodeSigningWarn or CodeSigningEnforce.
	UntrustedArtifactOnDeployment string    `json:"untrusted_artifact_on_deployment"`
	LastModified                  time.Time `json:"last_modified"`
	ModifyIndex                   uint64    `json:"modify_index"`
}

// Enforce reports whether code no allowed publisher signed is refused.
func (c *CodeSigningConfig) Enforce() bool {
	return c != nil && c.UntrustedArtifactOnDeployment == CodeSigningEnforce
}

// Copy returns a deep copy.
func (c *CodeSigningConfig) Copy() *CodeSigningConfig {
	if c == nil {
		return nil
	}
	out := *c
	out.AllowedPublishers = append([]string(nil), c.AllowedPublishers...)
	out.AllowedPublisherARNs = append([]string(nil), c.AllowedPublisherARNs...)
	return &out
}

// CodeSigningConfigPrefix starts every configuration's ID.
const CodeSigningConfigPrefix = "csc-"

// CodeSigningConfigID is the ID of the configuration a function file names name: the first 17
// hex digits of a SHA-256 of the name.
func CodeSigningConfigID(name string) string {
	h := sha256.Sum256([]byte("lambdagw code signing config " + name))
	return CodeSigningConfigPrefix + hex.EncodeToString(h[:])[:17]
}

var cscIDRE = regexp.MustCompile(`^csc-[a-z0-9]{17}$`)

// ValidCodeSigningConfigID reports whether id has the form of a configuration's ID.
func ValidCodeSigningConfigID(id string) bool { return cscIDRE.MatchString(id) }

// Check lists what is wrong with the configuration, by Lambda API field, in a fixed order.
func (c *CodeSigningConfig) Check() []FieldError {
	var errs []FieldError
	add := func(field, summary, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Summary: summary, Message: fmt.Sprintf(format, a...)})
	}
	if c.Name != "" && !ValidName(c.Name) {
		add("GatewayName", "Invalid code signing configuration name", "%q: a name has 1 to 64 letters, digits, '-' and '_'", c.Name)
	}
	if c.ID != "" && !ValidCodeSigningConfigID(c.ID) {
		add("CodeSigningConfigId", "", "%q: an ID is \"csc-\" and 17 lower-case letters and digits", c.ID)
	}
	if n := len([]rune(c.Description)); n > MaxDescriptionLen {
		add("Description", "", "%d characters is too long: the limit is %d", n, MaxDescriptionLen)
	}
	const publishers = "AllowedPublishers.SigningProfileVersionArns"
	switch n := len(c.AllowedPublishers); {
	case n == 0:
		add(publishers, "Missing allowed publishers", "a code signing configuration allows 1 to %d publishers", MaxAllowedPublishers)
	case n > MaxAllowedPublishers:
		add(publishers, "Too many allowed publishers", "%d publishers: a code signing configuration allows at most %d", n, MaxAllowedPublishers)
	}
	seen := map[string]bool{}
	for _, p := range c.AllowedPublishers {
		switch {
		case !ValidName(p):
			add(publishers, "Invalid publisher", "%q: a publisher is named by a signing_publisher block of the agents (letters, digits, '-' and '_')", p)
		case seen[p]:
			add(publishers, "Duplicate publisher", "%q is allowed twice", p)
		}
		seen[p] = true
	}
	switch c.UntrustedArtifactOnDeployment {
	case CodeSigningWarn, CodeSigningEnforce:
	default:
		add("CodeSigningPolicies.UntrustedArtifactOnDeployment", "", "%q: use %q or %q", c.UntrustedArtifactOnDeployment, CodeSigningWarn, CodeSigningEnforce)
	}
	return errs
}

// CodeSignature is what the deploy of a function's code found of its signature, under the code
// signing configuration attached to the function then: every node checks the code again against
// it before it runs it. A function deployed without a configuration has none, and keeps running
// unchecked once one is attached, until its code is deployed again (as in Lambda).
type CodeSignature struct {
	// Config is the ID of the configuration the code was deployed under.
	Config string `json:"config"`
	// Publisher is who signed the code; "" when no allowed publisher did (deployed under Warn).
	Publisher string `json:"publisher,omitempty"`
}
