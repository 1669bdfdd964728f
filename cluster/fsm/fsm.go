// Package fsm applies the Raft log to the replicated state. An entry is one message-type byte and
// a JSON body; types are append-only. Apply only changes state: no I/O, no clock, no randomness
// (callers fill timestamps and revision ids before proposing), so every node computes the same.
package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/lambdagw/gateway/cluster/state"
	"github.com/lambdagw/gateway/internal/structs"
)

// MessageType tags a log entry. Never renumber: old logs and snapshots keep their numbers.
type MessageType uint8

const (
	PutFunctionType         MessageType = 1
	DeleteFunctionType      MessageType = 2
	PutFunctionURLType      MessageType = 3
	DeleteFunctionURLType   MessageType = 4
	PublishVersionType      MessageType = 5
	PutAliasType            MessageType = 6
	DeleteAliasType         MessageType = 7
	PutConcurrencyType      MessageType = 8
	PutProvisionedType      MessageType = 9
	DeleteProvisionedType   MessageType = 10
	DeleteVersionType       MessageType = 11
	AddPolicyType           MessageType = 12
	RemovePolicyType        MessageType = 13
	PutLeaseType            MessageType = 14
	PutTriggerType          MessageType = 15
	DeleteTriggerType       MessageType = 16
	PublishLayerVersionType MessageType = 17
	DeleteLayerVersionType  MessageType = 18
	PutLayerPolicyType      MessageType = 19
	// Asynchronous invocation configurations (async.go).
	PutEventInvokeConfigType    MessageType = 20
	DeleteEventInvokeConfigType MessageType = 21
	// Code signing configurations and their attachment to functions (codesigning.go).
	PutCodeSigningConfigType            MessageType = 22
	DeleteCodeSigningConfigType         MessageType = 23
	PutFunctionCodeSigningConfigType    MessageType = 24
	DeleteFunctionCodeSigningConfigType MessageType = 25
)

// PutLease grants node Node Slots of function Function's reserved concurrency until Now+TTL
// (Unix nanoseconds and nanoseconds, set by the proposer so every node applies the same), or
// with no slots gives its lease back. A grant that would put the slots held at Now above the
// reservation is refused (ErrConflict): another node's lease holds its slots until it expired
// and the function's timeout passed after that.
type PutLease struct {
	Function string `json:"function"`
	Node     string `json:"node"`
	Slots    int    `json:"slots"`
	Now      int64  `json:"now"`
	TTL      int64  `json:"ttl"`
}

// AddPolicy adds a statement to a function's policy; its id must be new for the qualifier,
// which must exist.
type AddPolicy struct {
	Statement *structs.PolicyStatement `json:"statement"`
}

// RemovePolicy removes a statement from a function's policy.
type RemovePolicy struct {
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	Sid       string `json:"sid"`
}

// PutTrigger creates or replaces a function's trigger (an event source mapping). Its function
// must exist, and its qualifier, when set, be a version or alias of it. Replacing keeps the
// stored UUID (the proposer's is used on create).
type PutTrigger struct {
	Trigger *structs.Trigger `json:"trigger"`
}

// DeleteTrigger removes a function's trigger.
type DeleteTrigger struct {
	Function string `json:"function"`
	Name     string `json:"name"`
}

// DeleteVersion removes a published version. No alias may point to it.
type DeleteVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// PutProvisioned creates or replaces a qualifier's provisioned concurrency. The function must
// exist, and the qualifier must be one of its published versions or aliases.
type PutProvisioned struct {
	Config *structs.ProvisionedConcurrency `json:"config"`
}

// DeleteProvisioned removes a qualifier's provisioned concurrency.
type DeleteProvisioned struct {
	Function  string `json:"function"`
	Qualifier string `json:"qualifier"`
}

// PutConcurrency sets a function's reserved concurrency, or removes it when Reserved is nil.
type PutConcurrency struct {
	Name     string `json:"name"`
	Reserved *int   `json:"reserved,omitempty"`
}

// PutAlias creates or replaces an alias. Its function and the versions it points to must exist.
// Create refuses to replace an existing alias, Update to create one; ExpectRevision, when set,
// must be the stored alias's RevisionID.
type PutAlias struct {
	Alias          *structs.Alias `json:"alias"`
	Create         bool           `json:"create,omitempty"`
	Update         bool           `json:"update,omitempty"`
	ExpectRevision string         `json:"expect_revision,omitempty"`
}

// DeleteAlias removes an alias (and its function URL and asynchronous invocation configuration).
type DeleteAlias struct {
	Function string `json:"function"`
	Name     string `json:"name"`
}

// PublishVersion publishes function Name's $LATEST as a new version. ExpectRevision and
// CodeSha256, when set, must match $LATEST (Lambda's RevisionId and CodeSha256 preconditions).
type PublishVersion struct {
	Name           string `json:"name"`
	Description    string `json:"description,omitempty"`
	ExpectRevision string `json:"expect_revision,omitempty"`
	CodeSha256     string `json:"code_sha256,omitempty"`
}

// PutFunctionURL creates or replaces a function URL; its function must exist. Create refuses
// to replace an existing one (Lambda's ResourceConflictException), Update to create one.
type PutFunctionURL struct {
	URL    *structs.FunctionURL `json:"url"`
	Create bool                 `json:"create,omitempty"`
	Update bool                 `json:"update,omitempty"`
}

// DeleteFunctionURL removes a function URL by id.
type DeleteFunctionURL struct {
	ID string `json:"id"`
}

// PutFunction creates or replaces a function. ExpectRevision, when set, must be the stored
// function's RevisionID (Lambda's RevisionId precondition).
type PutFunction struct {
	Function       *structs.Function `json:"function"`
	ExpectRevision string            `json:"expect_revision,omitempty"`
	// CodeSigningConfig, when set, attaches that code signing configuration (which must exist)
	// in the same entry: a function created under one is never seen without it.
	CodeSigningConfig string `json:"code_signing_config,omitempty"`
}

// DeleteFunction removes a function.
type DeleteFunction struct {
	Name string `json:"name"`
}

// Errors returned as the Apply response.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("revision conflict")
	ErrExists   = errors.New("already exists")
	// ErrInvalid is a command the FSM refuses on its content (a check the API should have made).
	ErrInvalid = errors.New("invalid")
)

// Encode makes a log entry.
func Encode(t MessageType, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding message %d: %w", t, err)
	}
	return append([]byte{byte(t)}, b...), nil
}

type command func(f *FSM, index uint64, body []byte) any

// commands is the registration table; a new message type registers here.
var commands = map[MessageType]command{}

func registerCommand(t MessageType, c command) {
	if _, dup := commands[t]; dup {
		panic(fmt.Sprintf("message type %d registered twice", t))
	}
	commands[t] = c
}

func init() {
	registerCommand(PutFunctionType, applyPutFunction)
	registerCommand(DeleteFunctionType, applyDeleteFunction)
	registerCommand(PutFunctionURLType, applyPutFunctionURL)
	registerCommand(DeleteFunctionURLType, applyDeleteFunctionURL)
	registerCommand(PublishVersionType, applyPublishVersion)
	registerCommand(PutAliasType, applyPutAlias)
	registerCommand(DeleteAliasType, applyDeleteAlias)
	registerCommand(PutConcurrencyType, applyPutConcurrency)
	registerCommand(PutProvisionedType, applyPutProvisioned)
	registerCommand(DeleteProvisionedType, applyDeleteProvisioned)
	registerCommand(DeleteVersionType, applyDeleteVersion)
	registerCommand(AddPolicyType, applyAddPolicy)
	registerCommand(RemovePolicyType, applyRemovePolicy)
	registerCommand(PutLeaseType, applyPutLease)
	registerCommand(PutTriggerType, applyPutTrigger)
	registerCommand(DeleteTriggerType, applyDeleteTrigger)
}

func applyPutTrigger(f *FSM, index uint64, body []byte) any {
	var m PutTrigger
	if err := json.Unmarshal(body, &m); err != nil || m.Trigger == nil {
		return fmt.Errorf("decoding PutTrigger: %v", err)
	}
	t := *m.Trigger
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	if _, ok := f.state.Function(t.Function); !ok {
		return fmt.Errorf("function %s: %w", t.Function, ErrNotFound)
	}
	if q := t.Qualifier; q != "" && q != structs.LatestVersion {
		_, isVersion := f.state.Version(t.Function, q)
		_, isAlias := f.state.Alias(t.Function, q)
		if !isVersion && !isAlias {
			return fmt.Errorf("qualifier %s of function %s: %w", q, t.Function, ErrNotFound)
		}
	}
	if cur, ok := f.state.Trigger(t.Function, t.Name); ok {
		t.UUID = cur.UUID
	}
	if t.UUID == "" {
		return fmt.Errorf("trigger %s of %s has no UUID: %w", t.Name, t.Function, ErrInvalid)
	}
	f.state.PutTrigger(index, &t)
	return &t
}

func applyDeleteTrigger(f *FSM, index uint64, body []byte) any {
	var m DeleteTrigger
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteTrigger: %v", err)
	}
	if !f.state.DeleteTrigger(index, m.Function, m.Name) {
		return fmt.Errorf("trigger %s of function %s: %w", m.Name, m.Function, ErrNotFound)
	}
	return nil
}

func applyPutLease(f *FSM, index uint64, body []byte) any {
	var m PutLease
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding PutLease: %v", err)
	}
	fn, ok := f.state.Function(m.Function)
	if !ok {
		return fmt.Errorf("function %s: %w", m.Function, ErrNotFound)
	}
	lease := &structs.Lease{Function: m.Function, Node: m.Node, Slots: m.Slots, Expires: m.Now + m.TTL}
	if m.Slots > 0 {
		reserved, ok := f.state.ReservedConcurrency(m.Function)
		if !ok {
			return fmt.Errorf("function %s has no reserved concurrency to lease", m.Function)
		}
		held := 0
		for _, l := range f.state.Leases(m.Function) {
			if l.Node != m.Node && l.Expires+int64(fn.Timeout) > m.Now {
				held += l.Slots
			}
		}
		if held+m.Slots > reserved {
			return fmt.Errorf("%d of the %d reserved slots of %s are leased to other nodes, %d asked: %w", held, reserved, m.Function, m.Slots, ErrConflict)
		}
	}
	f.state.PutLease(index, lease)
	return nil
}

func applyAddPolicy(f *FSM, index uint64, body []byte) any {
	var m AddPolicy
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding AddPolicy: %v", err)
	}
	st := m.Statement
	if st == nil || st.Sid == "" {
		return errors.New("AddPolicy has no statement id")
	}
	if _, ok := f.state.Function(st.Function); !ok {
		return fmt.Errorf("function %s: %w", st.Function, ErrNotFound)
	}
	if st.Qualifier != "" {
		_, isVersion := f.state.Version(st.Function, st.Qualifier)
		_, isAlias := f.state.Alias(st.Function, st.Qualifier)
		if !isVersion && !isAlias {
			return fmt.Errorf("qualifier %s of function %s: %w", st.Qualifier, st.Function, ErrNotFound)
		}
	}
	if !f.state.AddPolicyStatement(index, st) {
		return fmt.Errorf("statement %s of %s: %w", st.Sid, st.Function, ErrExists)
	}
	return nil
}

func applyRemovePolicy(f *FSM, index uint64, body []byte) any {
	var m RemovePolicy
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding RemovePolicy: %v", err)
	}
	if !f.state.RemovePolicyStatement(index, m.Function, m.Qualifier, m.Sid) {
		return fmt.Errorf("statement %s of %s: %w", m.Sid, m.Function, ErrNotFound)
	}
	return nil
}

func applyDeleteVersion(f *FSM, index uint64, body []byte) any {
	var m DeleteVersion
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteVersion: %v", err)
	}
	if _, ok := f.state.Version(m.Name, m.Version); !ok {
		return fmt.Errorf("version %s of %s: %w", m.Version, m.Name, ErrNotFound)
	}
	for _, a := range f.state.Aliases(m.Name) {
		if _, weighted := a.AdditionalVersionWeights[m.Version]; a.FunctionVersion == m.Version || weighted {
			return fmt.Errorf("version %s of %s is used by alias %s: %w", m.Version, m.Name, a.Name, ErrConflict)
		}
	}
	f.state.DeleteVersion(index, m.Name, m.Version)
	return nil
}

func applyPutProvisioned(f *FSM, index uint64, body []byte) any {
	var m PutProvisioned
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding PutProvisioned: %v", err)
	}
	p := m.Config
	if p == nil {
		return errors.New("PutProvisioned has no configuration")
	}
	if _, ok := f.state.Function(p.Function); !ok {
		return fmt.Errorf("function %s: %w", p.Function, ErrNotFound)
	}
	_, isVersion := f.state.Version(p.Function, p.Qualifier)
	_, isAlias := f.state.Alias(p.Function, p.Qualifier)
	if !isVersion && !isAlias {
		return fmt.Errorf("qualifier %s of function %s: %w", p.Qualifier, p.Function, ErrNotFound)
	}
	if p.Requested < 1 {
		return fmt.Errorf("provisioned concurrency %d is below 1", p.Requested)
	}
	f.state.PutProvisionedConcurrency(index, p)
	return nil
}

func applyDeleteProvisioned(f *FSM, index uint64, body []byte) any {
	var m DeleteProvisioned
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteProvisioned: %v", err)
	}
	if !f.state.DeleteProvisionedConcurrency(index, m.Function, m.Qualifier) {
		return fmt.Errorf("provisioned concurrency of %s:%s: %w", m.Function, m.Qualifier, ErrNotFound)
	}
	return nil
}

func applyPutConcurrency(f *FSM, index uint64, body []byte) any {
	var m PutConcurrency
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding PutConcurrency: %v", err)
	}
	if _, ok := f.state.Function(m.Name); !ok {
		return fmt.Errorf("function %s: %w", m.Name, ErrNotFound)
	}
	n := -1
	if m.Reserved != nil {
		if *m.Reserved < 0 {
			return fmt.Errorf("reserved concurrency %d is negative", *m.Reserved)
		}
		n = *m.Reserved
	}
	f.state.SetReservedConcurrency(index, m.Name, n)
	return nil
}

// FSM implements raft.FSM over a state.Store.
type FSM struct {
	state  *state.Store
	logger hclog.Logger
	// applied is the index of the last entry Apply finished (Raft's own AppliedIndex moves
	// when entries are handed to the FSM, before they are applied).
	applied atomic.Uint64
}

// AppliedIndex is the index of the last log entry applied to the state (or restored with it).
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// New returns an FSM applying to st.
func New(st *state.Store, logger hclog.Logger) *FSM {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &FSM{state: st, logger: logger.Named("fsm")}
}

// State is the store the FSM applies to.
func (f *FSM) State() *state.Store { return f.state }

// Apply applies one entry. Unknown types are reported, not fatal, so an older follower survives
// entries of a newer leader.
func (f *FSM) Apply(l *raft.Log) any {
	defer f.applied.Store(l.Index)
	if len(l.Data) == 0 {
		return errors.New("empty log entry")
	}
	t := MessageType(l.Data[0])
	c, ok := commands[t]
	if !ok {
		f.logger.Error("unknown message type in the log; upgrade this node", "type", t, "index", l.Index)
		return fmt.Errorf("unknown message type %d", t)
	}
	return c(f, l.Index, l.Data[1:])
}

func applyPutFunction(f *FSM, index uint64, body []byte) any {
	var m PutFunction
	if err := json.Unmarshal(body, &m); err != nil || m.Function == nil {
		return fmt.Errorf("decoding PutFunction: %v", err)
	}
	if m.ExpectRevision != "" {
		cur, ok := f.state.Function(m.Function.Name)
		if !ok {
			return fmt.Errorf("function %s: %w", m.Function.Name, ErrNotFound)
		}
		if cur.RevisionID != m.ExpectRevision {
			return fmt.Errorf("function %s has revision %s, not %s: %w", m.Function.Name, cur.RevisionID, m.ExpectRevision, ErrConflict)
		}
	}
	if id := m.CodeSigningConfig; id != "" {
		if _, ok := f.state.CodeSigningConfig(id); !ok {
			return fmt.Errorf("code signing configuration %s: %w", id, ErrNotFound)
		}
	}
	f.state.UpsertFunction(index, m.Function)
	if id := m.CodeSigningConfig; id != "" {
		f.state.PutFunctionCodeSigningConfig(index, m.Function.Name, id)
	}
	fn, _ := f.state.Function(m.Function.Name)
	return fn
}

func applyDeleteFunction(f *FSM, index uint64, body []byte) any {
	var m DeleteFunction
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteFunction: %v", err)
	}
	if !f.state.DeleteFunction(index, m.Name) {
		return fmt.Errorf("function %s: %w", m.Name, ErrNotFound)
	}
	return nil
}

func applyPutFunctionURL(f *FSM, index uint64, body []byte) any {
	var m PutFunctionURL
	if err := json.Unmarshal(body, &m); err != nil || m.URL == nil {
		return fmt.Errorf("decoding PutFunctionURL: %v", err)
	}
	if _, ok := f.state.Function(m.URL.Function); !ok {
		return fmt.Errorf("function %s: %w", m.URL.Function, ErrNotFound)
	}
	if q := m.URL.Qualifier; q != "" && q != structs.LatestVersion {
		if _, ok := f.state.Alias(m.URL.Function, q); !ok {
			return fmt.Errorf("alias %s of function %s: %w", q, m.URL.Function, ErrNotFound)
		}
	}
	_, exists := f.state.FunctionURL(m.URL.ID())
	switch {
	case m.Create && exists:
		return fmt.Errorf("function URL %s: %w", m.URL.ID(), ErrExists)
	case m.Update && !exists:
		return fmt.Errorf("function URL %s: %w", m.URL.ID(), ErrNotFound)
	}
	f.state.UpsertFunctionURL(index, m.URL)
	u, _ := f.state.FunctionURL(m.URL.ID())
	return u
}

func applyDeleteFunctionURL(f *FSM, index uint64, body []byte) any {
	var m DeleteFunctionURL
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteFunctionURL: %v", err)
	}
	if !f.state.DeleteFunctionURL(index, m.ID) {
		return fmt.Errorf("function URL %s: %w", m.ID, ErrNotFound)
	}
	return nil
}

func applyPublishVersion(f *FSM, index uint64, body []byte) any {
	var m PublishVersion
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding PublishVersion: %v", err)
	}
	cur, ok := f.state.Function(m.Name)
	if !ok {
		return fmt.Errorf("function %s: %w", m.Name, ErrNotFound)
	}
	if m.ExpectRevision != "" && cur.RevisionID != m.ExpectRevision {
		return fmt.Errorf("function %s has revision %s, not %s: %w", m.Name, cur.RevisionID, m.ExpectRevision, ErrConflict)
	}
	if m.CodeSha256 != "" && cur.CodeSha256 != m.CodeSha256 {
		return fmt.Errorf("function %s has code %s, not %s: %w", m.Name, cur.CodeSha256, m.CodeSha256, ErrConflict)
	}
	v, _, _ := f.state.PublishVersion(index, m.Name, m.Description)
	return v
}

func applyPutAlias(f *FSM, index uint64, body []byte) any {
	var m PutAlias
	if err := json.Unmarshal(body, &m); err != nil || m.Alias == nil {
		return fmt.Errorf("decoding PutAlias: %v", err)
	}
	a := m.Alias
	if _, ok := f.state.Function(a.Function); !ok {
		return fmt.Errorf("function %s: %w", a.Function, ErrNotFound)
	}
	for v := range a.AdditionalVersionWeights {
		if _, ok := f.state.Version(a.Function, v); !ok {
			return fmt.Errorf("version %s of function %s: %w", v, a.Function, ErrNotFound)
		}
	}
	if a.FunctionVersion != structs.LatestVersion {
		if _, ok := f.state.Version(a.Function, a.FunctionVersion); !ok {
			return fmt.Errorf("version %s of function %s: %w", a.FunctionVersion, a.Function, ErrNotFound)
		}
	}
	cur, exists := f.state.Alias(a.Function, a.Name)
	switch {
	case m.Create && exists:
		return fmt.Errorf("alias %s of function %s: %w", a.Name, a.Function, ErrExists)
	case m.Update && !exists:
		return fmt.Errorf("alias %s of function %s: %w", a.Name, a.Function, ErrNotFound)
	case m.ExpectRevision != "" && exists && cur.RevisionID != m.ExpectRevision:
		return fmt.Errorf("alias %s has revision %s, not %s: %w", a.Name, cur.RevisionID, m.ExpectRevision, ErrConflict)
	}
	f.state.UpsertAlias(index, a)
	stored, _ := f.state.Alias(a.Function, a.Name)
	return stored
}

func applyDeleteAlias(f *FSM, index uint64, body []byte) any {
	var m DeleteAlias
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteAlias: %v", err)
	}
	for _, t := range f.state.Triggers(m.Function) {
		if t.Qualifier == m.Name {
			return fmt.Errorf("alias %s of function %s is used by trigger %s: change or delete the trigger first: %w", m.Name, m.Function, t.Name, ErrConflict)
		}
	}
	if !f.state.DeleteAlias(index, m.Function, m.Name) {
		return fmt.Errorf("alias %s of function %s: %w", m.Name, m.Function, ErrNotFound)
	}
	return nil
}

// Snapshot captures the state; Persist writes it as JSON.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{snap: f.state.Snapshot()}, nil
}

// Restore replaces the state with a snapshot's content.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var snap state.Snapshot
	if err := json.NewDecoder(rc).Decode(&snap); err != nil {
		return fmt.Errorf("decoding snapshot: %w", err)
	}
	if snap.Version > state.SnapshotVersion {
		return fmt.Errorf("snapshot format %d is newer than this node understands (%d)", snap.Version, state.SnapshotVersion)
	}
	f.state.Restore(&snap)
	f.applied.Store(snap.Index)
	return nil
}

type snapshot struct{ snap *state.Snapshot }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.snap); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("writing snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
