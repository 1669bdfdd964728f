// Package config decodes the agent's and the functions' HCL files. Every mistake comes back as
// an hcl.Diagnostic with the file, line and column of the offending expression.
package config

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"

	"github.com/lambdagw/gateway/internal/structs"
)

// Files keeps the parsed sources so diagnostics render with the offending lines.
type Files struct{ parser *hclparse.Parser }

func newFiles() *Files { return &Files{parser: hclparse.NewParser()} }

// WriteDiagnostics renders each diagnostic once, as Terraform does (hcl's text writer: the
// block, the offending source lines, the detail), headed by "file:line:column: severity:
// summary" (the form editors and CI annotate) in place of Terraform's "Error: summary". A
// diagnostic marked sensitiveSource keeps its file:line but not its source lines.
func (f *Files) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	var files map[string]*hcl.File
	if f != nil {
		files = f.parser.Files()
	}
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		head := fmt.Sprintf("%s: %s", sev, d.Summary)
		if d.Subject != nil {
			head = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, head)
		}
		_, sensitive := d.Extra.(sensitiveSource)
		if sensitive {
			// The source line would print a secret to a terminal or CI log.
			c := *d
			c.Subject, c.Context = nil, nil
			d = &c
		}
		var b strings.Builder
		if err := hcl.NewDiagnosticTextWriter(&b, files, 100, false).WriteDiagnostic(d); err != nil {
			return err
		}
		// hcl's first line is "Error: summary"; the rest starts with the blank line after it.
		_, rest, _ := strings.Cut(b.String(), "\n")
		if sensitive {
			rest = "\n  (the source line is not shown: it holds a secret)\n" + rest
		}
		if _, err := io.WriteString(w, head+"\n"+rest); err != nil {
			return err
		}
	}
	return nil
}

// evalContext is where variables and functions (file, env, ...) will be offered to expressions.
func evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Variables: map[string]cty.Value{}}
}

// durationAttr decodes a duration written as "30s"/"1m" or as a number of seconds.
func durationAttr(expr hcl.Expression, ctx *hcl.EvalContext, min, max time.Duration) (time.Duration, hcl.Diagnostics) {
	d, diags := durationValue(expr, ctx)
	if diags.HasErrors() {
		return 0, diags
	}
	if d < min || (max > 0 && d > max) {
		rng := expr.Range()
		detail := fmt.Sprintf("%s is out of range: it must be at least %s.", d, min)
		if max > 0 {
			detail = fmt.Sprintf("%s is out of range: it must be between %s and %s.", d, min, max)
		}
		return 0, hcl.Diagnostics{rangeDiag("Invalid duration", detail, rng)}
	}
	return d, nil
}

// durationValue decodes a duration without checking its range, for settings whose range is a
// rule of internal/structs.
func durationValue(expr hcl.Expression, ctx *hcl.EvalContext) (time.Duration, hcl.Diagnostics) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return 0, diags
	}
	rng := expr.Range()
	bad := func(msg string) (time.Duration, hcl.Diagnostics) {
		return 0, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid duration", Detail: msg, Subject: &rng}}
	}
	switch {
	case v.IsNull() || !v.IsKnown():
		return bad("A duration is required, such as \"30s\" or \"5m\".")
	case v.Type() == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return time.Duration(f * float64(time.Second)), nil
	case v.Type() == cty.String:
		d, err := time.ParseDuration(v.AsString())
		if err != nil {
			return bad(fmt.Sprintf("%q is not a duration; write it like \"30s\", \"1m30s\" or \"500ms\".", v.AsString()))
		}
		return d, nil
	default:
		return bad("A duration must be a string such as \"30s\" or a number of seconds.")
	}
}

// fieldDiags maps the rules internal/structs found broken to diagnostics. attrs names, for each
// FieldError.Field (the Lambda API's name), the attribute that holds the setting; at gives the
// attribute's range (the block's when the file does not set it).
func fieldDiags(errs []structs.FieldError, attrs map[string]string, at func(attr string) hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, e := range errs {
		attr, ok := attrs[e.Field]
		if !ok {
			attr = e.Field // a rule without its attribute here still shows, on the block
		}
		summary := e.Summary
		if summary == "" {
			summary = "Invalid " + strings.TrimPrefix(attr, "cors.")
		}
		detail := e.Message
		if r, n := utf8.DecodeRuneInString(detail); n > 0 {
			detail = string(unicode.ToUpper(r)) + detail[n:]
		}
		diags = append(diags, rangeDiag(summary, detail+".", at(attr)))
	}
	return diags
}

func rangeDiag(summary, detail string, rng hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &rng}
}

// sensitiveSource marks (in hcl.Diagnostic.Extra) a diagnostic whose subject holds a secret:
// WriteDiagnostics then gives its file:line without the source line.
type sensitiveSource struct{}
