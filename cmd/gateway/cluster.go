package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/gateway/api"
)

// runAPI is the frame of a command that makes one call to the agent: it parses the API flags,
// checks that nargs arguments follow (-1: any), connects, and runs call, showing its error.
func runAPI(ui cli.Ui, name, help string, args []string, nargs int, call func(ctx context.Context, client *api.Client, args []string) error) int {
	fs := flagSet(name, ui, help)
	apiOpts := addAPIFlags(fs)
	if !parse(fs, ui, args) {
		return 1
	}
	if nargs >= 0 && fs.NArg() != nargs {
		fs.Usage()
		return 1
	}
	client, ctx, stop, ok := connect(ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	if err := call(ctx, client, fs.Args()); err != nil {
		ui.Error(errorText(err))
		return 1
	}
	return 0
}

// ---- cluster ----

type clusterCommand struct{}

func (c *clusterCommand) Synopsis() string { return "Manage the cluster's membership" }
func (c *clusterCommand) Help() string {
	return `Usage: gateway cluster <subcommand> [options]

  members            list the cluster's servers, their addresses and the leader
  join ADDR          make the agent join the cluster of the node at ADDR (its cluster address)
  leave              make the agent leave the cluster; it then stops
  snapshot save F    write an archive of the cluster's state and code to F
  snapshot restore F replace the cluster's state and code with the archive F`
}
func (c *clusterCommand) Run([]string) int { return cli.RunResultHelp }

type clusterMembersCommand struct{ ui cli.Ui }

func (c *clusterMembersCommand) Synopsis() string { return "List the cluster's servers" }
func (c *clusterMembersCommand) Help() string {
	return `Usage: gateway cluster members [-address URL]

` + apiFlagsHelp
}

func (c *clusterMembersCommand) Run(args []string) int {
	return runAPI(c.ui, "cluster members", c.Help(), args, 0, func(ctx context.Context, client *api.Client, _ []string) error {
		members, err := client.ClusterMembers(ctx)
		if err != nil {
			return err
		}
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tVOTER")
		for _, m := range members {
			role := "follower"
			if m.Leader {
				role = "leader"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", m.ID, m.Address, role, m.Voter)
		}
		_ = tw.Flush()
		c.ui.Output(strings.TrimRight(b.String(), "\n"))
		return nil
	})
}

type clusterJoinCommand struct{ ui cli.Ui }

func (c *clusterJoinCommand) Synopsis() string { return "Join the agent to a cluster" }
func (c *clusterJoinCommand) Help() string {
	return `Usage: gateway cluster join [-address URL] CLUSTER-ADDR

  Makes the agent at -address join the cluster of the node whose cluster address (its
  cluster { address }, not its HTTP address) is CLUSTER-ADDR.

` + apiFlagsHelp
}

func (c *clusterJoinCommand) Run(args []string) int {
	return runAPI(c.ui, "cluster join", c.Help(), args, 1, func(ctx context.Context, client *api.Client, args []string) error {
		if err := client.ClusterJoin(ctx, args[0]); err != nil {
			return err
		}
		c.ui.Output("Joined the cluster through " + args[0])
		return nil
	})
}

type clusterLeaveCommand struct{ ui cli.Ui }

func (c *clusterLeaveCommand) Synopsis() string { return "Make the agent leave the cluster" }
func (c *clusterLeaveCommand) Help() string {
	return `Usage: gateway cluster leave [-address URL]

  Removes the agent from the cluster's servers (a leader hands leadership over first), then
  the agent drains and stops.

` + apiFlagsHelp
}

func (c *clusterLeaveCommand) Run(args []string) int {
	return runAPI(c.ui, "cluster leave", c.Help(), args, 0, func(ctx context.Context, client *api.Client, _ []string) error {
		if err := client.ClusterLeave(ctx); err != nil {
			return err
		}
		c.ui.Output("Left the cluster; the agent is stopping")
		return nil
	})
}

// ---- cluster snapshot ----

type snapshotCommand struct{}

func (c *snapshotCommand) Synopsis() string { return "Save or restore the cluster's state and code" }
func (c *snapshotCommand) Help() string {
	return `Usage: gateway cluster snapshot save|restore [-address URL] FILE`
}
func (c *snapshotCommand) Run([]string) int { return cli.RunResultHelp }

type snapshotSaveCommand struct{ ui cli.Ui }

func (c *snapshotSaveCommand) Synopsis() string {
	return "Write an archive of the cluster's state and code"
}
func (c *snapshotSaveCommand) Help() string {
	return `Usage: gateway cluster snapshot save [-address URL] FILE

  Writes a gzipped tar of the replicated state (functions, versions, aliases, limits, URLs,
  policies) and every code zip it runs, with SHA-256 sums, to FILE (- for standard output).

` + apiFlagsHelp
}

func (c *snapshotSaveCommand) Run(args []string) int {
	return runAPI(c.ui, "cluster snapshot save", c.Help(), args, 1, func(ctx context.Context, client *api.Client, args []string) error {
		path := args[0]
		if path == "-" {
			return client.SnapshotSave(ctx, os.Stdout)
		}
		// Written beside the target and renamed, so a failed save leaves no partial archive.
		f, err := os.CreateTemp(filepath.Dir(path), ".snapshot-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if err := client.SnapshotSave(ctx, f); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := os.Rename(f.Name(), path); err != nil {
			return err
		}
		c.ui.Output("Saved the cluster's state and code to " + path)
		return nil
	})
}

type snapshotRestoreCommand struct{ ui cli.Ui }

func (c *snapshotRestoreCommand) Synopsis() string {
	return "Replace the cluster's state with an archive"
}
func (c *snapshotRestoreCommand) Help() string {
	return `Usage: gateway cluster snapshot restore [-address URL] FILE

  Replaces the cluster's whole state with the archive FILE (made by snapshot save) and stores
  its code: disaster recovery, typically into a new cluster. What the cluster held is gone.

` + apiFlagsHelp
}

func (c *snapshotRestoreCommand) Run(args []string) int {
	return runAPI(c.ui, "cluster snapshot restore", c.Help(), args, 1, func(ctx context.Context, client *api.Client, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if err := client.SnapshotRestore(ctx, f); err != nil {
			return err
		}
		c.ui.Output("Restored the cluster's state and code from " + args[0])
		return nil
	})
}
