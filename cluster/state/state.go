// Package state is the replicated state in memory: what the FSM applies from the Raft log and
// every node reads locally. Stored values are immutable: readers share them, writers replace them.
package state

import (
	"sort"
	"strconv"
	"sync"

	"github.com/lambdagw/gateway/internal/structs"
)

// Store holds the replicated state. Mutators are for the FSM only.
type Store struct {
	mu        sync.RWMutex
	index     uint64
	functions map[string]*structs.Function
	urls      map[string]*structs.FunctionURL // by URL id
	// versions holds each function's published versions, oldest first (numbers 1, 2, ...).
	versions map[string][]*structs.Function
	// versionSeq is the number of each function's last published version, so a deleted
	// version's number is never given again (as in Lambda).
	versionSeq map[string]int
	// aliases holds each function's aliases by name.
	aliases map[string]map[string]*structs.Alias
	// reserved is each function's reserved concurrency, kept apart from the function (as
	// Lambda's PutFunctionConcurrency) so setting it does not replace its environments.
	reserved map[string]int
	// reservedTotal is the sum of reserved, read on every invocation's admission.
	reservedTotal int
	// leases holds each function's concurrency leases by node.
	leases map[string]map[string]*structs.Lease
	// policies holds each function's policy statements by qualifier and statement id.
	policies map[string]map[string]map[string]*structs.PolicyStatement
	// provisioned holds each function's provisioned concurrency configurations by qualifier.
	provisioned map[string]map[string]*structs.ProvisionedConcurrency
	// triggers holds each function's triggers (event source mappings) by name.
	triggers map[string]map[string]*structs.Trigger
	// layers holds each layer's versions, oldest first; layerSeq the number of each layer's
	// last published version, never given again.
	layers   map[string][]*structs.LayerVersion
	layerSeq map[string]int64
	// eventConfigs holds each function's asynchronous invocation configurations by qualifier
	// ("$LATEST", a version or an alias), kept apart from the function as in Lambda.
	eventConfigs map[string]map[string]*structs.EventInvokeConfig
	// signingConfigs holds the code signing configurations by ID; functionSigning the ID of
	// the one attached to each function, kept apart from the function as in Lambda.
	signingConfigs  map[string]*structs.CodeSigningConfig
	functionSigning map[string]string
	watch           chan struct{}
}

// New returns an empty store.
func New() *Store {
	return &Store{functions: map[string]*structs.Function{}, urls: map[string]*structs.FunctionURL{},
		versions: map[string][]*structs.Function{}, aliases: map[string]map[string]*structs.Alias{}, reserved: map[string]int{},
		provisioned: map[string]map[string]*structs.ProvisionedConcurrency{}, versionSeq: map[string]int{},
		policies: map[string]map[string]map[string]*structs.PolicyStatement{}, leases: map[string]map[string]*structs.Lease{},
		triggers: map[string]map[string]*structs.Trigger{}, layers: map[string][]*structs.LayerVersion{},
		layerSeq: map[string]int64{}, eventConfigs: map[string]map[string]*structs.EventInvokeConfig{},
		signingConfigs: map[string]*structs.CodeSigningConfig{}, functionSigning: map[string]string{}, watch: make(chan struct{})}
}

// Function returns the function named name.
func (s *Store) Function(name string) (*structs.Function, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn, ok := s.functions[name]
	return fn, ok
}

// Functions returns every function, sorted by name.
func (s *Store) Functions() []*structs.Function {
	s.mu.RLock()
	out := make([]*structs.Function, 0, len(s.functions))
	for _, fn := range s.functions {
		out = append(out, fn)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Index is the Raft index of the last change applied.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Watch returns a channel closed at the next change, so other packages react without polling.
func (s *Store) Watch() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.watch
}

// changedLocked wakes the watchers of the current change.
func (s *Store) changedLocked(index uint64) {
	s.index = index
	close(s.watch)
	s.watch = make(chan struct{})
}

// UpsertFunction stores fn at index (FSM only). CreateIndex is kept from an existing function.
func (s *Store) UpsertFunction(index uint64, fn *structs.Function) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn = fn.Copy()
	fn.ModifyIndex = index
	if old, ok := s.functions[fn.Name]; ok {
		fn.CreateIndex = old.CreateIndex
	} else {
		fn.CreateIndex = index
	}
	s.functions[fn.Name] = fn
	s.changedLocked(index)
}

// DeleteFunction removes a function (FSM only) and reports whether it existed.
func (s *Store) DeleteFunction(index uint64, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.functions[name]; !ok {
		return false
	}
	delete(s.functions, name)
	delete(s.versions, name)
	delete(s.versionSeq, name)
	delete(s.aliases, name)
	delete(s.provisioned, name)
	delete(s.policies, name)
	delete(s.leases, name)
	delete(s.triggers, name)
	delete(s.eventConfigs, name)
	delete(s.functionSigning, name)
	s.reservedTotal -= s.reserved[name]
	delete(s.reserved, name)
	for id, u := range s.urls {
		if u.Function == name {
			delete(s.urls, id)
		}
	}
	s.changedLocked(index)
	return true
}

// Version returns the published version number of function name.
func (s *Store) Version(name, number string) (*structs.Function, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.versions[name] {
		if v.Version == number {
			return v, true
		}
	}
	return nil, false
}

// Versions returns the published versions of function name, oldest first; of every function
// when name is empty.
func (s *Store) Versions(name string) []*structs.Function {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if name != "" {
		return append([]*structs.Function(nil), s.versions[name]...)
	}
	var out []*structs.Function
	for _, fn := range s.sortedNamesLocked() {
		out = append(out, s.versions[fn]...)
	}
	return out
}

// Code returns the hashes of the code zips that functions ($LATEST) and their published versions
// run, sorted: the code every node keeps. Aliases, triggers and the rest name versions, not code.
func (s *Store) Code() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var layers []*structs.LayerVersion
	for _, ls := range s.layers {
		layers = append(layers, ls...)
	}
	return codeOf(s.allFunctionsLocked(), layers)
}

// Images returns the digests of the images the functions and versions run, sorted.
func (s *Store) Images() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return structs.Refs(s.allFunctionsLocked(), (*structs.Function).ImageRefs)
}

// allFunctionsLocked is every function's $LATEST and every published version.
func (s *Store) allFunctionsLocked() []*structs.Function {
	fns := make([]*structs.Function, 0, len(s.functions))
	for _, fn := range s.functions {
		fns = append(fns, fn)
	}
	for _, vs := range s.versions {
		fns = append(fns, vs...)
	}
	return fns
}

// Code returns the hashes of the code a snapshot's functions and versions run, as Store.Code.
func (snap *Snapshot) Code() []string {
	return codeOf(append(append([]*structs.Function(nil), snap.Functions...), snap.Versions...), snap.Layers)
}

// codeOf is the code zips of functions (their own and their layers') and of layer versions.
func codeOf(fns []*structs.Function, layers []*structs.LayerVersion) []string {
	shas := make([]string, 0, len(layers))
	for _, l := range layers {
		shas = append(shas, l.CodeSha256)
	}
	return structs.Refs(fns, (*structs.Function).CodeRefs, shas...)
}

func (s *Store) sortedNamesLocked() []string {
	names := make([]string, 0, len(s.versions))
	for n := range s.versions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PublishVersion snapshots function name's $LATEST as its next version (FSM only). When $LATEST
// has not changed since the last version was published, that version is returned instead, as
// Lambda does, and created is false.
func (s *Store) PublishVersion(index uint64, name, description string) (v *structs.Function, created, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn, ok := s.functions[name]
	if !ok {
		return nil, false, false
	}
	list := s.versions[name]
	if n := len(list); n > 0 && list[n-1].RevisionID == fn.RevisionID {
		return list[n-1], false, true
	}
	seq := s.versionSeq[name]
	if n := len(list); n > 0 {
		// Snapshots from before versionSeq existed: the last version has the highest number.
		last, _ := strconv.Atoi(list[n-1].Version)
		seq = max(seq, last)
	}
	v = fn.Copy()
	v.Version = strconv.Itoa(seq + 1)
	s.versionSeq[name] = seq + 1
	if description != "" { // overrides the function's, as Lambda's PublishVersion does
		v.Description = description
	}
	v.CreateIndex, v.ModifyIndex = index, index
	s.versions[name] = append(list, v)
	s.changedLocked(index)
	return v, true, true
}

// DeleteVersion removes a published version (FSM only), with its provisioned concurrency and
// asynchronous invocation configuration, and reports whether it existed. Its number is not
// given again.
func (s *Store) DeleteVersion(index uint64, name, number string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.versions[name]
	for i, v := range list {
		if v.Version != number {
			continue
		}
		if n, _ := strconv.Atoi(number); n > s.versionSeq[name] {
			s.versionSeq[name] = n
		}
		s.versions[name] = append(list[:i:i], list[i+1:]...)
		delete(s.provisioned[name], number)
		delete(s.policies[name], number)
		delete(s.eventConfigs[name], number)
		s.changedLocked(index)
		return true
	}
	return false
}

// ReservedConcurrency returns function fn's reserved concurrency, if it has one.
func (s *Store) ReservedConcurrency(fn string) (int, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.reserved[fn]
	return n, ok
}

// ReservedTotal is the sum of every function's reserved concurrency.
func (s *Store) ReservedTotal() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.reservedTotal
}

// SetReservedConcurrency sets (n >= 0) or removes (n < 0) a function's reserved concurrency
// (FSM only).
func (s *Store) SetReservedConcurrency(index uint64, fn string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reservedTotal -= s.reserved[fn]
	if n < 0 {
		delete(s.reserved, fn)
	} else {
		s.reserved[fn] = n
		s.reservedTotal += n
	}
	s.changedLocked(index)
}

// Alias returns alias name of function fn.
func (s *Store) Alias(fn, name string) (*structs.Alias, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.aliases[fn][name]
	return a, ok
}

// Aliases returns the aliases of function fn sorted by name; of every function when fn is empty.
func (s *Store) Aliases(fn string) []*structs.Alias {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return perFunction(s.aliases, fn, func(a *structs.Alias) (string, string) { return a.Function, a.Name })
}

// perFunction lists the values of m (function name -> name -> value) of function fn, or of
// every function when fn is empty, sorted by function, then name (key gives both).
func perFunction[T any](m map[string]map[string]*T, fn string, key func(*T) (string, string)) []*T {
	var out []*T
	for f, byName := range m {
		if fn != "" && f != fn {
			continue
		}
		for _, v := range byName {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		fi, ni := key(out[i])
		fj, nj := key(out[j])
		if fi != fj {
			return fi < fj
		}
		return ni < nj
	})
	return out
}

// UpsertAlias stores an alias at index (FSM only); CreateIndex is kept from an existing one.
func (s *Store) UpsertAlias(index uint64, a *structs.Alias) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a = a.Copy()
	a.ModifyIndex = index
	m := s.aliases[a.Function]
	if m == nil {
		m = map[string]*structs.Alias{}
		s.aliases[a.Function] = m
	}
	if old, ok := m[a.Name]; ok {
		a.CreateIndex = old.CreateIndex
	} else {
		a.CreateIndex = index
	}
	m[a.Name] = a
	s.changedLocked(index)
}

// DeleteAlias removes an alias (FSM only), and the function URL and asynchronous invocation
// configuration of the alias with it, and reports whether it existed.
func (s *Store) DeleteAlias(index uint64, fn, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.aliases[fn][name]; !ok {
		return false
	}
	delete(s.aliases[fn], name)
	delete(s.provisioned[fn], name)
	delete(s.policies[fn], name)
	delete(s.urls, structs.URLID(fn, name))
	delete(s.eventConfigs[fn], name)
	s.changedLocked(index)
	return true
}

// Trigger returns trigger name of function fn.
func (s *Store) Trigger(fn, name string) (*structs.Trigger, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.triggers[fn][name]
	return t, ok
}

// TriggerByUUID returns the trigger with that UUID (every delivered batch names its mapping so).
func (s *Store) TriggerByUUID(uuid string) (*structs.Trigger, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.triggers {
		for _, t := range m {
			if t.UUID == uuid {
				return t, true
			}
		}
	}
	return nil, false
}

// Triggers returns the triggers of function fn sorted by name; of every function (sorted by
// function) when fn is empty.
func (s *Store) Triggers(fn string) []*structs.Trigger {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return perFunction(s.triggers, fn, func(t *structs.Trigger) (string, string) { return t.Function, t.Name })
}

// PutTrigger stores a trigger at index (FSM only).
func (s *Store) PutTrigger(index uint64, t *structs.Trigger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.triggers[t.Function]
	if m == nil {
		m = map[string]*structs.Trigger{}
		s.triggers[t.Function] = m
	}
	m[t.Name] = t
	s.changedLocked(index)
}

// DeleteTrigger removes a trigger (FSM only) and reports whether it existed.
func (s *Store) DeleteTrigger(index uint64, fn, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.triggers[fn][name]; !ok {
		return false
	}
	delete(s.triggers[fn], name)
	s.changedLocked(index)
	return true
}

// ProvisionedConcurrency returns the provisioned concurrency of qualifier of function fn.
func (s *Store) ProvisionedConcurrency(fn, qualifier string) (*structs.ProvisionedConcurrency, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.provisioned[fn][qualifier]
	return p, ok
}

// ProvisionedConcurrencies returns the provisioned concurrency configurations of function fn
// (of every function when fn is empty), sorted by function and qualifier.
func (s *Store) ProvisionedConcurrencies(fn string) []*structs.ProvisionedConcurrency {
	s.mu.RLock()
	var out []*structs.ProvisionedConcurrency
	for f, m := range s.provisioned {
		if fn != "" && f != fn {
			continue
		}
		for _, p := range m {
			out = append(out, p)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Qualifier < out[j].Qualifier
	})
	return out
}

// PutProvisionedConcurrency stores a configuration at index (FSM only); CreateIndex is kept
// from an existing one.
func (s *Store) PutProvisionedConcurrency(index uint64, p *structs.ProvisionedConcurrency) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p = p.Copy()
	p.ModifyIndex = index
	m := s.provisioned[p.Function]
	if m == nil {
		m = map[string]*structs.ProvisionedConcurrency{}
		s.provisioned[p.Function] = m
	}
	if old, ok := m[p.Qualifier]; ok {
		p.CreateIndex = old.CreateIndex
	} else {
		p.CreateIndex = index
	}
	m[p.Qualifier] = p
	s.changedLocked(index)
}

// DeleteProvisionedConcurrency removes a configuration (FSM only) and reports whether it existed.
func (s *Store) DeleteProvisionedConcurrency(index uint64, fn, qualifier string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.provisioned[fn][qualifier]; !ok {
		return false
	}
	delete(s.provisioned[fn], qualifier)
	if len(s.provisioned[fn]) == 0 {
		delete(s.provisioned, fn)
	}
	s.changedLocked(index)
	return true
}

// Leases returns the concurrency leases of function fn (of every function when fn is empty),
// sorted by function and node.
func (s *Store) Leases(fn string) []*structs.Lease {
	s.mu.RLock()
	var out []*structs.Lease
	for f, m := range s.leases {
		if fn != "" && f != fn {
			continue
		}
		for _, l := range m {
			out = append(out, l)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Node < out[j].Node
	})
	return out
}

// PutLease stores a node's lease (FSM only); no slots removes it.
func (s *Store) PutLease(index uint64, l *structs.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.Slots <= 0 {
		delete(s.leases[l.Function], l.Node)
	} else {
		if s.leases[l.Function] == nil {
			s.leases[l.Function] = map[string]*structs.Lease{}
		}
		c := *l
		s.leases[l.Function][l.Node] = &c
	}
	s.changedLocked(index)
}

// PolicyStatements returns the policy statements of qualifier of function fn, by statement id;
// of every function and qualifier when fn is empty.
func (s *Store) PolicyStatements(fn, qualifier string) []*structs.PolicyStatement {
	s.mu.RLock()
	var out []*structs.PolicyStatement
	for f, byQ := range s.policies {
		if fn != "" && f != fn {
			continue
		}
		for q, bySid := range byQ {
			if fn != "" && q != qualifier {
				continue
			}
			for _, st := range bySid {
				out = append(out, st)
			}
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Function != b.Function {
			return a.Function < b.Function
		}
		if a.Qualifier != b.Qualifier {
			return a.Qualifier < b.Qualifier
		}
		return a.CreateIndex < b.CreateIndex // the order they were added, as Lambda lists them
	})
	return out
}

// AddPolicyStatement stores a statement at index (FSM only); false when its id is taken.
func (s *Store) AddPolicyStatement(index uint64, st *structs.PolicyStatement) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	byQ := s.policies[st.Function]
	if byQ == nil {
		byQ = map[string]map[string]*structs.PolicyStatement{}
		s.policies[st.Function] = byQ
	}
	bySid := byQ[st.Qualifier]
	if bySid == nil {
		bySid = map[string]*structs.PolicyStatement{}
		byQ[st.Qualifier] = bySid
	}
	if _, taken := bySid[st.Sid]; taken {
		return false
	}
	c := *st
	c.CreateIndex = index
	bySid[st.Sid] = &c
	s.changedLocked(index)
	return true
}

// RemovePolicyStatement removes a statement (FSM only) and reports whether it existed.
func (s *Store) RemovePolicyStatement(index uint64, fn, qualifier, sid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.policies[fn][qualifier][sid]; !ok {
		return false
	}
	delete(s.policies[fn][qualifier], sid)
	s.changedLocked(index)
	return true
}

// FunctionURL returns the function URL with the given id.
func (s *Store) FunctionURL(id string) (*structs.FunctionURL, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.urls[id]
	return u, ok
}

// FunctionURLs returns every function URL (of one function when fn is not empty), by id.
func (s *Store) FunctionURLs(fn string) []*structs.FunctionURL {
	s.mu.RLock()
	out := make([]*structs.FunctionURL, 0, len(s.urls))
	for _, u := range s.urls {
		if fn == "" || u.Function == fn {
			out = append(out, u)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

// UpsertFunctionURL stores u at index (FSM only). CreateIndex and CreationTime are kept from an
// existing URL.
func (s *Store) UpsertFunctionURL(index uint64, u *structs.FunctionURL) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u = u.Copy()
	u.ModifyIndex = index
	if old, ok := s.urls[u.ID()]; ok {
		u.CreateIndex, u.CreationTime = old.CreateIndex, old.CreationTime
	} else {
		u.CreateIndex = index
	}
	s.urls[u.ID()] = u
	s.changedLocked(index)
}

// DeleteFunctionURL removes a function URL (FSM only) and reports whether it existed.
func (s *Store) DeleteFunctionURL(index uint64, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.urls[id]; !ok {
		return false
	}
	delete(s.urls, id)
	s.changedLocked(index)
	return true
}

// Snapshot is the serialisable content of the store.
type Snapshot struct {
	Version   int                 `json:"version"`
	Index     uint64              `json:"index"`
	Functions []*structs.Function `json:"functions"`
	// FunctionURLs was added after version 1 without changing it: older snapshots have none.
	FunctionURLs []*structs.FunctionURL `json:"function_urls,omitempty"`
	// Versions (published function versions) and Aliases likewise.
	Versions []*structs.Function `json:"versions,omitempty"`
	Aliases  []*structs.Alias    `json:"aliases,omitempty"`
	// Reserved maps functions to their reserved concurrency.
	Reserved map[string]int `json:"reserved_concurrency,omitempty"`
	// Provisioned are the provisioned concurrency configurations.
	Provisioned []*structs.ProvisionedConcurrency `json:"provisioned_concurrency,omitempty"`
	// Policies are the functions' policy statements.
	Policies []*structs.PolicyStatement `json:"policies,omitempty"`
	// Leases are the functions' concurrency leases.
	Leases []*structs.Lease `json:"leases,omitempty"`
	// VersionSeq is each function's last published version number.
	VersionSeq map[string]int `json:"version_seq,omitempty"`
	// Triggers are the functions' triggers (event source mappings).
	Triggers []*structs.Trigger `json:"triggers,omitempty"`
	// Layers are the layer versions, LayerSeq each layer's last published version number.
	Layers   []*structs.LayerVersion `json:"layers,omitempty"`
	LayerSeq map[string]int64        `json:"layer_seq,omitempty"`
	// EventInvokeConfigs are the asynchronous invocation configurations.
	EventInvokeConfigs []*structs.EventInvokeConfig `json:"event_invoke_configs,omitempty"`
	// CodeSigningConfigs are the code signing configurations, FunctionCodeSigning the one
	// attached to each function.
	CodeSigningConfigs  []*structs.CodeSigningConfig `json:"code_signing_configs,omitempty"`
	FunctionCodeSigning map[string]string            `json:"function_code_signing,omitempty"`
}

// SnapshotVersion is the format of Snapshot; Restore refuses newer ones.
const SnapshotVersion = 1

// Snapshot returns the store's content at this moment.
func (s *Store) Snapshot() *Snapshot {
	fns := s.Functions()
	return &Snapshot{Version: SnapshotVersion, Index: s.Index(), Functions: fns, FunctionURLs: s.FunctionURLs(""), Versions: s.Versions(""), Aliases: s.Aliases(""), Reserved: s.reservedCopy(),
		Provisioned: s.ProvisionedConcurrencies(""), VersionSeq: s.versionSeqCopy(),
		Policies: s.PolicyStatements("", ""), Leases: s.Leases(""), Triggers: s.Triggers(""),
		Layers: s.LayerVersions(""), LayerSeq: s.layerSeqCopy(), EventInvokeConfigs: s.EventInvokeConfigs(""),
		CodeSigningConfigs: s.CodeSigningConfigs(), FunctionCodeSigning: s.functionSigningCopy()}
}

func (s *Store) layerSeqCopy() map[string]int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int64, len(s.layerSeq))
	for k, v := range s.layerSeq {
		out[k] = v
	}
	return out
}

func (s *Store) versionSeqCopy() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int, len(s.versionSeq))
	for k, v := range s.versionSeq {
		out[k] = v
	}
	return out
}

func (s *Store) reservedCopy() map[string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int, len(s.reserved))
	for k, v := range s.reserved {
		out[k] = v
	}
	return out
}

// Restore replaces the whole content with snap (FSM only).
func (s *Store) Restore(snap *Snapshot) {
	fns := make(map[string]*structs.Function, len(snap.Functions))
	for _, fn := range snap.Functions {
		fns[fn.Name] = fn
	}
	urls := make(map[string]*structs.FunctionURL, len(snap.FunctionURLs))
	for _, u := range snap.FunctionURLs {
		urls[u.ID()] = u
	}
	versions := map[string][]*structs.Function{}
	for _, v := range snap.Versions {
		versions[v.Name] = append(versions[v.Name], v)
	}
	aliases := map[string]map[string]*structs.Alias{}
	for _, a := range snap.Aliases {
		if aliases[a.Function] == nil {
			aliases[a.Function] = map[string]*structs.Alias{}
		}
		aliases[a.Function][a.Name] = a
	}
	provisioned := map[string]map[string]*structs.ProvisionedConcurrency{}
	for _, p := range snap.Provisioned {
		if provisioned[p.Function] == nil {
			provisioned[p.Function] = map[string]*structs.ProvisionedConcurrency{}
		}
		provisioned[p.Function][p.Qualifier] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.functions = fns
	s.urls = urls
	s.provisioned = provisioned
	s.policies = map[string]map[string]map[string]*structs.PolicyStatement{}
	for _, st := range snap.Policies {
		if s.policies[st.Function] == nil {
			s.policies[st.Function] = map[string]map[string]*structs.PolicyStatement{}
		}
		if s.policies[st.Function][st.Qualifier] == nil {
			s.policies[st.Function][st.Qualifier] = map[string]*structs.PolicyStatement{}
		}
		s.policies[st.Function][st.Qualifier][st.Sid] = st
	}
	s.leases = map[string]map[string]*structs.Lease{}
	for _, l := range snap.Leases {
		if s.leases[l.Function] == nil {
			s.leases[l.Function] = map[string]*structs.Lease{}
		}
		s.leases[l.Function][l.Node] = l
	}
	s.triggers = map[string]map[string]*structs.Trigger{}
	for _, t := range snap.Triggers {
		if s.triggers[t.Function] == nil {
			s.triggers[t.Function] = map[string]*structs.Trigger{}
		}
		s.triggers[t.Function][t.Name] = t
	}
	s.layers = map[string][]*structs.LayerVersion{}
	for _, l := range snap.Layers {
		s.layers[l.Name] = append(s.layers[l.Name], l)
	}
	s.layerSeq = map[string]int64{}
	for k, v := range snap.LayerSeq {
		s.layerSeq[k] = v
	}
	s.eventConfigs = restoreEventConfigs(snap.EventInvokeConfigs)
	s.signingConfigs, s.functionSigning = restoreSigning(snap.CodeSigningConfigs, snap.FunctionCodeSigning)
	s.versionSeq = map[string]int{}
	for k, v := range snap.VersionSeq {
		s.versionSeq[k] = v
	}
	s.versions = versions
	s.aliases = aliases
	s.reserved, s.reservedTotal = map[string]int{}, 0
	for k, v := range snap.Reserved {
		s.reserved[k] = v
		s.reservedTotal += v
	}
	s.changedLocked(snap.Index)
}
