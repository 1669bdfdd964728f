package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/gateway/api"
)

type asyncCommand struct{}

func (c *asyncCommand) Synopsis() string { return "Inspect asynchronous invocations" }
func (c *asyncCommand) Help() string {
	return `Usage: gateway async <subcommand> [options] [args]

  Asynchronous invocations (InvocationType Event) are kept on NATS JetStream until they have
  run; these commands show what is waiting.

Subcommands:
    status    Show a function's waiting, running and oldest events`
}
func (c *asyncCommand) Run([]string) int { return cli.RunResultHelp }

type asyncStatusCommand struct{ ui cli.Ui }

func (c *asyncStatusCommand) Synopsis() string {
	return "Show a function's asynchronous invocations: waiting, running, oldest"
}
func (c *asyncStatusCommand) Help() string {
	return `Usage: gateway async status [-address URL] FUNCTION

  Shows the function's asynchronous invocations as the cluster's durable queue holds them:
  the events waiting to run (retries waiting for their backoff included), those running on
  some node, and how long ago the oldest was accepted; then what became of those run, added
  up over the nodes (each counts since it started): succeeded, retried, out of retries,
  expired, records delivered to destinations, and dropped.

` + apiFlagsHelp
}

func (c *asyncStatusCommand) Run(args []string) int {
	return runAPI(c.ui, "async status", c.Help(), args, 1, func(ctx context.Context, client *api.Client, args []string) error {
		st, err := client.AsyncStatus(ctx, args[0])
		if err != nil {
			return err
		}
		var out strings.Builder
		tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FUNCTION\tWAITING\tRUNNING\tOLDEST\tSUCCEEDED\tRETRIED\tRETRIES EXHAUSTED\tEXPIRED\tTO DESTINATIONS\tDROPPED")
		oldest := "-"
		if st.OldestAgeSeconds > 0 {
			oldest = (time.Duration(st.OldestAgeSeconds * float64(time.Second)).Round(time.Second)).String() + " ago"
		}
		n := st.Counters
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", st.Function, st.Waiting, st.InFlight, oldest,
			n.Succeeded, n.Retried, n.RetriesExhausted, n.Expired, n.Delivered, n.Dropped)
		_ = tw.Flush()
		if len(st.Unanswered) > 0 {
			out.WriteString("the counts leave out the nodes that did not answer: " + strings.Join(st.Unanswered, ", ") + "\n")
		}
		c.ui.Output(strings.TrimRight(out.String(), "\n"))
		return nil
	})
}
