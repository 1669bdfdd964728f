package logfmt

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestDurationsInJSON: through Durations, a JSON logger writes time.Duration values as text,
// in the line's fields, in With's and in a Named logger's, and leaves the caller's args alone.
func TestDurationsInJSON(t *testing.T) {
	var out bytes.Buffer
	l := Durations(hclog.New(&hclog.LoggerOptions{Output: &out, JSONFormat: true, Level: hclog.Trace}))
	args := []any{"took", 1500 * time.Millisecond, "n", 3}
	l.With("timeout", 30*time.Second).Named("sub").Info("done", args...)
	if args[1] != 1500*time.Millisecond {
		t.Errorf("the caller's args changed: %v", args)
	}
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if line["took"] != "1.5s" || line["timeout"] != "30s" || line["n"] != float64(3) || line["@module"] != "sub" {
		t.Errorf("line %s", out.String())
	}
}

// TestDuration: durations round to at most three decimals and use "us", so hclog writes them
// unquoted, and they parse back.
func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		94388 * time.Nanosecond:   "94.388us",
		1234567 * time.Nanosecond: "1.235ms",
		2500 * time.Millisecond:   "2.5s",
		1234567891:                "1.235s",
		90 * time.Minute:          "1h30m0s",
		0:                         "0s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%d) = %q, want %q", d, got, want)
		}
		if _, err := time.ParseDuration(want); err != nil {
			t.Errorf("%q does not parse: %v", want, err)
		}
	}
	var out bytes.Buffer
	Durations(hclog.New(&hclog.LoggerOptions{Output: &out})).Info("x", "took", 94388*time.Nanosecond)
	if !strings.HasSuffix(out.String(), "[INFO]  x: took=94.388us\n") {
		t.Errorf("line %q", out.String())
	}
}
