// Package sdk is what a gateway plugin imports, and all it imports of the gateway: the plugin
// types (TriggerSource, Extension), the go-plugin handshake, Serve for a plugin's main, and the
// gRPC shims both sides use. Plugins run as subprocesses of the agent (hashicorp/go-plugin with
// gRPC and AutoMTLS); the agent checks each binary's SHA-256 before it starts it.
//
// A trigger's main is:
//
//	func main() { sdk.Serve(sdk.ServeOpts{Trigger: &mySource{}}) }
package sdk

import (
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/lambdagw/gateway/plugins/sdk/logfmt"
)

// ProtocolVersion is the version of the plugin protocol as a whole (go-plugin's handshake).
const ProtocolVersion = 1

// The API version of each plugin type; a host refuses a plugin whose version it does not speak.
const (
	TriggerAPIVersion   = 1
	ExtensionAPIVersion = 1
)

// Plugin names in go-plugin's plugin set.
const (
	TriggerPluginName   = "trigger"
	ExtensionPluginName = "extension"
)

// Handshake is shared by the gateway and its plugins. It is not a security measure (the
// checksum is): it keeps a plugin binary from being run by hand or by another host.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "LAMBDAGW_PLUGIN",
	MagicCookieValue: "f0b7d1e3c2a94d5e8b6a1c0d9e8f7a6b",
}

// PluginSet is the plugin set of ProtocolVersion, with the implementations given (nil ones are
// left out, so a host dispensing them finds they are not served).
func PluginSet(trigger TriggerSource, ext Extension) plugin.PluginSet {
	ps := plugin.PluginSet{}
	if trigger != nil {
		ps[TriggerPluginName] = &TriggerPlugin{Impl: trigger}
	}
	if ext != nil {
		ps[ExtensionPluginName] = &ExtensionPlugin{Impl: ext}
	}
	return ps
}

// ServeOpts says what a plugin binary implements: a trigger source, an extension, or both.
type ServeOpts struct {
	Trigger   TriggerSource
	Extension Extension
	// Logger is the plugin's logger; its lines reach the agent's log under the plugin's name.
	// The default writes JSON to stderr, which go-plugin passes on to the host.
	Logger hclog.Logger
}

// Serve runs the plugin until the host stops it. It does not return.
func Serve(opts ServeOpts) {
	if opts.Logger == nil {
		opts.Logger = Logger()
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: PluginSet(opts.Trigger, opts.Extension)},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           opts.Logger,
	})
	os.Exit(0)
}

// Logger returns the logger a plugin should use: its lines (JSON on stderr) are parsed by the
// host and logged with their level and fields under the plugin's name.
// Durations are written as text ("1.5s"). Make it before calling Serve: Serve then points
// os.Stderr at a pipe the host does not log.
func Logger() hclog.Logger {
	return logfmt.Durations(hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: os.Stderr, JSONFormat: true}))
}
