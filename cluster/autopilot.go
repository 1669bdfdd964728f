package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// Dead server cleanup (as Consul's autopilot): the leader removes a server it has not been
// able to reach for Config.DeadServerCleanup, when the servers it still reaches keep a
// majority of the smaller cluster. A removed node that comes back rejoins through its Join
// addresses. Raft's own heartbeat failures tell the leader who is unreachable.

// autopilot runs until the node stops.
func (n *Node) autopilot() {
	defer close(n.autopilotDone)
	obs := make(chan raft.Observation, 64)
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(observer)
	defer n.raft.DeregisterObserver(observer)
	failing := map[raft.ServerID]time.Time{} // since when the leader cannot reach a server
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case o := <-obs:
			switch d := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				if _, ok := failing[d.PeerID]; !ok {
					failing[d.PeerID] = d.LastContact
				}
			case raft.ResumedHeartbeatObservation:
				delete(failing, d.PeerID)
			case raft.LeaderObservation:
				clear(failing) // a new term: this node's own view starts now
			}
		case <-t.C:
			if n.raft.State() != raft.Leader {
				clear(failing)
				continue
			}
			n.removeDead(failing)
		}
	}
}

// removeDead removes one server that has failed for longer than the cleanup time, if the
// others keep a majority without it.
func (n *Node) removeDead(failing map[raft.ServerID]time.Time) {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return
	}
	voters, reachable := 0, 0
	inConfig := map[raft.ServerID]bool{}
	for _, s := range cf.Configuration().Servers {
		inConfig[s.ID] = true
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if since, bad := failing[s.ID]; !bad || time.Since(since) < n.cfg.DeadServerCleanup {
			reachable++
		}
	}
	for id, since := range failing {
		if !inConfig[id] {
			delete(failing, id)
			continue
		}
		if time.Since(since) < n.cfg.DeadServerCleanup || id == raft.ServerID(n.cfg.NodeID) {
			continue
		}
		if reachable < (voters-1)/2+1 {
			n.logger.Warn("not removing a dead server: the others would not keep a majority", "id", id, "unreachable_for", time.Since(since).Round(time.Second))
			return
		}
		n.logger.Info("removing a dead server", "id", id, "unreachable_for", time.Since(since).Round(time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
		err := n.removeServer(ctx, string(id))
		cancel()
		if err != nil {
			n.logger.Warn("removing a dead server failed", "id", id, "error", err)
			return
		}
		delete(failing, id)
		return // one at a time; the next tick sees the new configuration
	}
}
