// Package logfmt holds the hclog wrappers that keep the agent's and the plugins' log lines
// readable: durations as text, plugin lines relogged once under the plugin's name.
package logfmt

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Duration is d as log text: Go's notation rounded to three decimals or fewer ("1.234ms",
// "2.5s", "94.388us"), with "us" for microseconds so that hclog needs no quotes; time.ParseDuration
// reads it back.
func Duration(d time.Duration) string {
	switch a := d.Abs(); {
	case a >= time.Second:
		d = d.Round(time.Millisecond)
	case a >= time.Millisecond:
		d = d.Round(time.Microsecond)
	}
	return strings.Replace(d.String(), "µs", "us", 1)
}

// Durations returns a logger that writes time.Duration values with Duration ("1.2ms"). JSON
// output (log_json, and every plugin's stderr) would write them as integer nanoseconds, which
// a plugin's host then relogs as 1.2e+06; plain output would quote "µs".
func Durations(l hclog.Logger) hclog.Logger { return durations{l} }

type durations struct{ hclog.Logger }

func (d durations) Log(level hclog.Level, msg string, args ...any) {
	d.Logger.Log(level, msg, durationArgs(args)...)
}
func (d durations) Trace(msg string, args ...any) { d.Logger.Trace(msg, durationArgs(args)...) }
func (d durations) Debug(msg string, args ...any) { d.Logger.Debug(msg, durationArgs(args)...) }
func (d durations) Info(msg string, args ...any)  { d.Logger.Info(msg, durationArgs(args)...) }
func (d durations) Warn(msg string, args ...any)  { d.Logger.Warn(msg, durationArgs(args)...) }
func (d durations) Error(msg string, args ...any) { d.Logger.Error(msg, durationArgs(args)...) }
func (d durations) With(args ...any) hclog.Logger {
	return durations{d.Logger.With(durationArgs(args)...)}
}
func (d durations) Named(name string) hclog.Logger      { return durations{d.Logger.Named(name)} }
func (d durations) ResetNamed(name string) hclog.Logger { return durations{d.Logger.ResetNamed(name)} }

// durationArgs replaces the time.Duration values of key/value pairs by their text, in a copy.
func durationArgs(args []any) []any {
	var out []any
	for i := 1; i < len(args); i += 2 {
		if d, ok := args[i].(time.Duration); ok {
			if out == nil {
				out = append([]any(nil), args...)
			}
			out[i] = Duration(d)
		}
	}
	if out == nil {
		return args
	}
	return out
}

// PluginClient returns the logger to give go-plugin's client for the plugin binary at path:
// go-plugin logs its own lines on it, and relogs each JSON line of the plugin's stderr on
// l.Named(base name of path) with the plugin's timestamp added as a "timestamp" field. This
// logger relogs those lines on l itself (or on a sub-logger named after the line's @module,
// less the plugin's own name), with neither the second timestamp nor @module, keys sorted,
// and whole JSON numbers written as integers.
func PluginClient(l hclog.Logger, path string) hclog.Logger {
	base := path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		base = path[i+1:]
	}
	return pluginClient{Logger: l, base: base, name: l.Name()}
}

type pluginClient struct {
	hclog.Logger
	base string // the binary's name: go-plugin names the stderr logger after it
	name string // the plugin's logger name, whose last part is the plugin's name
}

func (p pluginClient) Named(name string) hclog.Logger {
	if name == p.base {
		return pluginStderr{Logger: p.Logger, plugin: p.name[strings.LastIndexByte(p.name, '.')+1:]}
	}
	return p.Logger.Named(name)
}

// pluginStderr relogs the lines go-plugin parsed from a plugin's stderr.
type pluginStderr struct {
	hclog.Logger
	plugin string
}

func (p pluginStderr) Log(level hclog.Level, msg string, args ...any) {
	l, args := p.clean(args)
	if l == nil {
		l = p.Logger
	}
	l.Log(level, msg, args...)
}
func (p pluginStderr) Trace(msg string, args ...any) { p.Log(hclog.Trace, msg, args...) }
func (p pluginStderr) Debug(msg string, args ...any) { p.Log(hclog.Debug, msg, args...) }
func (p pluginStderr) Info(msg string, args ...any)  { p.Log(hclog.Info, msg, args...) }
func (p pluginStderr) Warn(msg string, args ...any)  { p.Log(hclog.Warn, msg, args...) }
func (p pluginStderr) Error(msg string, args ...any) { p.Log(hclog.Error, msg, args...) }

// clean drops go-plugin's "timestamp" (the line is logged now, with its own) and @module (which
// becomes the sub-logger), sorts the pairs by key (go-plugin gives them in map order) and writes
// whole numbers as integers.
func (p pluginStderr) clean(args []any) (hclog.Logger, []any) {
	var l hclog.Logger
	type kv struct {
		k string
		v any
	}
	pairs := make([]kv, 0, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		switch k {
		case "timestamp":
			continue
		case "@module":
			if m, _ := args[i+1].(string); m != "" && m != p.plugin {
				l = p.Logger.Named(strings.TrimPrefix(m, p.plugin+"."))
			}
			continue
		}
		v := args[i+1]
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			v = strconv.FormatInt(int64(f), 10)
		}
		pairs = append(pairs, kv{k, v})
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
	out := make([]any, 0, 2*len(pairs))
	for _, p := range pairs {
		out = append(out, p.k, p.v)
	}
	return l, out
}
