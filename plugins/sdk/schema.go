package sdk

import (
	"encoding/json"
	"fmt"

	pb "github.com/lambdagw/gateway/plugins/sdk/proto"
)

// Attribute types of a plugin's configuration block.
const (
	TypeString     = "string"
	TypeNumber     = "number"
	TypeBool       = "bool"
	TypeListString = "list(string)"
	TypeMapString  = "map(string)"
)

// Attribute is one attribute of a plugin's configuration block.
type Attribute struct {
	Name        string
	Type        string // one of the Type constants
	Required    bool
	Description string
}

// Schema describes a plugin's configuration block (`plugin "NAME" { config { ... } }`); the host
// decodes the block against it, so a user's mistakes come back as HCL diagnostics with
// file:line before the plugin sees them.
type Schema struct {
	Attributes []Attribute
}

// Diagnostic is a problem a plugin finds in its configuration, reported to the user at the
// attribute's place in the HCL file.
type Diagnostic struct {
	Attribute string // the attribute it is about, or "" for the block
	Summary   string
	Detail    string
}

// ConfigureRequest is what a plugin gets before anything else.
type ConfigureRequest struct {
	// Config is the plugin's configuration block as JSON, already checked against its schema.
	Config json.RawMessage
	// HostInfo: node_name, region, data_dir (a folder that is the plugin's own and survives
	// restarts), nats_url (the agent's NATS JetStream, when it runs one) and nats_nkey_seed (the
	// seed of the user NKey the embedded one admits plugins with, new at each start of the
	// agent: a secret, to pass to nats.Nkey and never to log).
	HostInfo map[string]string
}

// DecodeConfig decodes the configuration block into v (a struct with json tags, attribute names
// as keys).
func (r ConfigureRequest) DecodeConfig(v any) error {
	if len(r.Config) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Config, v); err != nil {
		return fmt.Errorf("decoding the plugin's configuration: %w", err)
	}
	return nil
}

func schemaToProto(apiVersion int32, s Schema) *pb.Schema {
	out := &pb.Schema{ApiVersion: apiVersion}
	for _, a := range s.Attributes {
		out.Attributes = append(out.Attributes, &pb.Attribute{Name: a.Name, Type: a.Type, Required: a.Required, Description: a.Description})
	}
	return out
}

func schemaFromProto(s *pb.Schema) (int, Schema) {
	var out Schema
	for _, a := range s.GetAttributes() {
		out.Attributes = append(out.Attributes, Attribute{Name: a.Name, Type: a.Type, Required: a.Required, Description: a.Description})
	}
	return int(s.GetApiVersion()), out
}

func diagsToProto(ds []Diagnostic) []*pb.Diagnostic {
	var out []*pb.Diagnostic
	for _, d := range ds {
		out = append(out, &pb.Diagnostic{Attribute: d.Attribute, Summary: d.Summary, Detail: d.Detail})
	}
	return out
}

func diagsFromProto(ds []*pb.Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range ds {
		out = append(out, Diagnostic{Attribute: d.Attribute, Summary: d.Summary, Detail: d.Detail})
	}
	return out
}
