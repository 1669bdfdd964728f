package structs

import (
	"regexp"
	"strings"
)

// Alias is a named pointer to a version of a function, with an optional second version that
// receives a share of the invocations (weighted routing, for gradual deployments).
type Alias struct {
	Function string `json:"function"`
	Name     string `json:"name"`
	// FunctionVersion is "$LATEST" or a published version's number.
	FunctionVersion string `json:"function_version"`
	// AdditionalVersionWeights maps at most one other published version to the share of
	// invocations (0 to 1, exclusive) it receives instead of FunctionVersion.
	AdditionalVersionWeights map[string]float64 `json:"additional_version_weights,omitempty"`
	Description              string             `json:"description,omitempty"`
	RevisionID               string             `json:"revision_id"`
	CreateIndex              uint64             `json:"create_index"`
	ModifyIndex              uint64             `json:"modify_index"`
}

// Copy returns a deep copy.
func (a *Alias) Copy() *Alias {
	if a == nil {
		return nil
	}
	c := *a
	if a.AdditionalVersionWeights != nil {
		c.AdditionalVersionWeights = make(map[string]float64, len(a.AdditionalVersionWeights))
		for k, v := range a.AdditionalVersionWeights {
			c.AdditionalVersionWeights[k] = v
		}
	}
	return &c
}

var aliasRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
var digitsRE = regexp.MustCompile(`^[0-9]+$`)

// ValidAlias reports whether name may name an alias: Lambda's letters, digits, '-' and '_', not
// only digits (those are version numbers), and without "--" (the separator of URL ids).
func ValidAlias(name string) bool {
	return aliasRE.MatchString(name) && !digitsRE.MatchString(name) && !strings.Contains(name, URLIDSeparator) && name != LatestVersion
}
