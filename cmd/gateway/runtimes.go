package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/gateway/api"
)

type runtimesCommand struct{ ui cli.Ui }

func (c *runtimesCommand) Synopsis() string {
	return "List the agent's managed runtimes and whether their images are here"
}
func (c *runtimesCommand) Help() string {
	return `Usage: gateway runtimes [-address URL]

  Lists the managed runtimes every node of the cluster declares (its runtime blocks),
  besides the built-in custom runtimes (provided, provided.al2, provided.al2023): on each
  node, each runtime's image and the digest it is pinned to once pulled, or why it is not
  on the node yet. Each node declares and pulls its own; a node that does not answer is
  listed with the error.

` + apiFlagsHelp
}

func (c *runtimesCommand) Run(args []string) int {
	return runAPI(c.ui, "runtimes", c.Help(), args, 0, func(ctx context.Context, client *api.Client, _ []string) error {
		nodes, err := client.Runtimes(ctx)
		if err != nil {
			return err
		}
		var out strings.Builder
		tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUNTIME\tNODE\tIMAGE\tPRESENT\tPINNED TO / ERROR")
		for _, n := range nodes {
			switch {
			case n.Error != "":
				fmt.Fprintf(tw, "?\t%s\t\tunknown\tthe node did not answer: %s\n", n.Node, n.Error)
			case len(n.Runtimes) == 0:
				fmt.Fprintf(tw, "-\t%s\t\t\tno runtime blocks: provided, provided.al2 and provided.al2023 only\n", n.Node)
			}
			for _, r := range n.Runtimes {
				present, detail := "yes", r.Resolved
				if r.Resolved == "" {
					present, detail = "no", r.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, n.Node, r.Image, present, detail)
			}
		}
		_ = tw.Flush()
		c.ui.Output(strings.TrimRight(out.String(), "\n"))
		return nil
	})
}
