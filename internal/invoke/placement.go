package invoke

import "github.com/lambdagw/gateway/internal/structs"

// WarmKey names the environments of one function revision and version, for placement.
func WarmKey(fn *structs.Function, version string) string {
	return PlacementKey(fn.Name, version, fn.RevisionID)
}

// PlacementKey is WarmKey from its parts, for the node that counts its environments.
func PlacementKey(name, version, revision string) string {
	return name + "\x00" + version + "\x00" + revision
}

// Placement is what a node tells its peers so they can send it calls: its warm environments
// by WarmKey and how many more it could start.
type Placement struct {
	Warm map[string]int `json:"warm,omitempty"`
	Free int            `json:"free"`
	// Provisioned counts the provisioned environments past their Init, by WarmKey, so the
	// cluster's readiness of a provisioned concurrency configuration is the sum over nodes.
	Provisioned map[string]int `json:"provisioned,omitempty"`
}

// Provision asks a node for Count initialised environments of a function version.
type Provision struct {
	// Function is the published version (its Qualifier is the version number).
	Function *structs.Function
	Count    int
}
