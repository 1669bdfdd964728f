package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lambdagw/gateway/cluster/state"
	"github.com/lambdagw/gateway/internal/structs"
)

// Snapshot archives (`gateway cluster snapshot save|restore`): a gzipped tar of
//
//	meta.json       what was saved, when, from which node and log index
//	state.json      the replicated state (the FSM's snapshot)
//	code/<sha256>   every code zip a function or version of that state runs
//	SHA256SUMS      the hash of each file above
//
// so a cluster rebuilt from nothing runs its functions again: the state alone names code by
// hash only.

// SnapshotFormat is the version of the archive layout.
const SnapshotFormat = 1

// maxSnapshotState bounds the state of an archive being restored.
const maxSnapshotState = 512 << 20

type snapshotMeta struct {
	Format  int       `json:"format"`
	Node    string    `json:"node"`
	Index   uint64    `json:"index"`
	Term    uint64    `json:"term"`
	Created time.Time `json:"created"`
	Code    []string  `json:"code"`
}

// CodeBlobs reads and stores code zips by hash (the code store).
type CodeBlobs interface {
	Open(sha string) (io.ReadCloser, error)
	Put(ctx context.Context, r io.Reader, maxBytes int64) (string, int64, error)
}

// SaveSnapshot writes an archive of the cluster's state and code to w. Code this node lacks is
// fetched from a peer first.
func (n *Node) SaveSnapshot(ctx context.Context, w io.Writer, code CodeBlobs) error {
	f := n.raft.Snapshot()
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("taking a raft snapshot: %w", err)
	}
	var meta *raft.SnapshotMeta
	var data []byte
	if f.Error() == nil {
		m, rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("opening the raft snapshot: %w", err)
		}
		data, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("reading the raft snapshot: %w", err)
		}
		meta = m
	} else {
		// Nothing new since the last snapshot: serialise the state as it is now.
		var err error
		if data, err = json.Marshal(n.State().Snapshot()); err != nil {
			return err
		}
		meta = &raft.SnapshotMeta{Index: n.raft.AppliedIndex()}
	}
	var snap state.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("decoding the state: %w", err)
	}
	sm := snapshotMeta{Format: SnapshotFormat, Node: n.cfg.NodeID, Index: meta.Index, Term: meta.Term, Created: time.Now().UTC(), Code: snap.Code()}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	sums := map[string]string{}
	add := func(name string, r io.Reader, size int64) error {
		h := sha256.New()
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: sm.Created}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, io.TeeReader(r, h)); err != nil {
			return fmt.Errorf("archiving %s: %w", name, err)
		}
		sums[name] = hex.EncodeToString(h.Sum(nil))
		return nil
	}
	mb, _ := json.MarshalIndent(sm, "", "  ")
	if err := add("meta.json", bytes.NewReader(mb), int64(len(mb))); err != nil {
		return err
	}
	if err := add("state.json", bytes.NewReader(data), int64(len(data))); err != nil {
		return err
	}
	for _, sha := range sm.Code {
		blob, err := n.readBlob(ctx, code, sha)
		if err != nil {
			return err
		}
		if err := add("code/"+sha, bytes.NewReader(blob), int64(len(blob))); err != nil {
			return err
		}
	}
	var b strings.Builder
	names := make([]string, 0, len(sums))
	for name := range sums {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "%s  %s\n", sums[name], name)
	}
	if err := add("SHA256SUMS", strings.NewReader(b.String()), int64(b.Len())); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// readBlob reads a code zip from this node's store, or a peer's.
func (n *Node) readBlob(ctx context.Context, code CodeBlobs, sha string) ([]byte, error) {
	rc, err := code.Open(sha)
	if err != nil {
		if rc, err = n.FetchCode(ctx, sha); err != nil {
			return nil, fmt.Errorf("code %s is on no node: %w", sha, err)
		}
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, structs.MaxZipBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading code %s: %w", sha, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("code %s is corrupt", sha)
	}
	return b, nil
}

// RestoreSnapshot replaces the cluster's state with an archive's: its code zips are stored on
// this node first (the others fetch them from here), then the state is restored through the
// leader, which hands it to every follower. It is meant for disaster recovery, into a new
// cluster: the state of the running one is replaced whole.
func (n *Node) RestoreSnapshot(ctx context.Context, r io.Reader, code CodeBlobs) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("reading the archive: %w", err)
	}
	tr := tar.NewReader(gz)
	sums := map[string]string{}
	var want map[string]string
	var meta snapshotMeta
	var data []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		hs := sha256.New()
		body := io.TeeReader(tr, hs)
		switch {
		case h.Name == "meta.json":
			err = json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&meta)
			_, _ = io.Copy(io.Discard, body)
		case h.Name == "state.json":
			data, err = io.ReadAll(io.LimitReader(body, maxSnapshotState))
		case strings.HasPrefix(h.Name, "code/"):
			sha := strings.TrimPrefix(h.Name, "code/")
			var got string
			if got, _, err = code.Put(ctx, body, structs.MaxZipBytes); err == nil && got != sha {
				err = fmt.Errorf("code %s in the archive hashes to %s", sha, got)
			}
		case h.Name == "SHA256SUMS":
			want = map[string]string{}
			b, _ := io.ReadAll(io.LimitReader(tr, 1<<20))
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if sum, name, ok := strings.Cut(line, "  "); ok {
					want[name] = sum
				}
			}
			continue
		default:
			_, err = io.Copy(io.Discard, body)
		}
		if err != nil {
			return fmt.Errorf("reading %s from the archive: %w", h.Name, err)
		}
		sums[h.Name] = hex.EncodeToString(hs.Sum(nil))
	}
	switch {
	case meta.Format != SnapshotFormat:
		return fmt.Errorf("the archive's format is %d; this gateway reads %d", meta.Format, SnapshotFormat)
	case data == nil || want == nil:
		return errors.New("the archive lacks state.json or SHA256SUMS")
	}
	for name, sum := range want {
		if sums[name] != sum {
			return fmt.Errorf("%s in the archive does not match its SHA256SUMS line: it is damaged", name)
		}
	}
	var snap state.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("decoding the archive's state: %w", err)
	}
	return n.restoreState(ctx, data)
}

// restoreState hands the state to Raft on the leader (through the node RPC from a follower).
func (n *Node) restoreState(ctx context.Context, data []byte) error {
	if n.raft.State() != raft.Leader {
		addr, _ := n.raft.LeaderWithID()
		if addr == "" {
			return &NotLeaderError{}
		}
		return n.callRaw(ctx, string(addr), "POST", "restore", data, nil)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(len(data))}
	if err := n.raft.Restore(meta, bytes.NewReader(data), time.Minute); err != nil {
		return fmt.Errorf("restoring the state: %w", err)
	}
	n.logger.Info("restored the state from a snapshot archive", "bytes", len(data))
	return nil
}

func (n *Node) rpcRestore(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxSnapshotState))
	if err != nil {
		rpcFail(w, err)
		return
	}
	if err := n.restoreState(r.Context(), data); err != nil {
		rpcFail(w, err)
		return
	}
	writeRPC(w, http.StatusOK, struct{}{})
}
