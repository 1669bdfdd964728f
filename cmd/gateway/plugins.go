package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/plugins/host"
)

type pluginsCommand struct{ ui cli.Ui }

func (c *pluginsCommand) Synopsis() string { return "List the agent's plugins and their health" }
func (c *pluginsCommand) Help() string {
	return `Usage: gateway plugins [-address URL]

  Lists the plugins of the agent at -address: their state (running, starting, failed
  and when it is started again, refused), restarts, last error, and each trigger
  mapping the plugin runs on that node.

` + apiFlagsHelp
}

func (c *pluginsCommand) Run(args []string) int {
	return runAPI(c.ui, "plugins", c.Help(), args, 0, func(ctx context.Context, client *api.Client, _ []string) error {
		st, err := client.Status(ctx)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(st["plugins"])
		var plugins []host.Status
		if err := json.Unmarshal(b, &plugins); err != nil {
			return fmt.Errorf("reading the agent's plugin status: %w", err)
		}
		if len(plugins) == 0 {
			c.ui.Output("No plugins: add plugin blocks to the agent's configuration.")
			return nil
		}
		var out strings.Builder
		tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKINDS\tSTATE\tPID\tRESTARTS\tSINCE\tLAST ERROR")
		for _, p := range plugins {
			state := p.State
			if p.NextStart != nil {
				state += fmt.Sprintf(" (again in %s)", time.Until(*p.NextStart).Round(100*time.Millisecond))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", p.Name, strings.Join(p.Kinds, ","), state, p.PID, p.Restarts,
				p.Since.Format(time.RFC3339), p.LastError)
		}
		_ = tw.Flush()
		for _, p := range plugins {
			for _, m := range p.Mappings {
				fmt.Fprintf(&out, "  %s mapping %s: %s %s\n", p.Name, m.UUID, m.State, m.Message)
			}
		}
		c.ui.Output(strings.TrimRight(out.String(), "\n"))
		return nil
	})
}

type pluginCommand struct{}

func (c *pluginCommand) Synopsis() string { return "Plugin helpers" }
func (c *pluginCommand) Help() string {
	return `Usage: gateway plugin <subcommand>

  checksum FILE   print the checksum line of a plugin binary for its plugin block`
}
func (c *pluginCommand) Run([]string) int { return cli.RunResultHelp }

type pluginChecksumCommand struct{ ui cli.Ui }

func (c *pluginChecksumCommand) Synopsis() string {
	return "Print a plugin binary's checksum line for the agent's configuration"
}
func (c *pluginChecksumCommand) Help() string {
	return `Usage: gateway plugin checksum FILE

  Prints the line to paste into the plugin's block in the agent's configuration:

    checksum = "sha256:..."

  The agent starts a plugin only when its binary has that SHA-256.`
}

func (c *pluginChecksumCommand) Run(args []string) int {
	if len(args) != 1 {
		c.ui.Error(c.Help())
		return 1
	}
	sum, err := host.FileChecksum(args[0])
	if err != nil {
		c.ui.Error(fmt.Sprintf("checksum of %s: %v", args[0], err))
		return 1
	}
	c.ui.Output(fmt.Sprintf("checksum = %q", sum))
	return 0
}

type queueCommand struct{}

func (c *queueCommand) Synopsis() string { return "Send messages to the agent's queues" }
func (c *queueCommand) Help() string {
	return `Usage: gateway queue <subcommand>

  send QUEUE [BODY]   put a message on a queue (its queue triggers get it)`
}
func (c *queueCommand) Run([]string) int { return cli.RunResultHelp }

type queueSendCommand struct{ ui cli.Ui }

func (c *queueSendCommand) Synopsis() string { return "Put a message on a queue" }
func (c *queueSendCommand) Help() string {
	return `Usage: gateway queue send [-address URL] QUEUE [BODY]

  Puts BODY (or, without it or with "-", standard input) on the queue QUEUE of the agent's
  NATS JetStream, as SQS's SendMessage: the functions whose queue triggers read QUEUE get it.

` + apiFlagsHelp
}

func (c *queueSendCommand) Run(args []string) int {
	return runAPI(c.ui, "queue send", c.Help(), args, -1, func(ctx context.Context, client *api.Client, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return fmt.Errorf("usage: gateway queue send [-address URL] QUEUE [BODY]")
		}
		var body []byte
		if len(args) == 2 && args[1] != "-" {
			body = []byte(args[1])
		} else {
			b, err := io.ReadAll(io.LimitReader(os.Stdin, 256<<10+1))
			if err != nil {
				return fmt.Errorf("reading the message from standard input: %w", err)
			}
			body = b
		}
		if err := client.SendQueueMessage(ctx, args[0], body); err != nil {
			return err
		}
		c.ui.Output(fmt.Sprintf("sent %d bytes to queue %s", len(body), args[0]))
		return nil
	})
}
