// Command gateway is the one binary: the agent, the operator CLI, and (hidden) the `init`
// personality libcontainer re-executes inside a new environment.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/internal/agent"
	// The sandbox driver answers the `init` re-exec in its package init(), before main runs.
	_ "github.com/lambdagw/gateway/sandbox/libcontainer"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int { return runIO(args, os.Stdin, os.Stdout, os.Stderr) }

// hidden are the commands the usage does not list: docs renders this CLI's reference.
var hidden = []string{"docs"}

// runIO runs the CLI as Nomad and Consul wire hashicorp/cli: `gateway`, `gateway help` and
// `gateway -h` print the usage and exit 0 (`gateway help CMD` prints CMD's help); -v,
// -version and --version are the version command; an unknown command is named as such and
// exits 1.
func runIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ui := &cli.BasicUi{Reader: stdin, Writer: stdout, ErrorWriter: stderr}
	cmds := commands(ui)
	help := cli.FilteredHelpFunc(visible(cmds), cli.BasicHelpFunc("gateway"))
	switch {
	case len(args) == 0:
		args = []string{"-help"}
	case args[0] == "help":
		args = append(args[1:], "-help")
	case args[0] == "-v" || args[0] == "-version" || args[0] == "--version":
		args = []string{"version"}
	}
	if name, ok := unknownCommand(cmds, args); ok {
		fmt.Fprintf(stderr, "gateway: unknown command %q\n\n%s\n", name, help(topLevel(cmds)))
		return 1
	}
	c := &cli.CLI{
		Name: "gateway", Version: versionString(), Args: args, Commands: cmds,
		HelpFunc: help, HelpWriter: stdout, ErrorWriter: stderr, HiddenCommands: hidden,
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
	return code
}

// versionString is what -version, --version and `gateway version` print.
func versionString() string { return "gateway " + agent.Version }

// visible are the names of the commands the usage lists.
func visible(cmds map[string]cli.CommandFactory) []string {
	var out []string
	for name := range cmds {
		if !isHidden(name) {
			out = append(out, name)
		}
	}
	return out
}

func isHidden(name string) bool {
	for _, h := range hidden {
		if name == h || strings.HasPrefix(name, h+" ") {
			return true
		}
	}
	return false
}

// unknownCommand names the command args ask for when there is none: an unknown first word,
// or an unknown word after a command that only groups others (gateway queue nosuch).
func unknownCommand(cmds map[string]cli.CommandFactory, args []string) (string, bool) {
	name := ""
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		next := strings.TrimPrefix(name+" "+a, " ")
		if _, ok := cmds[next]; ok {
			name = next
			continue
		}
		if name == "" || hasSubcommands(cmds, name) {
			return next, true
		}
		break // an argument of the command
	}
	return "", false
}

func hasSubcommands(cmds map[string]cli.CommandFactory, name string) bool {
	for n := range cmds {
		if strings.HasPrefix(n, name+" ") {
			return true
		}
	}
	return false
}

// topLevel are the commands without a parent, as the usage lists them.
func topLevel(cmds map[string]cli.CommandFactory) map[string]cli.CommandFactory {
	out := map[string]cli.CommandFactory{}
	for name, f := range cmds {
		if !strings.Contains(name, " ") {
			out[name] = f
		}
	}
	return out
}

func commands(ui cli.Ui) map[string]cli.CommandFactory {
	cmds := map[string]cli.CommandFactory{
		"agent": func() (cli.Command, error) { return &agentCommand{ui: ui}, nil },
		"apply": func() (cli.Command, error) { return &applyCommand{ui: ui}, nil },
		"async": func() (cli.Command, error) { return &asyncCommand{}, nil },
		"async status": func() (cli.Command, error) {
			return &asyncStatusCommand{ui: ui}, nil
		},
		"plan":      func() (cli.Command, error) { return &planCommand{ui: ui}, nil },
		"validate":  func() (cli.Command, error) { return &validateCommand{ui: ui}, nil },
		"invoke":    func() (cli.Command, error) { return &invokeCommand{ui: ui}, nil },
		"functions": func() (cli.Command, error) { return &functionsCommand{ui: ui}, nil },
		"logs":      func() (cli.Command, error) { return &logsCommand{ui: ui}, nil },
		"cluster":   func() (cli.Command, error) { return &clusterCommand{}, nil },
		"cluster members": func() (cli.Command, error) {
			return &clusterMembersCommand{ui: ui}, nil
		},
		"cluster join":     func() (cli.Command, error) { return &clusterJoinCommand{ui: ui}, nil },
		"cluster leave":    func() (cli.Command, error) { return &clusterLeaveCommand{ui: ui}, nil },
		"cluster snapshot": func() (cli.Command, error) { return &snapshotCommand{}, nil },
		"cluster snapshot save": func() (cli.Command, error) {
			return &snapshotSaveCommand{ui: ui}, nil
		},
		"cluster snapshot restore": func() (cli.Command, error) {
			return &snapshotRestoreCommand{ui: ui}, nil
		},
		"plugins":         func() (cli.Command, error) { return &pluginsCommand{ui: ui}, nil },
		"runtimes":        func() (cli.Command, error) { return &runtimesCommand{ui: ui}, nil },
		"plugin":          func() (cli.Command, error) { return &pluginCommand{}, nil },
		"plugin checksum": func() (cli.Command, error) { return &pluginChecksumCommand{ui: ui}, nil },
		"queue":           func() (cli.Command, error) { return &queueCommand{}, nil },
		"queue send":      func() (cli.Command, error) { return &queueSendCommand{ui: ui}, nil },
		"queue receive":   func() (cli.Command, error) { return &queueReceiveCommand{ui: ui}, nil },
		"stream":          func() (cli.Command, error) { return &streamCommand{}, nil },
		"stream put":      func() (cli.Command, error) { return &streamPutCommand{ui: ui}, nil },
		"sign":            func() (cli.Command, error) { return &signCommand{ui: ui}, nil },
		"sign keygen":     func() (cli.Command, error) { return &signKeygenCommand{ui: ui}, nil },
		"sign attach":     func() (cli.Command, error) { return &signAttachCommand{ui: ui}, nil },
		"sign verify":     func() (cli.Command, error) { return &signVerifyCommand{ui: ui}, nil },
		"tls":             func() (cli.Command, error) { return &tlsCommand{}, nil },
		"tls ca":          func() (cli.Command, error) { return &tlsCommand{}, nil },
		"tls ca create":   func() (cli.Command, error) { return &tlsCACreateCommand{ui: ui}, nil },
		"tls cert":        func() (cli.Command, error) { return &tlsCommand{}, nil },
		"tls cert create": func() (cli.Command, error) { return &tlsCertCreateCommand{ui: ui}, nil },
		"version":         func() (cli.Command, error) { return &versionCommand{ui: ui}, nil },
	}
	cmds["docs"] = func() (cli.Command, error) {
		return &docsCommand{ui: ui, cmds: func() map[string]cli.CommandFactory { return cmds }}, nil
	}
	return cmds
}

type versionCommand struct{ ui cli.Ui }

func (c *versionCommand) Help() string     { return "Usage: gateway version" }
func (c *versionCommand) Synopsis() string { return "Print the gateway's version" }
func (c *versionCommand) Run([]string) int { c.ui.Output(versionString()); return 0 }
