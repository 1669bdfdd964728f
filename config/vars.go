package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Inputs are the values of function files' variables from outside the files, in Terraform's
// order of precedence: GATEWAY_VAR_<name> environment variables, then var files, then -var.
type Inputs struct {
	Vars     map[string]string // -var name=value
	VarFiles []string          // -var-file FILE: name = value attributes
}

// variable is a variable block: variable "region" { default = "eu" description = "..." }.
type variable struct {
	Name        string     `hcl:"name,label"`
	Default     *cty.Value `hcl:"default,optional"`
	Description *string    `hcl:"description,optional"`
	Remain      hcl.Body   `hcl:",remain"`
	DeclRange   hcl.Range
}

// variableValues resolves every declared variable, reporting undeclared inputs and variables
// without a value.
func variableValues(files *Files, decls []*hcl.Block, in Inputs) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	declared := map[string]*variable{}
	for _, blk := range decls {
		var v variable
		d := gohcl.DecodeBody(blk.Body, nil, &v)
		diags = append(diags, d...)
		v.Name, v.DeclRange = blk.Labels[0], blk.DefRange
		if prev, dup := declared[v.Name]; dup {
			rng := blk.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate variable",
				Detail: fmt.Sprintf("Variable %q is also declared at %s.", v.Name, prev.DeclRange), Subject: &rng})
			continue
		}
		declared[v.Name] = &v
	}
	values := map[string]cty.Value{}
	for name, v := range declared {
		if v.Default != nil {
			values[name] = *v.Default
		}
		if s, ok := os.LookupEnv("GATEWAY_VAR_" + name); ok {
			values[name] = cty.StringVal(s)
		}
	}
	for _, path := range in.VarFiles {
		f, d := files.parser.ParseHCLFile(path)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		attrs, d := f.Body.JustAttributes()
		diags = append(diags, d...)
		for name, a := range attrs {
			if declared[name] == nil {
				rng := a.NameRange
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
					Detail: fmt.Sprintf("%s sets %q, which no variable block declares.", path, name), Subject: &rng})
				continue
			}
			val, d := a.Expr.Value(nil)
			diags = append(diags, d...)
			values[name] = val
		}
	}
	names := make([]string, 0, len(in.Vars))
	for name := range in.Vars {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if declared[name] == nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
				Detail: fmt.Sprintf("-var %s=...: no variable block declares %q.", name, name)})
			continue
		}
		values[name] = cty.StringVal(in.Vars[name])
	}
	for name, v := range declared {
		if _, ok := values[name]; !ok {
			rng := v.DeclRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No value for variable",
				Detail: fmt.Sprintf("Variable %q has no default: set it with -var %s=..., -var-file or GATEWAY_VAR_%s.", name, name, name), Subject: &rng})
		}
	}
	return values, diags
}

// functions are the HCL functions function files may call; paths are relative to the working
// directory, as Terraform's.
func functions() map[string]function.Function {
	str := []function.Parameter{{Name: "s", Type: cty.String}}
	return map[string]function.Function{
		"file": function.New(&function.Spec{Params: str, Type: function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				b, err := os.ReadFile(filepath.Clean(args[0].AsString()))
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(string(b)), nil
			}}),
		"filesha256": function.New(&function.Spec{Params: str, Type: function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				b, err := os.ReadFile(filepath.Clean(args[0].AsString()))
				if err != nil {
					return cty.NilVal, err
				}
				sum := sha256.Sum256(b)
				return cty.StringVal(hex.EncodeToString(sum[:])), nil
			}}),
		"env": function.New(&function.Spec{Params: str, Type: function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				v, ok := os.LookupEnv(args[0].AsString())
				if !ok {
					return cty.NilVal, fmt.Errorf("environment variable %s is not set", args[0].AsString())
				}
				return cty.StringVal(v), nil
			}}),
		"trimspace": function.New(&function.Spec{Params: str, Type: function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				return cty.StringVal(strings.TrimSpace(args[0].AsString())), nil
			}}),
	}
}
