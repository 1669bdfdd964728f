package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lambdagw/gateway/cluster/state"
	"github.com/lambdagw/gateway/internal/structs"
)

// applier feeds entries to an FSM with increasing indexes, as Raft does.
type applier struct {
	t     *testing.T
	f     *FSM
	index uint64
}

func (a *applier) apply(typ MessageType, body any) any {
	a.t.Helper()
	data, err := Encode(typ, body)
	if err != nil {
		a.t.Fatal(err)
	}
	a.index++
	return a.f.Apply(&raft.Log{Index: a.index, Data: data})
}

func testFunction(rev, env string) *structs.Function {
	return &structs.Function{Name: "fn", Description: "the function", Runtime: "provided.al2023", CodeSha256: "c0de", MemoryMB: 128,
		Timeout: 3 * time.Second, Environment: map[string]string{"V": env}, RevisionID: rev}
}

func TestPublishVersion(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	if err, _ := a.apply(PublishVersionType, PublishVersion{Name: "fn"}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("publishing a missing function: %v", err)
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r1", "one")})
	v1, _ := a.apply(PublishVersionType, PublishVersion{Name: "fn"}).(*structs.Function)
	if v1 == nil || v1.Version != "1" || v1.Environment["V"] != "one" || v1.Description != "the function" || v1.Qualifier() != "1" {
		t.Fatalf("first version: %+v", v1)
	}
	// Nothing changed since: the same version comes back, as Lambda does.
	if again, _ := a.apply(PublishVersionType, PublishVersion{Name: "fn", Description: "ignored"}).(*structs.Function); again != v1 {
		t.Fatalf("republishing an unchanged function gave %+v, want version 1", again)
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r2", "two")})
	for _, c := range []struct {
		name string
		m    PublishVersion
	}{
		{"revision", PublishVersion{Name: "fn", ExpectRevision: "r1"}},
		{"code", PublishVersion{Name: "fn", CodeSha256: "other"}},
	} {
		if err, _ := a.apply(PublishVersionType, c.m).(error); !errors.Is(err, ErrConflict) {
			t.Errorf("a stale %s precondition: %v, want ErrConflict", c.name, err)
		}
	}
	v2, _ := a.apply(PublishVersionType, PublishVersion{Name: "fn", Description: "second", ExpectRevision: "r2", CodeSha256: "c0de"}).(*structs.Function)
	if v2 == nil || v2.Version != "2" || v2.Environment["V"] != "two" || v2.Description != "second" {
		t.Fatalf("second version: %+v", v2)
	}
	st := a.f.State()
	if got, ok := st.Version("fn", "1"); !ok || got.Environment["V"] != "one" {
		t.Errorf("version 1 after an update of $LATEST: %+v", got)
	}
	if vs := st.Versions("fn"); len(vs) != 2 || vs[0].Version != "1" || vs[1].Version != "2" {
		t.Errorf("versions: %+v", vs)
	}

	// A snapshot restores every version.
	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&sink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	restored := New(state.New(), nil)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, want := restored.State().Versions(""), st.Versions(""); !reflect.DeepEqual(jsonOf(t, got), jsonOf(t, want)) {
		t.Errorf("versions after restore:\n%s\nwant\n%s", jsonOf(t, got), jsonOf(t, want))
	}

	// Deleting the function deletes its versions; a new function of that name starts at 1.
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if vs := st.Versions("fn"); len(vs) != 0 {
		t.Errorf("versions of a deleted function: %+v", vs)
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r3", "three")})
	if v, _ := a.apply(PublishVersionType, PublishVersion{Name: "fn"}).(*structs.Function); v == nil || v.Version != "1" {
		t.Errorf("first version of the new function: %+v", v)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sink is a raft.SnapshotSink over a buffer.
type sink struct{ *bytes.Buffer }

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { return nil }
func (s *sink) Close() error  { return nil }

func TestAliases(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r1", "one")})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r2", "two")})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})

	live := &structs.Alias{Function: "fn", Name: "live", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"2": 0.1}, RevisionID: "a1"}
	if got, _ := a.apply(PutAliasType, PutAlias{Alias: live, Create: true}).(*structs.Alias); got == nil || got.FunctionVersion != "1" {
		t.Fatalf("creating an alias: %+v", got)
	}
	for name, m := range map[string]PutAlias{
		"create twice":         {Alias: live, Create: true},
		"update a missing one": {Alias: &structs.Alias{Function: "fn", Name: "other", FunctionVersion: "1"}, Update: true},
		"a missing version":    {Alias: &structs.Alias{Function: "fn", Name: "x", FunctionVersion: "7"}},
		"a missing weighted":   {Alias: &structs.Alias{Function: "fn", Name: "x", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"9": 0.5}}},
		"a missing function":   {Alias: &structs.Alias{Function: "nope", Name: "x", FunctionVersion: "$LATEST"}},
		"a stale revision":     {Alias: live, Update: true, ExpectRevision: "old"},
	} {
		if err, _ := a.apply(PutAliasType, m).(error); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	moved := live.Copy()
	moved.FunctionVersion, moved.AdditionalVersionWeights, moved.RevisionID = "2", nil, "a2"
	if got, _ := a.apply(PutAliasType, PutAlias{Alias: moved, Update: true, ExpectRevision: "a1"}).(*structs.Alias); got == nil || got.FunctionVersion != "2" || got.CreateIndex == got.ModifyIndex {
		t.Fatalf("updating an alias: %+v", got)
	}
	a.apply(PutFunctionURLType, PutFunctionURL{URL: &structs.FunctionURL{Function: "fn", Qualifier: "live", AuthType: structs.AuthNone}})
	a.apply(PutAliasType, PutAlias{Alias: &structs.Alias{Function: "fn", Name: "beta", FunctionVersion: "$LATEST", RevisionID: "b1"}})

	snap, _ := a.f.Snapshot()
	var buf bytes.Buffer
	if err := snap.Persist(&sink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	restored := New(state.New(), nil)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got, want := jsonOf(t, restored.State().Aliases("")), jsonOf(t, a.f.State().Aliases("")); got != want {
		t.Errorf("aliases after restore:\n%s\nwant\n%s", got, want)
	}

	// Deleting an alias deletes its URL; deleting the function deletes the rest.
	a.apply(DeleteAliasType, DeleteAlias{Function: "fn", Name: "live"})
	st := a.f.State()
	if _, ok := st.FunctionURL("fn--live"); ok {
		t.Error("the URL of a deleted alias is still there")
	}
	if err, _ := a.apply(DeleteAliasType, DeleteAlias{Function: "fn", Name: "live"}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a deleted alias: %v", err)
	}
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if as := st.Aliases("fn"); len(as) != 0 {
		t.Errorf("aliases of a deleted function: %+v", as)
	}
}

func TestReservedConcurrency(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	five := 5
	if err, _ := a.apply(PutConcurrencyType, PutConcurrency{Name: "fn", Reserved: &five}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reserving for a missing function: %v", err)
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r1", "one")})
	a.apply(PutConcurrencyType, PutConcurrency{Name: "fn", Reserved: &five})
	st := a.f.State()
	if n, ok := st.ReservedConcurrency("fn"); !ok || n != 5 || st.ReservedTotal() != 5 {
		t.Fatalf("reserved %d %v, total %d", n, ok, st.ReservedTotal())
	}
	snap, _ := a.f.Snapshot()
	var buf bytes.Buffer
	_ = snap.Persist(&sink{Buffer: &buf})
	restored := New(state.New(), nil)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if n, ok := restored.State().ReservedConcurrency("fn"); !ok || n != 5 || restored.State().ReservedTotal() != 5 {
		t.Errorf("after restore: %d %v", n, ok)
	}
	a.apply(PutConcurrencyType, PutConcurrency{Name: "fn"})
	if _, ok := st.ReservedConcurrency("fn"); ok || st.ReservedTotal() != 0 {
		t.Errorf("a removed reservation is still there (total %d)", st.ReservedTotal())
	}
	a.apply(PutConcurrencyType, PutConcurrency{Name: "fn", Reserved: &five})
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if _, ok := st.ReservedConcurrency("fn"); ok || st.ReservedTotal() != 0 {
		t.Errorf("the reservation of a deleted function is still there (total %d)", st.ReservedTotal())
	}
}

func TestProvisionedConcurrency(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	pc := &structs.ProvisionedConcurrency{Function: "fn", Qualifier: "1", Requested: 2, LastModified: "2026-11-25T10:00:00Z"}
	if err, _ := a.apply(PutProvisionedType, PutProvisioned{Config: pc}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("provisioning a missing function: %v", err)
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r1", "one")})
	if err, _ := a.apply(PutProvisionedType, PutProvisioned{Config: pc}).(error); !errors.Is(err, ErrNotFound) {
		t.Fatalf("provisioning a missing version: %v", err)
	}
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	a.apply(PutAliasType, PutAlias{Alias: &structs.Alias{Function: "fn", Name: "live", FunctionVersion: "1", RevisionID: "a1"}})
	for name, c := range map[string]*structs.ProvisionedConcurrency{
		"$LATEST": {Function: "fn", Qualifier: "$LATEST", Requested: 1},
		"zero":    {Function: "fn", Qualifier: "1", Requested: 0},
	} {
		if err, _ := a.apply(PutProvisionedType, PutProvisioned{Config: c}).(error); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err, _ := a.apply(PutProvisionedType, PutProvisioned{Config: pc}).(error); err != nil {
		t.Fatal(err)
	}
	live := &structs.ProvisionedConcurrency{Function: "fn", Qualifier: "live", Requested: 3}
	a.apply(PutProvisionedType, PutProvisioned{Config: live})
	st := a.f.State()
	if got, ok := st.ProvisionedConcurrency("fn", "1"); !ok || got.Requested != 2 || got.CreateIndex == 0 {
		t.Fatalf("stored: %+v", got)
	}
	// Replacing keeps CreateIndex.
	more := pc.Copy()
	more.Requested = 4
	a.apply(PutProvisionedType, PutProvisioned{Config: more})
	if got, _ := st.ProvisionedConcurrency("fn", "1"); got.Requested != 4 || got.CreateIndex == got.ModifyIndex {
		t.Errorf("replaced: %+v", got)
	}
	if all := st.ProvisionedConcurrencies("fn"); len(all) != 2 || all[0].Qualifier != "1" || all[1].Qualifier != "live" {
		t.Errorf("list: %s", jsonOf(t, all))
	}
	if err, _ := a.apply(DeleteProvisionedType, DeleteProvisioned{Function: "fn", Qualifier: "1"}).(error); err != nil {
		t.Fatal(err)
	}
	if err, _ := a.apply(DeleteProvisionedType, DeleteProvisioned{Function: "fn", Qualifier: "1"}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
	// Deleting the alias deletes its configuration; deleting the function deletes the rest.
	a.apply(DeleteAliasType, DeleteAlias{Function: "fn", Name: "live"})
	if _, ok := st.ProvisionedConcurrency("fn", "live"); ok {
		t.Error("the configuration of a deleted alias is still there")
	}
	a.apply(PutProvisionedType, PutProvisioned{Config: pc})
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if all := st.ProvisionedConcurrencies(""); len(all) != 0 {
		t.Errorf("configurations of a deleted function: %s", jsonOf(t, all))
	}
}

// TestSnapshotRoundTrip applies every command, then checks that a snapshot restores a store
// whose own snapshot is identical, and that Apply of an unknown type is refused.
func TestSnapshotRoundTrip(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	five := 5
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r1", "one")})
	other := testFunction("o1", "x")
	other.Name = "other"
	a.apply(PutFunctionType, PutFunction{Function: other})
	a.apply(DeleteFunctionType, DeleteFunction{Name: "other"})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r2", "two"), ExpectRevision: "r1"})
	a.apply(PublishVersionType, PublishVersion{Name: "fn", Description: "second"})
	a.apply(PutAliasType, PutAlias{Alias: &structs.Alias{Function: "fn", Name: "live", FunctionVersion: "1",
		AdditionalVersionWeights: map[string]float64{"2": 0.25}, RevisionID: "a1"}, Create: true})
	a.apply(PutAliasType, PutAlias{Alias: &structs.Alias{Function: "fn", Name: "gone", FunctionVersion: "2", RevisionID: "g1"}})
	a.apply(DeleteAliasType, DeleteAlias{Function: "fn", Name: "gone"})
	a.apply(PutFunctionURLType, PutFunctionURL{URL: &structs.FunctionURL{Function: "fn", AuthType: structs.AuthNone}, Create: true})
	a.apply(PutFunctionURLType, PutFunctionURL{URL: &structs.FunctionURL{Function: "fn", Qualifier: "live", AuthType: structs.AuthSigned,
		Cors: &structs.CORS{AllowOrigins: []string{"*"}}}})
	a.apply(DeleteFunctionURLType, DeleteFunctionURL{ID: "fn"})
	a.apply(PutConcurrencyType, PutConcurrency{Name: "fn", Reserved: &five})
	a.apply(PutProvisionedType, PutProvisioned{Config: &structs.ProvisionedConcurrency{Function: "fn", Qualifier: "live", Requested: 2}})
	a.apply(PutProvisionedType, PutProvisioned{Config: &structs.ProvisionedConcurrency{Function: "fn", Qualifier: "2", Requested: 1}})
	a.apply(DeleteProvisionedType, DeleteProvisioned{Function: "fn", Qualifier: "2"})
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r3", "three")})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	if err, _ := a.apply(DeleteVersionType, DeleteVersion{Name: "fn", Version: "3"}).(error); err != nil {
		t.Fatal(err)
	}
	stmt := func(sid string) *structs.PolicyStatement {
		return &structs.PolicyStatement{Function: "fn", Qualifier: "live", Sid: sid, Statement: json.RawMessage(`{"Sid":"` + sid + `"}`)}
	}
	a.apply(AddPolicyType, AddPolicy{Statement: stmt("keep")})
	a.apply(AddPolicyType, AddPolicy{Statement: stmt("drop")})
	if err, _ := a.apply(AddPolicyType, AddPolicy{Statement: stmt("keep")}).(error); !errors.Is(err, ErrExists) {
		t.Errorf("adding a statement id twice: %v", err)
	}
	a.apply(RemovePolicyType, RemovePolicy{Function: "fn", Qualifier: "live", Sid: "drop"})
	if err, _ := a.apply(RemovePolicyType, RemovePolicy{Function: "fn", Qualifier: "live", Sid: "drop"}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a statement twice: %v", err)
	}
	a.apply(PutLeaseType, PutLease{Function: "fn", Node: "n1", Slots: 2, Now: 1, TTL: int64(time.Hour)})
	trig := func(name, uuid string) *structs.Trigger {
		return &structs.Trigger{UUID: uuid, Function: "fn", Name: name, Plugin: "queue", Source: "orders", Qualifier: "live",
			BatchSize: 10, MaximumRetryAttempts: 2, OnFailure: "queue:dlq", Enabled: true, Options: map[string]string{"a": "b"}}
	}
	a.apply(PutTriggerType, PutTrigger{Trigger: trig("orders", "u1")})
	if got, _ := a.apply(PutTriggerType, PutTrigger{Trigger: trig("orders", "u2")}).(*structs.Trigger); got == nil || got.UUID != "u1" {
		t.Errorf("replacing a trigger: %+v, want its UUID kept", got)
	}
	if err, _ := a.apply(DeleteAliasType, DeleteAlias{Function: "fn", Name: "live"}).(error); !errors.Is(err, ErrConflict) {
		t.Errorf("deleting an alias a trigger names: %v", err)
	}
	a.apply(PutTriggerType, PutTrigger{Trigger: trig("gone", "u3")})
	a.apply(DeleteTriggerType, DeleteTrigger{Function: "fn", Name: "gone"})
	if err, _ := a.apply(DeleteTriggerType, DeleteTrigger{Function: "fn", Name: "gone"}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a trigger twice: %v", err)
	}
	bad := trig("bad", "u4")
	bad.Qualifier = "nope"
	if err, _ := a.apply(PutTriggerType, PutTrigger{Trigger: bad}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("a trigger on an unknown qualifier: %v", err)
	}
	bad.Qualifier, bad.BatchSize = "", -1
	if err, _ := a.apply(PutTriggerType, PutTrigger{Trigger: bad}).(error); !errors.Is(err, ErrInvalid) {
		t.Errorf("an invalid trigger: %v", err)
	}
	layer := func(desc string) *structs.LayerVersion {
		return &structs.LayerVersion{Name: "deps", Description: desc, CodeSha256: strings.Repeat("d", 64), CodeSize: 10,
			UnzippedSize: 20, CompatibleRuntimes: []string{"nodejs20.x"}}
	}
	for i, desc := range []string{"one", "two", "three"} {
		if got, _ := a.apply(PublishLayerVersionType, PublishLayerVersion{Layer: layer(desc)}).(*structs.LayerVersion); got == nil || got.Version != int64(i+1) {
			t.Fatalf("publishing a layer version: %+v, want version %d", got, i+1)
		}
	}
	a.apply(DeleteLayerVersionType, DeleteLayerVersion{Name: "deps", Version: 3})
	if err, _ := a.apply(DeleteLayerVersionType, DeleteLayerVersion{Name: "deps", Version: 3}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a layer version twice: %v", err)
	}
	if got, _ := a.apply(PublishLayerVersionType, PublishLayerVersion{Layer: layer("four")}).(*structs.LayerVersion); got == nil || got.Version != 4 {
		t.Errorf("a deleted layer version's number was given again: %+v", got)
	}
	if err, _ := a.apply(PublishLayerVersionType, PublishLayerVersion{Layer: &structs.LayerVersion{Name: "bad name"}}).(error); !errors.Is(err, ErrInvalid) {
		t.Errorf("an invalid layer: %v", err)
	}
	lst := func(sid string) *structs.LayerStatement {
		return &structs.LayerStatement{Sid: sid, Statement: json.RawMessage(`{"Sid":"` + sid + `"}`)}
	}
	a.apply(PutLayerPolicyType, PutLayerPolicy{Name: "deps", Version: 1, Add: lst("all"), Revision: "p1"})
	a.apply(PutLayerPolicyType, PutLayerPolicy{Name: "deps", Version: 1, Add: lst("drop"), Revision: "p2", ExpectRevision: "p1"})
	if err, _ := a.apply(PutLayerPolicyType, PutLayerPolicy{Name: "deps", Version: 1, Add: lst("all"), Revision: "p3"}).(error); !errors.Is(err, ErrExists) {
		t.Errorf("adding a layer statement twice: %v", err)
	}
	if err, _ := a.apply(PutLayerPolicyType, PutLayerPolicy{Name: "deps", Version: 1, RemoveSid: "drop", ExpectRevision: "p1", Revision: "p3"}).(error); !errors.Is(err, ErrConflict) {
		t.Errorf("a layer policy change on an old revision: %v", err)
	}
	a.apply(PutLayerPolicyType, PutLayerPolicy{Name: "deps", Version: 1, RemoveSid: "drop", Revision: "p3"})
	if err, _ := a.apply(PutLayerPolicyType, PutLayerPolicy{Name: "deps", Version: 1, RemoveSid: "drop", Revision: "p4"}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a layer statement twice: %v", err)
	}
	if l, _ := a.f.State().LayerVersion("deps", 1); l == nil || len(l.Policy) != 1 || l.Policy[0].Sid != "all" || l.PolicyRevision != "p3" {
		t.Errorf("the layer's policy: %+v", l)
	}
	if code := a.f.State().Code(); !slices.Contains(code, strings.Repeat("d", 64)) {
		t.Errorf("the code every node keeps (%v) lacks the layers' zips", code)
	}
	two := 2
	a.apply(PutEventInvokeConfigType, PutEventInvokeConfig{Config: &structs.EventInvokeConfig{Function: "fn", Qualifier: "$LATEST",
		MaximumRetryAttempts: &two, MaximumEventAge: time.Hour, OnSuccess: "queue:done", OnFailure: "stream:failed",
		LastModified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}})
	a.apply(PutEventInvokeConfigType, PutEventInvokeConfig{Config: &structs.EventInvokeConfig{Function: "fn", Qualifier: "live", OnFailure: "function:other"}})
	a.apply(PutEventInvokeConfigType, PutEventInvokeConfig{Config: &structs.EventInvokeConfig{Function: "fn", Qualifier: "1"}})
	if err, _ := a.apply(DeleteEventInvokeConfigType, DeleteEventInvokeConfig{Function: "fn", Qualifier: "1"}).(error); err != nil {
		t.Errorf("deleting an event invoke configuration: %v", err)
	}
	a.apply(PutCodeSigningConfigType, PutCodeSigningConfig{Config: &structs.CodeSigningConfig{ID: structs.CodeSigningConfigID("prod"), Name: "prod",
		AllowedPublishers: []string{"release"}, UntrustedArtifactOnDeployment: structs.CodeSigningEnforce}, Create: true})
	a.apply(PutCodeSigningConfigType, PutCodeSigningConfig{Config: &structs.CodeSigningConfig{ID: "csc-0123456789abcdef0",
		AllowedPublishers: []string{"ci"}, AllowedPublisherARNs: []string{"arn:aws:signer:eu-central-1:123456789012:/signing-profiles/ci/v1"},
		UntrustedArtifactOnDeployment: structs.CodeSigningWarn}, Create: true})
	a.apply(PutFunctionCodeSigningConfigType, PutFunctionCodeSigningConfig{Function: "fn", Config: structs.CodeSigningConfigID("prod")})
	a.apply(PutCodeSigningConfigType, PutCodeSigningConfig{Config: &structs.CodeSigningConfig{ID: structs.CodeSigningConfigID("gone"), Name: "gone",
		AllowedPublishers: []string{"ci"}, UntrustedArtifactOnDeployment: structs.CodeSigningWarn}})
	a.apply(DeleteCodeSigningConfigType, DeleteCodeSigningConfig{ID: structs.CodeSigningConfigID("gone")})
	if len(commands) != int(DeleteFunctionCodeSigningConfigType) {
		t.Fatalf("%d registered commands; this test applies %d types: add the new ones", len(commands), DeleteFunctionCodeSigningConfigType)
	}
	if err, _ := a.apply(MessageType(200), struct{}{}).(error); err == nil {
		t.Error("an unknown message type was applied")
	}

	want := a.f.State().Snapshot()
	snap, err := a.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&sink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	restored := New(state.New(), nil)
	if err := restored.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := restored.State().Snapshot(); jsonOf(t, got) != jsonOf(t, want) {
		t.Errorf("after restore:\n%s\nwant\n%s", jsonOf(t, got), jsonOf(t, want))
	}
	if len(want.Functions) != 1 || len(want.Versions) != 2 || len(want.Aliases) != 1 || len(want.FunctionURLs) != 1 ||
		want.Reserved["fn"] != 5 || len(want.Provisioned) != 1 || want.VersionSeq["fn"] != 3 ||
		len(want.Policies) != 1 || want.Policies[0].Sid != "keep" || len(want.Leases) != 1 ||
		len(want.EventInvokeConfigs) != 2 || want.EventInvokeConfigs[0].Qualifier != "$LATEST" || want.EventInvokeConfigs[0].Retries() != 2 ||
		len(want.CodeSigningConfigs) != 2 || want.FunctionCodeSigning["fn"] != structs.CodeSigningConfigID("prod") {
		t.Errorf("the snapshot misses state: %s", jsonOf(t, want))
	}
}

// TestDeleteVersion: a version an alias uses stays; a deleted version's number is not reused.
func TestDeleteVersion(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r1", "one")})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r2", "two")})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	a.apply(PutAliasType, PutAlias{Alias: &structs.Alias{Function: "fn", Name: "live", FunctionVersion: "1", AdditionalVersionWeights: map[string]float64{"2": 0.5}}})
	a.apply(PutProvisionedType, PutProvisioned{Config: &structs.ProvisionedConcurrency{Function: "fn", Qualifier: "2", Requested: 1}})
	for _, v := range []string{"1", "2"} {
		if err, _ := a.apply(DeleteVersionType, DeleteVersion{Name: "fn", Version: v}).(error); !errors.Is(err, ErrConflict) {
			t.Errorf("deleting version %s an alias uses: %v", v, err)
		}
	}
	a.apply(PutAliasType, PutAlias{Alias: &structs.Alias{Function: "fn", Name: "live", FunctionVersion: "1"}})
	if err, _ := a.apply(DeleteVersionType, DeleteVersion{Name: "fn", Version: "2"}).(error); err != nil {
		t.Fatal(err)
	}
	st := a.f.State()
	if _, ok := st.Version("fn", "2"); ok {
		t.Error("version 2 is still there")
	}
	if _, ok := st.ProvisionedConcurrency("fn", "2"); ok {
		t.Error("the provisioned concurrency of version 2 is still there")
	}
	if err, _ := a.apply(DeleteVersionType, DeleteVersion{Name: "fn", Version: "2"}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting it twice: %v", err)
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r3", "three")})
	if v, _ := a.apply(PublishVersionType, PublishVersion{Name: "fn"}).(*structs.Function); v == nil || v.Version != "3" {
		t.Errorf("the version published after deleting 2: %+v, want number 3", v)
	}
}

func TestAliasShare(t *testing.T) {
	for _, c := range []struct {
		weights map[string]float64
		n       int
		want    map[string]int
	}{
		{nil, 3, map[string]int{"1": 3}},
		{map[string]float64{"2": 0.5}, 4, map[string]int{"1": 2, "2": 2}},
		{map[string]float64{"2": 0.1}, 10, map[string]int{"1": 9, "2": 1}},
		{map[string]float64{"2": 0.1}, 2, map[string]int{"1": 2}},
		{map[string]float64{"2": 0.9}, 1, map[string]int{"2": 1}},
	} {
		al := &structs.Alias{FunctionVersion: "1", AdditionalVersionWeights: c.weights}
		if got := al.Share(c.n); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v of %d: %v, want %v", c.weights, c.n, got, c.want)
		}
	}
}

// TestLeases: the slots leased over nodes never exceed the reservation; another node's lease
// holds its slots until it expired and the function's timeout passed (a cut-off node may still
// run what it admitted); giving a lease back frees its slots at once.
func TestLeases(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	fn := testFunction("r1", "one") // timeout 3 s
	a.apply(PutFunctionType, PutFunction{Function: fn})
	const s = int64(time.Second)
	lease := func(node string, slots int, now int64) error {
		err, _ := a.apply(PutLeaseType, PutLease{Function: "fn", Node: node, Slots: slots, Now: now, TTL: 10 * s}).(error)
		return err
	}
	if err := lease("a", 1, 0); err == nil {
		t.Fatal("a lease of a function without a reservation")
	}
	four := 4
	a.apply(PutConcurrencyType, PutConcurrency{Name: "fn", Reserved: &four})
	if err := lease("a", 3, 0); err != nil {
		t.Fatal(err)
	}
	if err := lease("b", 2, 1*s); !errors.Is(err, ErrConflict) {
		t.Fatalf("3 + 2 of 4: %v", err)
	}
	if err := lease("b", 1, 1*s); err != nil {
		t.Fatal(err)
	}
	// a renews within the cap: its own lease does not count against it.
	if err := lease("a", 3, 5*s); err != nil {
		t.Fatalf("renewing: %v", err)
	}
	// a's lease ends at 15 s; its slots stay taken until 15 + 3 s.
	if err := lease("c", 2, 17*s); !errors.Is(err, ErrConflict) {
		t.Fatalf("before the expired lease's calls could have ended: %v", err)
	}
	if err := lease("c", 2, 19*s); err != nil {
		t.Fatalf("after: %v", err)
	}
	// Given back: free at once.
	if err := lease("c", 0, 19*s); err != nil {
		t.Fatal(err)
	}
	if err := lease("d", 3, 19*s); err != nil {
		t.Fatalf("after c gave its lease back: %v", err)
	}
	if ls := a.f.State().Leases("fn"); len(ls) != 3 {
		t.Errorf("leases: %s", jsonOf(t, ls))
	}
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if ls := a.f.State().Leases(""); len(ls) != 0 {
		t.Errorf("leases of a deleted function: %s", jsonOf(t, ls))
	}
}

// TestCode: the state references the code of $LATEST and of every published version, each
// once, until they are replaced or deleted; a snapshot names the same.
func TestCode(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	withCode := func(rev, sha string) *structs.Function {
		fn := testFunction(rev, rev)
		fn.CodeSha256 = sha
		return fn
	}
	code := func() string { return fmt.Sprint(a.f.State().Code()) }
	a.apply(PutFunctionType, PutFunction{Function: withCode("r1", "aa")})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	a.apply(PutFunctionType, PutFunction{Function: withCode("r2", "bb")})
	a.apply(PutFunctionType, PutFunction{Function: withCode("r3", "cc")})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	other := withCode("r1", "aa")
	other.Name = "other"
	a.apply(PutFunctionType, PutFunction{Function: other})
	if got := code(); got != "[aa cc]" {
		t.Fatalf("code %s, want version 1's and $LATEST's (version 2's), bb no more", got)
	}
	if got := fmt.Sprint(a.f.State().Snapshot().Code()); got != "[aa cc]" {
		t.Fatalf("the snapshot's code %s", got)
	}
	a.apply(DeleteVersionType, DeleteVersion{Name: "fn", Version: "1"})
	if got := code(); got != "[aa cc]" {
		t.Fatalf("code %s: the other function still runs aa", got)
	}
	a.apply(DeleteFunctionType, DeleteFunction{Name: "other"})
	if got := code(); got != "[cc]" {
		t.Fatalf("code %s, want cc", got)
	}
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if got := code(); got != "[]" {
		t.Fatalf("code %s after deleting every function", got)
	}
}

// A function keeps its layers' zips after their layer versions are deleted, in $LATEST and in
// the versions published with them: the code every node keeps still names them.
func TestCodeKeepsPinnedLayers(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	sha := strings.Repeat("e", 64)
	l, _ := a.apply(PublishLayerVersionType, PublishLayerVersion{Layer: &structs.LayerVersion{Name: "deps", CodeSha256: sha}}).(*structs.LayerVersion)
	if l == nil {
		t.Fatal("publishing the layer")
	}
	fn := testFunction("r1", "one")
	fn.Layers = []structs.FunctionLayer{{Name: "deps", Version: l.Version, CodeSha256: sha}}
	a.apply(PutFunctionType, PutFunction{Function: fn})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	a.apply(DeleteLayerVersionType, DeleteLayerVersion{Name: "deps", Version: l.Version})
	if code := a.f.State().Code(); !slices.Contains(code, sha) {
		t.Fatalf("the code every node keeps (%v) lacks the deleted layer version a function runs", code)
	}
	fn2 := testFunction("r2", "two")
	a.apply(PutFunctionType, PutFunction{Function: fn2, ExpectRevision: "r1"})
	if code := a.f.State().Code(); !slices.Contains(code, sha) {
		t.Fatalf("the code every node keeps (%v) lacks the layer version 1 still runs", code)
	}
	a.apply(DeleteVersionType, DeleteVersion{Name: "fn", Version: "1"})
	if code := a.f.State().Code(); slices.Contains(code, sha) {
		t.Fatalf("the code every node keeps (%v) still names a layer nothing runs", code)
	}
}

// TestEventInvokeConfigs: a configuration is refused for a function, version or alias that does
// not exist and for invalid settings; Put replaces a qualifier's whole configuration, Update
// only one that exists; deleting the version, the alias or the function deletes theirs.
func TestEventInvokeConfigs(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	st := a.f.State()
	put := func(c *structs.EventInvokeConfig, update bool) any {
		t.Helper()
		return a.apply(PutEventInvokeConfigType, PutEventInvokeConfig{Config: c, Update: update})
	}
	one := 1
	if err, _ := put(&structs.EventInvokeConfig{Function: "fn", Qualifier: "$LATEST"}, false).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("a configuration of a missing function: %v", err)
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r1", "one")})
	a.apply(PublishVersionType, PublishVersion{Name: "fn"})
	a.apply(PutAliasType, PutAlias{Alias: &structs.Alias{Function: "fn", Name: "live", FunctionVersion: "1"}})
	for name, c := range map[string]*structs.EventInvokeConfig{
		"missing version": {Function: "fn", Qualifier: "2"},
		"missing alias":   {Function: "fn", Qualifier: "canary"},
	} {
		if err, _ := put(c, false).(error); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	for name, c := range map[string]*structs.EventInvokeConfig{
		"retries":      {Function: "fn", Qualifier: "$LATEST", MaximumRetryAttempts: func() *int { n := 3; return &n }()},
		"age":          {Function: "fn", Qualifier: "$LATEST", MaximumEventAge: time.Second},
		"destination":  {Function: "fn", Qualifier: "$LATEST", OnSuccess: "sns:a topic"},
		"itself":       {Function: "fn", Qualifier: "$LATEST", OnFailure: "function:fn"},
		"no qualifier": {Function: "fn"},
	} {
		if err, _ := put(c, false).(error); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err, _ := put(&structs.EventInvokeConfig{Function: "fn", Qualifier: "$LATEST"}, true).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("updating a configuration that does not exist: %v", err)
	}
	for _, q := range []string{"$LATEST", "1", "live"} {
		got, _ := put(&structs.EventInvokeConfig{Function: "fn", Qualifier: q, MaximumRetryAttempts: &one, OnFailure: "queue:dlq"}, false).(*structs.EventInvokeConfig)
		if got == nil || got.Qualifier != q || got.Retries() != 1 || got.OnFailure != "queue:dlq" {
			t.Fatalf("putting %s's configuration: %+v", q, got)
		}
	}
	// Put replaces the whole configuration: what it leaves out is gone.
	got, _ := put(&structs.EventInvokeConfig{Function: "fn", Qualifier: "$LATEST", OnSuccess: "queue:done"}, true).(*structs.EventInvokeConfig)
	if got == nil || got.MaximumRetryAttempts != nil || got.OnFailure != "" || got.OnSuccess != "queue:done" {
		t.Errorf("replacing $LATEST's configuration: %+v", got)
	}
	if cs := st.EventInvokeConfigs("fn"); len(cs) != 3 || cs[0].Qualifier != "$LATEST" || cs[1].Qualifier != "1" || cs[2].Qualifier != "live" {
		t.Fatalf("configurations: %s", jsonOf(t, cs))
	}

	// The alias goes, its configuration with it; then the version; the function takes the rest.
	a.apply(DeleteAliasType, DeleteAlias{Function: "fn", Name: "live"})
	if _, ok := st.EventInvokeConfig("fn", "live"); ok {
		t.Error("the configuration of a deleted alias is still there")
	}
	a.apply(DeleteVersionType, DeleteVersion{Name: "fn", Version: "1"})
	if _, ok := st.EventInvokeConfig("fn", "1"); ok {
		t.Error("the configuration of a deleted version is still there")
	}
	if err, _ := a.apply(DeleteEventInvokeConfigType, DeleteEventInvokeConfig{Function: "fn", Qualifier: "1"}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a configuration that is gone: %v", err)
	}
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if cs := st.EventInvokeConfigs(""); len(cs) != 0 {
		t.Errorf("configurations of a deleted function: %s", jsonOf(t, cs))
	}
	// A function created again under the name starts without one.
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r2", "two")})
	if _, ok := st.EventInvokeConfig("fn", "$LATEST"); ok {
		t.Error("a new function of the same name inherited a configuration")
	}
}

// TestCodeSigningConfigs: a configuration is refused with invalid settings or an ID its name
// does not give; Create refuses one that exists, Update one that does not; one attached to a
// function cannot be deleted; attaching needs the function and the configuration; deleting the
// function detaches it.
func TestCodeSigningConfigs(t *testing.T) {
	a := &applier{t: t, f: New(state.New(), nil)}
	st := a.f.State()
	prod := structs.CodeSigningConfigID("prod")
	csc := func(id, name string, publishers ...string) *structs.CodeSigningConfig {
		return &structs.CodeSigningConfig{ID: id, Name: name, AllowedPublishers: publishers, UntrustedArtifactOnDeployment: structs.CodeSigningEnforce}
	}
	put := func(c *structs.CodeSigningConfig, create, update bool) any {
		t.Helper()
		return a.apply(PutCodeSigningConfigType, PutCodeSigningConfig{Config: c, Create: create, Update: update})
	}
	for name, c := range map[string]*structs.CodeSigningConfig{
		"no publisher":         csc("csc-0123456789abcdef0", ""),
		"a bad publisher":      csc("csc-0123456789abcdef0", "", "no spaces"),
		"a bad policy":         {ID: "csc-0123456789abcdef0", AllowedPublishers: []string{"p"}, UntrustedArtifactOnDeployment: "Block"},
		"an ID not its name's": csc("csc-0123456789abcdef0", "prod", "p"),
		"no ID":                csc("", "", "p"),
		"a malformed ID":       csc("csc-prod", "", "p"),
	} {
		if err, _ := put(c, true, false).(error); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if got, _ := put(csc(prod, "prod", "release"), true, false).(*structs.CodeSigningConfig); got == nil || got.ModifyIndex == 0 {
		t.Fatalf("creating: %+v", got)
	}
	if err, _ := put(csc(prod, "prod", "release"), true, false).(error); !errors.Is(err, ErrExists) {
		t.Errorf("creating it twice: %v", err)
	}
	if err, _ := put(csc(structs.CodeSigningConfigID("none"), "none", "release"), false, true).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("updating one that does not exist: %v", err)
	}
	if got, _ := put(csc(prod, "prod", "release", "ci"), false, true).(*structs.CodeSigningConfig); got == nil || len(got.AllowedPublishers) != 2 {
		t.Errorf("updating: %+v", got)
	}
	if err, _ := a.apply(PutFunctionCodeSigningConfigType, PutFunctionCodeSigningConfig{Function: "fn", Config: prod}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("attaching to a missing function: %v", err)
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r1", "one")})
	if err, _ := a.apply(PutFunctionCodeSigningConfigType, PutFunctionCodeSigningConfig{Function: "fn", Config: structs.CodeSigningConfigID("none")}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("attaching a missing configuration: %v", err)
	}
	a.apply(PutFunctionCodeSigningConfigType, PutFunctionCodeSigningConfig{Function: "fn", Config: prod})
	if id, ok := st.FunctionCodeSigningConfig("fn"); !ok || id != prod {
		t.Errorf("attached: %q, %v", id, ok)
	}
	if fns := st.FunctionsByCodeSigningConfig(prod); !slices.Equal(fns, []string{"fn"}) {
		t.Errorf("functions by configuration: %v", fns)
	}
	if err, _ := a.apply(DeleteCodeSigningConfigType, DeleteCodeSigningConfig{ID: prod}).(error); !errors.Is(err, ErrConflict) {
		t.Errorf("deleting a configuration in use: %v", err)
	}
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if _, ok := st.FunctionCodeSigningConfig("fn"); ok {
		t.Error("a deleted function keeps its configuration")
	}
	// Created with its configuration in one entry; not at all with one that does not exist.
	if err, _ := a.apply(PutFunctionType, PutFunction{Function: testFunction("r2", "two"), CodeSigningConfig: structs.CodeSigningConfigID("none")}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("creating a function with a missing configuration: %v", err)
	}
	if _, ok := st.Function("fn"); ok {
		t.Error("the function was created without its missing configuration")
	}
	a.apply(PutFunctionType, PutFunction{Function: testFunction("r3", "three"), CodeSigningConfig: prod})
	if id, ok := st.FunctionCodeSigningConfig("fn"); !ok || id != prod {
		t.Errorf("created with its configuration: %q, %v", id, ok)
	}
	a.apply(DeleteFunctionType, DeleteFunction{Name: "fn"})
	if err, _ := a.apply(DeleteFunctionCodeSigningConfigType, DeleteFunctionCodeSigningConfig{Function: "fn"}).(error); !errors.Is(err, ErrNotFound) {
		t.Errorf("detaching what is not attached: %v", err)
	}
	if err, _ := a.apply(DeleteCodeSigningConfigType, DeleteCodeSigningConfig{ID: prod}).(error); err != nil {
		t.Errorf("deleting a configuration no function uses: %v", err)
	}
	if cs := st.CodeSigningConfigs(); len(cs) != 0 {
		t.Errorf("configurations left: %s", jsonOf(t, cs))
	}
}
