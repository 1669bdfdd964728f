package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoggingConfigBlock: a function's logging_config block becomes its LoggingConfig, the
// defaults left out; each mistake names its file and line.
func TestLoggingConfigBlock(t *testing.T) {
	dir := t.TempDir()
	_ = os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	head := "function \"f\" {\n  runtime = \"provided.al2023\"\n  code = \"./build\"\n"
	p := write(t, dir, "f.hcl", head+"  logging_config {\n    log_format = \"JSON\"\n    application_log_level = \"DEBUG\"\n    system_log_level = \"WARN\"\n    log_group = \"/aws/lambda/f\"\n  }\n}\n")
	fns, _, diags := LoadFunctions(p)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	l := fns[0].Structs().Logging
	if l == nil || l.LogFormat != "JSON" || l.ApplicationLogLevel != "DEBUG" || l.SystemLogLevel != "WARN" || l.LogGroup != "" {
		t.Fatalf("logging: %+v", l)
	}
	p = write(t, dir, "g.hcl", head+"  logging_config {\n    log_format = \"Text\"\n  }\n}\n")
	if fns, _, diags = LoadFunctions(p); diags.HasErrors() || fns[0].Structs().Logging != nil {
		t.Fatalf("the default Text: %+v %v", fns[0].Structs().Logging, diags)
	}
	for _, c := range []struct{ body, line, summary string }{
		{"  logging_config {\n    log_format = \"XML\"\n  }\n", ":5:18", "Invalid logging_config.log_format"},
		{"  logging_config {\n    application_log_level = \"DEBUG\"\n  }\n", ":5:29", "Invalid logging_config.application_log_level"},
		{"  logging_config {\n    log_format = \"JSON\"\n    system_log_level = \"TRACE\"\n  }\n", ":6:24", "Invalid logging_config.system_log_level"},
		{"  logging_config {\n    log_group = \"a b\"\n  }\n", ":5:17", "Invalid logging_config.log_group"},
		{"  logging_config {\n  }\n  logging_config {\n  }\n", ":6:", "Duplicate logging_config block"},
		{"  logging_config {\n    format = \"JSON\"\n  }\n", ":5:", "Unsupported argument"},
	} {
		t.Run(c.summary, func(t *testing.T) {
			p := write(t, dir, "bad.hcl", head+c.body+"}\n")
			_, files, diags := LoadFunctions(p)
			var b strings.Builder
			_ = files.WriteDiagnostics(&b, diags)
			if !diags.HasErrors() || !strings.Contains(b.String(), c.summary) || !strings.Contains(b.String(), "bad.hcl"+c.line) {
				t.Fatalf("diagnostics lack %q at %s:\n%s", c.summary, c.line, b.String())
			}
		})
	}
}
