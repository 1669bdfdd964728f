package structs

// ProvisionedConcurrency is the provisioned concurrency of one qualifier of a function: how
// many environments are kept initialised and frozen for it, ready before the first call.
type ProvisionedConcurrency struct {
	Function string `json:"function"`
	// Qualifier is a published version's number or an alias (never $LATEST, as in Lambda).
	Qualifier string `json:"qualifier"`
	// Requested is how many environments to keep; at least 1.
	Requested int `json:"requested"`
	// LastModified is set by the proposer (RFC 3339), so every node stores the same.
	LastModified string `json:"last_modified"`
	CreateIndex  uint64 `json:"create_index"`
	ModifyIndex  uint64 `json:"modify_index"`
}

// Copy returns a copy.
func (p *ProvisionedConcurrency) Copy() *ProvisionedConcurrency {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// Share splits n provisioned environments of an alias between its version and its weighted
// additional versions, in proportion to their weights (rounded; the rest to the main version).
func (a *Alias) Share(n int) map[string]int {
	out := map[string]int{}
	rest := n
	for v, w := range a.AdditionalVersionWeights {
		k := int(float64(n)*w + 0.5)
		if k > rest {
			k = rest
		}
		if k > 0 {
			out[v] = k
			rest -= k
		}
	}
	if rest > 0 {
		out[a.FunctionVersion] += rest
	}
	return out
}
