package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/cli"
)

// ---- cluster ----

type clusterCommand struct{}

func (c *clusterCommand) Synopsis() string { return "Manage the cluster's membership" }
func (c *clusterCommand) Help() string {
	return `Usage: gateway cluster <subcommand> [options]

  members    list the cluster's servers, their addresses and the leader
  join ADDR  make the agent join the cluster of the node at ADDR (its cluster address)
  leave      make the agent leave the cluster; it then stops`
}
func (c *clusterCommand) Run([]string) int { return cli.RunResultHelp }

type clusterMembersCommand struct{ ui cli.Ui }

func (c *clusterMembersCommand) Synopsis() string { return "List the cluster's servers" }
func (c *clusterMembersCommand) Help() string {
	return `Usage: gateway cluster members [-address URL]

` + apiFlagsHelp
}

func (c *clusterMembersCommand) Run(args []string) int {
	fs := flagSet("cluster members", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	if !parse(fs, c.ui, args) {
		return 1
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	members, err := client.ClusterMembers(ctx)
	if err != nil {
		c.ui.Error(err.Error())
		return 1
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
	return 0
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
	fs := flagSet("cluster join", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	if err := client.ClusterJoin(ctx, fs.Arg(0)); err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	c.ui.Output("Joined the cluster through " + fs.Arg(0))
	return 0
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
	fs := flagSet("cluster leave", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	if !parse(fs, c.ui, args) {
		return 1
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	if err := client.ClusterLeave(ctx); err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	c.ui.Output("Left the cluster; the agent is stopping")
	return 0
}
