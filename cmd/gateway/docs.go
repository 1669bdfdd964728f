package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/cli"
)

// docsCommand (hidden) prints docs/cli.md: every command's help, so the reference cannot drift
// from the binary. make docs runs it; TestCLIDocs fails when the file differs.
type docsCommand struct {
	ui   cli.Ui
	cmds func() map[string]cli.CommandFactory
}

func (c *docsCommand) Synopsis() string { return "Print the CLI reference (docs/cli.md)" }
func (c *docsCommand) Help() string {
	return "Usage: gateway docs\n\n  Prints the CLI reference, docs/cli.md, made from every command's help (make docs)."
}

func (c *docsCommand) Run(args []string) int {
	if len(args) != 0 {
		return cli.RunResultHelp
	}
	out, err := cliDocs(c.cmds())
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	c.ui.Output(strings.TrimRight(out, "\n"))
	return 0
}

// cliDocs renders the reference: the usage, then each visible command's synopsis and help in
// the order of their names (a group before its subcommands).
func cliDocs(cmds map[string]cli.CommandFactory) (string, error) {
	var b strings.Builder
	b.WriteString("# gateway command reference\n\n")
	b.WriteString("<!-- Generated from the commands' help by `make docs` (go run ./cmd/gateway docs > docs/cli.md): edit the help in cmd/gateway, not this file. -->\n\n")
	b.WriteString("```text\n" + strings.TrimRight(cli.BasicHelpFunc("gateway")(topLevel(visibleCommands(cmds))), "\n") + "\n```\n")
	names := visible(cmds)
	sort.Strings(names)
	for _, name := range names {
		c, err := cmds[name]()
		if err != nil {
			return "", fmt.Errorf("command %s: %w", name, err)
		}
		fmt.Fprintf(&b, "\n## gateway %s\n\n%s.\n\n```text\n%s\n```\n", name, strings.TrimSuffix(c.Synopsis(), "."), strings.TrimRight(c.Help(), "\n"))
	}
	return b.String(), nil
}

func visibleCommands(cmds map[string]cli.CommandFactory) map[string]cli.CommandFactory {
	out := map[string]cli.CommandFactory{}
	for _, name := range visible(cmds) {
		out[name] = cmds[name]
	}
	return out
}
