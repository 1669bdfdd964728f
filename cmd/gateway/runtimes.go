package main

import (
	"context"
	"encoding/json"
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

  Lists the managed runtimes the agent at -address declares (its runtime blocks), besides
  the built-in custom runtimes (provided, provided.al2, provided.al2023): each one's image,
  the digest it is pinned to once pulled, or why it is not on the node yet. Ask each node
  of a cluster: each declares and pulls its own.

` + apiFlagsHelp
}

func (c *runtimesCommand) Run(args []string) int {
	return runAPI(c.ui, "runtimes", c.Help(), args, 0, func(ctx context.Context, client *api.Client, _ []string) error {
		st, err := client.Status(ctx)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(st["runtimes"])
		var rts []struct {
			Name, Image, Resolved, Error string
		}
		if err := json.Unmarshal(b, &rts); err != nil {
			return fmt.Errorf("reading the agent's runtimes: %w", err)
		}
		node, _ := st["node_name"].(string)
		if len(rts) == 0 {
			c.ui.Output(fmt.Sprintf("Node %s declares no managed runtimes (runtime blocks); functions run on provided, provided.al2 and provided.al2023.", node))
			return nil
		}
		var out strings.Builder
		tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUNTIME\tNODE\tIMAGE\tPRESENT\tPINNED TO / ERROR")
		for _, r := range rts {
			present, detail := "yes", r.Resolved
			if r.Resolved == "" {
				present, detail = "no", r.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, node, r.Image, present, detail)
		}
		_ = tw.Flush()
		c.ui.Output(strings.TrimRight(out.String(), "\n"))
		return nil
	})
}
