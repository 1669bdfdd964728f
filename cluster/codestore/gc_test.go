package codestore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// gcStore is a store on a clock the test moves, holding three codes a, b and c, each unpacked.
type gcStore struct {
	*Store
	t       *testing.T
	clock   time.Time
	a, b, c string
}

func newGCStore(t *testing.T) *gcStore {
	t.Helper()
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &gcStore{Store: s, t: t, clock: time.Now()}
	s.now = func() time.Time { return g.clock }
	var shas []string
	for _, body := range []string{"a", "b", "c"} {
		sha, _, err := s.Put(context.Background(), bytes.NewReader(makeZip(t, entry{"bootstrap", 0o755, body})), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unpacked(context.Background(), sha); err != nil {
			t.Fatal(err)
		}
		shas = append(shas, sha)
	}
	g.a, g.b, g.c = shas[0], shas[1], shas[2]
	return g
}

func (g *gcStore) advance(d time.Duration) { g.clock = g.clock.Add(d) }

// collect runs one collection and returns what it removed.
func (g *gcStore) collect(keep ...string) []string {
	g.t.Helper()
	removed, err := g.Collect(keep, time.Hour)
	if err != nil {
		g.t.Fatalf("collect: %v", err)
	}
	return removed
}

// present reports whether sha's zip and its tree are on disk, failing when only one is.
func (g *gcStore) present(sha string) bool {
	g.t.Helper()
	_, errBlob := os.Stat(g.blobPath(sha))
	_, errTree := os.Stat(filepath.Join(g.dir, "unpacked", sha))
	if (errBlob == nil) != (errTree == nil) {
		g.t.Fatalf("%s: zip %v, tree %v", sha, errBlob, errTree)
	}
	return errBlob == nil
}

// TestCollectDeletesCodeUnreferencedForTheGrace: code the keep list does not name is deleted,
// zip and tree, once a collection has found it unreferenced for the grace period; kept code
// stays however old; a hash that comes back into the list starts over.
func TestCollectDeletesCodeUnreferencedForTheGrace(t *testing.T) {
	g := newGCStore(t)
	g.advance(2 * time.Hour) // the files are old: only the collector's own clock protects b and c
	if r := g.collect(g.a); len(r) != 0 {
		t.Fatalf("the first collection to see b and c unreferenced deleted %v", r)
	}
	g.advance(59 * time.Minute)
	if r := g.collect(g.a); len(r) != 0 {
		t.Fatalf("deleted %v before the grace period", r)
	}
	// c is referenced again for a while (a version published, then deleted): its clock restarts.
	if r := g.collect(g.a, g.c); len(r) != 0 {
		t.Fatalf("deleted %v", r)
	}
	g.advance(time.Minute)
	if r := g.collect(g.a); !slices.Equal(r, []string{g.b}) {
		t.Fatalf("after the grace period removed %v, want only b", r)
	}
	if !g.present(g.a) || g.present(g.b) || !g.present(g.c) {
		t.Fatalf("on disk after the collection: a %v, b %v, c %v", g.present(g.a), g.present(g.b), g.present(g.c))
	}
	g.advance(time.Hour)
	if r := g.collect(g.a); !slices.Equal(r, []string{g.c}) {
		t.Fatalf("removed %v, want c", r)
	}
	// Whatever is missing, the kept code's tree is still usable.
	if _, err := g.Unpacked(context.Background(), g.a); err != nil || !g.present(g.a) {
		t.Fatalf("kept code: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(g.dir, "tmp")); len(entries) != 0 {
		t.Fatalf("the collector left %d entries in tmp/", len(entries))
	}
}

// TestCollectSparesFreshWrites: an upload in flight (stored before the Raft entry naming it is
// committed) and a write naming stored code by hash (Reuse) are not deleted, however long the
// collector has seen the hash unreferenced, until the grace period passed since that write.
func TestCollectSparesFreshWrites(t *testing.T) {
	g := newGCStore(t)
	g.advance(2 * time.Hour)
	g.collect(g.a)
	g.advance(2 * time.Hour) // b and c are due now
	// The same zip as b uploaded again, and c named by hash.
	if sha, _, err := g.Put(context.Background(), bytes.NewReader(makeZip(t, entry{"bootstrap", 0o755, "b"})), 1<<20); err != nil || sha != g.b {
		t.Fatalf("put: %v %s", err, sha)
	}
	if _, ok := g.Reuse(g.c); !ok {
		t.Fatal("reuse: c is not there")
	}
	g.advance(59 * time.Minute)
	if r := g.collect(g.a); len(r) != 0 {
		t.Fatalf("deleted %v within the grace period of their writes", r)
	}
	g.advance(time.Minute)
	if r := g.collect(g.a); !slices.Equal(r, sorted(g.b, g.c)) {
		t.Fatalf("removed %v, want b and c", r)
	}
	if _, ok := g.Reuse(g.b); ok {
		t.Fatal("Reuse of deleted code reported it there")
	}
}

// TestCollectSparesTreesInUse: a tree handed out (Unpacked: an environment starting) within the
// grace period stays, with its zip.
func TestCollectSparesTreesInUse(t *testing.T) {
	g := newGCStore(t)
	g.advance(2 * time.Hour)
	g.collect()
	g.advance(2 * time.Hour)
	if _, err := g.Unpacked(context.Background(), g.b); err != nil {
		t.Fatal(err)
	}
	if r := g.collect(); !slices.Equal(r, sorted(g.a, g.c)) {
		t.Fatalf("removed %v, want a and c (b's tree was just handed out)", r)
	}
	g.advance(time.Hour)
	if r := g.collect(); !slices.Equal(r, []string{g.b}) {
		t.Fatalf("removed %v, want b", r)
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }
