package host

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/plugins/sdk"
)

// attrType maps a schema attribute type to its cty type.
func attrType(t string) (cty.Type, bool) {
	switch t {
	case sdk.TypeString:
		return cty.String, true
	case sdk.TypeNumber:
		return cty.Number, true
	case sdk.TypeBool:
		return cty.Bool, true
	case sdk.TypeListString:
		return cty.List(cty.String), true
	case sdk.TypeMapString:
		return cty.Map(cty.String), true
	}
	return cty.NilType, false
}

// decodeConfig decodes a plugin's config block against the schema it gave, into the JSON the
// plugin receives; mistakes are a *ConfigError with the block's file:line diagnostics.
func decodeConfig(p config.Plugin, schema sdk.Schema) ([]byte, error) {
	spec := hcldec.ObjectSpec{}
	for _, a := range schema.Attributes {
		ty, ok := attrType(a.Type)
		if !ok {
			return nil, fmt.Errorf("the plugin's schema gives attribute %q the unknown type %q", a.Name, a.Type)
		}
		spec[a.Name] = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
	}
	body := p.Config
	if body == nil {
		body = hcl.EmptyBody()
	}
	val, diags := hcldec.Decode(body, spec, nil)
	if diags.HasErrors() {
		if p.Config == nil {
			// No config block at all: point at the plugin block.
			for _, d := range diags {
				if d.Subject == nil || d.Subject.Filename == "" {
					rng := p.DeclRange
					d.Subject = &rng
				}
			}
		}
		return nil, &ConfigError{Plugin: p.Name, Diags: diags}
	}
	// Leave out the attributes not set, so the plugin sees its own defaults.
	attrs := map[string]cty.Value{}
	for name, v := range val.AsValueMap() {
		if !v.IsNull() {
			attrs[name] = v
		}
	}
	obj := cty.EmptyObjectVal
	if len(attrs) > 0 {
		obj = cty.ObjectVal(attrs)
	}
	b, err := ctyjson.Marshal(obj, obj.Type())
	if err != nil {
		return nil, fmt.Errorf("encoding the plugin's configuration: %w", err)
	}
	return b, nil
}

// pluginDiags places the plugin's own diagnostics at the attributes they name.
func pluginDiags(p config.Plugin, ds []sdk.Diagnostic) hcl.Diagnostics {
	var attrs hcl.Attributes
	if p.Config != nil {
		attrs, _ = p.Config.JustAttributes()
	}
	var out hcl.Diagnostics
	for _, d := range ds {
		rng := p.DeclRange
		if a, ok := attrs[d.Attribute]; ok {
			rng = a.Expr.Range()
		} else if p.Config != nil {
			rng = p.Config.MissingItemRange()
		}
		summary := d.Summary
		if d.Attribute != "" && summary == "" {
			summary = "Invalid " + d.Attribute
		}
		out = append(out, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: d.Detail, Subject: &rng})
	}
	return out
}
