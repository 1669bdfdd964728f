package fsm

import (
	"encoding/json"
	"fmt"

	"github.com/lambdagw/gateway/internal/structs"
)

// PublishLayerVersion stores a new version of a layer; the FSM numbers it.
type PublishLayerVersion struct {
	Layer *structs.LayerVersion `json:"layer"`
}

// DeleteLayerVersion removes a layer version. Functions that use it keep running it: they are
// pinned to its content.
type DeleteLayerVersion struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// PutLayerPolicy adds a statement to a layer version's policy (Add) or removes one
// (RemoveSid). ExpectRevision, when set, must be the policy's current revision; Revision is the
// new one, set by the proposer.
type PutLayerPolicy struct {
	Name           string                  `json:"name"`
	Version        int64                   `json:"version"`
	Add            *structs.LayerStatement `json:"add,omitempty"`
	RemoveSid      string                  `json:"remove_sid,omitempty"`
	ExpectRevision string                  `json:"expect_revision,omitempty"`
	Revision       string                  `json:"revision"`
}

func init() {
	registerCommand(PublishLayerVersionType, applyPublishLayerVersion)
	registerCommand(DeleteLayerVersionType, applyDeleteLayerVersion)
	registerCommand(PutLayerPolicyType, applyPutLayerPolicy)
}

func applyPublishLayerVersion(f *FSM, index uint64, body []byte) any {
	var m PublishLayerVersion
	if err := json.Unmarshal(body, &m); err != nil || m.Layer == nil {
		return fmt.Errorf("decoding PublishLayerVersion: %v", err)
	}
	if errs := m.Layer.Validate(); len(errs) > 0 {
		return fmt.Errorf("%v: %w", errs[0], ErrInvalid)
	}
	return f.state.PublishLayerVersion(index, m.Layer)
}

func applyDeleteLayerVersion(f *FSM, index uint64, body []byte) any {
	var m DeleteLayerVersion
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteLayerVersion: %v", err)
	}
	if !f.state.DeleteLayerVersion(index, m.Name, m.Version) {
		return fmt.Errorf("version %d of layer %s: %w", m.Version, m.Name, ErrNotFound)
	}
	return nil
}

func applyPutLayerPolicy(f *FSM, index uint64, body []byte) any {
	var m PutLayerPolicy
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding PutLayerPolicy: %v", err)
	}
	cur, ok := f.state.LayerVersion(m.Name, m.Version)
	if !ok {
		return fmt.Errorf("version %d of layer %s: %w", m.Version, m.Name, ErrNotFound)
	}
	if m.ExpectRevision != "" && m.ExpectRevision != cur.PolicyRevision {
		return fmt.Errorf("the policy of layer %s:%d has revision %s, not %s: %w", m.Name, m.Version, cur.PolicyRevision, m.ExpectRevision, ErrConflict)
	}
	next := *cur
	next.Policy = nil
	found := false
	for _, st := range cur.Policy {
		switch {
		case m.Add != nil && st.Sid == m.Add.Sid:
			return fmt.Errorf("statement %s of layer %s:%d: %w", st.Sid, m.Name, m.Version, ErrExists)
		case st.Sid == m.RemoveSid:
			found = true
			continue
		}
		next.Policy = append(next.Policy, st)
	}
	switch {
	case m.Add != nil:
		next.Policy = append(next.Policy, m.Add)
	case !found:
		return fmt.Errorf("statement %s of layer %s:%d: %w", m.RemoveSid, m.Name, m.Version, ErrNotFound)
	}
	next.PolicyRevision = m.Revision
	f.state.ReplaceLayerVersion(index, &next)
	return &next
}
