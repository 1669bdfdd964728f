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

func (c *queueCommand) Synopsis() string { return "Send and read messages of the agent's queues" }
func (c *queueCommand) Help() string {
	return `Usage: gateway queue <subcommand>

  send QUEUE [BODY]   put a message on a queue (its queue triggers get it)
  receive QUEUE       show a queue's oldest messages, leaving them there (-delete removes them)`
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

type queueReceiveCommand struct{ ui cli.Ui }

func (c *queueReceiveCommand) Synopsis() string {
	return "Show (and with -delete remove) a queue's messages"
}
func (c *queueReceiveCommand) Help() string {
	return `Usage: gateway queue receive [-address URL] [-n 10] [-json] [-delete] QUEUE

  Shows the oldest messages waiting on the queue QUEUE of the agent's NATS JetStream, such as
  an on-failure queue (a trigger's on_failure = "queue:NAME") holding the records its function
  gave up on. By default it only looks: the messages stay on the queue, for its queue trigger
  if it has one, and the next receive shows them again. Unlike SQS's ReceiveMessage, nothing
  is hidden for a visibility timeout and no receive count goes up.

  -n N                     show up to N messages (1 to 100; default 10)
  -json                    print them as JSON: [{"Sequence", "MessageId", "Body", "Headers",
                           "SentTimestamp"}]; Body is the message as text
  -delete                  remove the messages shown from the queue (as SQS's DeleteMessage
                           after a receive): they are gone for every trigger
` + apiFlagsHelp
}

func (c *queueReceiveCommand) Run(args []string) int {
	fs := flagSet("queue receive", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	n := fs.Int("n", 10, "")
	asJSON := fs.Bool("json", false, "")
	del := fs.Bool("delete", false, "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	if *n < 1 || *n > 100 {
		c.ui.Error("-n must be between 1 and 100")
		return 1
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	queue := fs.Arg(0)
	msgs, err := client.ReceiveQueueMessages(ctx, queue, *n)
	if err != nil {
		c.ui.Error(errorText(err))
		return 1
	}
	if *asJSON {
		if msgs == nil {
			msgs = []api.QueueMessage{}
		}
		b, _ := json.MarshalIndent(msgs, "", "  ")
		c.ui.Output(string(b))
	} else if len(msgs) == 0 {
		c.ui.Output("queue " + queue + " is empty")
	}
	for _, m := range msgs {
		if !*asJSON {
			c.ui.Output(fmt.Sprintf("message %s (sequence %d, sent %s, %d bytes):", m.MessageID, m.Sequence,
				m.SentTimestamp.Format(time.RFC3339), len(m.Body)))
			c.ui.Output(m.Body)
		}
		if *del {
			if err := client.DeleteQueueMessage(ctx, queue, m.Sequence); err != nil {
				c.ui.Error(fmt.Sprintf("deleting message %d: %s", m.Sequence, errorText(err)))
				return 1
			}
		}
	}
	if *del && len(msgs) > 0 {
		c.ui.Error(fmt.Sprintf("deleted %d message(s) from queue %s", len(msgs), queue))
	}
	return 0
}

type streamCommand struct{}

func (c *streamCommand) Synopsis() string { return "Put records on the agent's streams" }
func (c *streamCommand) Help() string {
	return `Usage: gateway stream <subcommand>

  put STREAM -partition-key KEY [BODY]   put a record on a stream (its stream triggers get it)`
}
func (c *streamCommand) Run([]string) int { return cli.RunResultHelp }

type streamPutCommand struct{ ui cli.Ui }

func (c *streamPutCommand) Synopsis() string { return "Put a record on a stream" }
func (c *streamPutCommand) Help() string {
	return `Usage: gateway stream put [-address URL] -partition-key KEY STREAM [BODY]

  Puts BODY (or, without it or with "-", standard input) on the stream STREAM of the agent's
  NATS JetStream, as Kinesis's PutRecord: on the shard KEY hashes to (MD5, as Kinesis), so the
  functions whose stream triggers read STREAM get it in order with the other records of KEY.
  The stream is created (with 4 shards) if it does not exist. Prints the record's shard and
  sequence number.

  -partition-key KEY       the record's partition key (1 to 256 characters)
` + apiFlagsHelp
}

func (c *streamPutCommand) Run(args []string) int {
	fs := flagSet("stream put", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	key := fs.String("partition-key", "", "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() < 1 || fs.NArg() > 2 || *key == "" {
		if *key == "" && fs.NArg() >= 1 {
			c.ui.Error("a record needs -partition-key KEY")
		}
		fs.Usage()
		return 1
	}
	body := []byte(fs.Arg(1))
	if fs.NArg() == 1 || fs.Arg(1) == "-" {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20+1))
		if err != nil {
			c.ui.Error("reading the record from standard input: " + err.Error())
			return 1
		}
		body = b
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	out, err := client.PutStreamRecord(ctx, fs.Arg(0), *key, body)
	if err != nil {
		c.ui.Error(errorText(err))
		return 1
	}
	c.ui.Output(fmt.Sprintf("put %d bytes on stream %s: %s, sequence number %s", len(body), fs.Arg(0), out.ShardID, out.SequenceNumber))
	return 0
}
