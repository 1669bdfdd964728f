// Command gateway is the one binary: the agent, the operator CLI, and (hidden) the `init`
// personality libcontainer re-executes inside a new environment.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/internal/agent"
	// The sandbox driver answers the `init` re-exec in its package init(), before main runs.
	_ "github.com/lambdagw/gateway/sandbox/libcontainer"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ui := &cli.BasicUi{Reader: os.Stdin, Writer: os.Stdout, ErrorWriter: os.Stderr}
	c := cli.NewCLI("gateway", agent.Version)
	c.Args = args
	c.Commands = commands(ui)
	code, err := c.Run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 1
	}
	return code
}

func commands(ui cli.Ui) map[string]cli.CommandFactory {
	return map[string]cli.CommandFactory{
		"agent":     func() (cli.Command, error) { return &agentCommand{ui: ui}, nil },
		"apply":     func() (cli.Command, error) { return &applyCommand{ui: ui}, nil },
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
		"plugin":          func() (cli.Command, error) { return &pluginCommand{}, nil },
		"plugin checksum": func() (cli.Command, error) { return &pluginChecksumCommand{ui: ui}, nil },
		"queue":           func() (cli.Command, error) { return &queueCommand{}, nil },
		"queue send":      func() (cli.Command, error) { return &queueSendCommand{ui: ui}, nil },
		"tls":             func() (cli.Command, error) { return &tlsCommand{}, nil },
		"tls ca":          func() (cli.Command, error) { return &tlsCommand{}, nil },
		"tls ca create":   func() (cli.Command, error) { return &tlsCACreateCommand{ui: ui}, nil },
		"tls cert":        func() (cli.Command, error) { return &tlsCommand{}, nil },
		"tls cert create": func() (cli.Command, error) { return &tlsCertCreateCommand{ui: ui}, nil },
		"version":         func() (cli.Command, error) { return &versionCommand{ui: ui}, nil },
	}
}

type versionCommand struct{ ui cli.Ui }

func (c *versionCommand) Help() string     { return "Usage: gateway version" }
func (c *versionCommand) Synopsis() string { return "Print the gateway's version" }
func (c *versionCommand) Run([]string) int { c.ui.Output("gateway " + agent.Version); return 0 }
