package cluster

import (
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// electionMsg is what Raft warns when a follower's heartbeat timeout passes and it stands for
// election.
const electionMsg = "heartbeat timeout reached, starting election"

// raftLogger is Raft's logger. It logs electionMsg at INFO instead of WARN when it is expected:
// no leader was known yet and this node is the cluster's only server (a single node starting,
// which always waits one heartbeat timeout before electing itself).
type raftLogger struct {
	hclog.Logger
	raft *atomic.Pointer[raft.Raft] // set once Raft is built
	id   raft.ServerID
}

func newRaftLogger(l hclog.Logger, id raft.ServerID) *raftLogger {
	return &raftLogger{Logger: l, raft: &atomic.Pointer[raft.Raft]{}, id: id}
}

func (l *raftLogger) Warn(msg string, args ...any) {
	if msg == electionMsg && l.expectedElection(args) {
		l.Logger.Info(msg, args...)
		return
	}
	l.Logger.Warn(msg, args...)
}

func (l *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Warn {
		l.Warn(msg, args...)
		return
	}
	l.Logger.Log(level, msg, args...)
}

func (l *raftLogger) With(args ...any) hclog.Logger {
	return &raftLogger{Logger: l.Logger.With(args...), raft: l.raft, id: l.id}
}

func (l *raftLogger) Named(name string) hclog.Logger {
	return &raftLogger{Logger: l.Logger.Named(name), raft: l.raft, id: l.id}
}

// expectedElection reports whether the election warned about is a lone node's first: the
// line names no last leader and the configuration holds this node alone.
func (l *raftLogger) expectedElection(args []any) bool {
	for i := 0; i+1 < len(args); i += 2 {
		if k, _ := args[i].(string); k == "last-leader-addr" || k == "last-leader-id" {
			if v, ok := args[i+1].(raft.ServerAddress); ok && v != "" {
				return false
			}
			if v, ok := args[i+1].(raft.ServerID); ok && v != "" {
				return false
			}
			if v, ok := args[i+1].(string); ok && v != "" {
				return false
			}
		}
	}
	r := l.raft.Load()
	if r == nil {
		return false
	}
	servers := r.GetConfiguration().Configuration().Servers
	return len(servers) == 1 && servers[0].ID == l.id
}
