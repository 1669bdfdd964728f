package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func recs(ss ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(ss))
	for i, s := range ss {
		out[i] = json.RawMessage(fmt.Sprintf("%q", s))
	}
	return out
}

func pendingOf(j *journal) []string {
	var out []string
	for _, e := range j.peek(1 << 30) {
		var s string
		_ = json.Unmarshal(e.Record, &s)
		out = append(out, s)
	}
	return out
}

// TestJournalReplay: what was added and not done comes back, in order, after a reopen; a torn
// last line is cut off; ids go on growing.
func TestJournalReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j", "m.journal")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := j.append(recs("a", "b"), now); err != nil {
		t.Fatal(err)
	}
	if err := j.append(recs("c"), now); err != nil {
		t.Fatal(err)
	}
	first := j.peek(1)
	if err := j.done([]uint64{first[0].ID}); err != nil {
		t.Fatal(err)
	}
	_ = j.close()

	// A crash in the middle of a write.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.WriteString(`{"add":{"id":99,"record":"tor`)
	f.Close()

	j, err = openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(pendingOf(j)); got != "[b c]" {
		t.Fatalf("pending after reopen: %s", got)
	}
	if err := j.append(recs("d"), now); err != nil {
		t.Fatal(err)
	}
	es := j.peek(3)
	if es[2].ID != 4 || !es[0].Received.Equal(now) {
		t.Fatalf("entries %+v", es)
	}
	if err := j.done([]uint64{es[0].ID, es[1].ID, es[2].ID}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatalf("the journal keeps %d bytes with nothing pending", st.Size())
	}
	_ = j.close()
	j, err = openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if j.len() != 0 {
		t.Fatalf("pending: %v", pendingOf(j))
	}
}

// TestJournalCompacts: done lines do not pile up without bound.
func TestJournalCompacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.journal")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.append(recs("keep"), time.Now()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < compactAfter+10; i++ {
		if err := j.append(recs(fmt.Sprint(i)), time.Now()); err != nil {
			t.Fatal(err)
		}
		es := j.peek(2)
		if err := j.done([]uint64{es[1].ID}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := os.Stat(path)
	if st.Size() > 100*1024 {
		t.Fatalf("the journal grew to %d bytes", st.Size())
	}
	_ = j.close()
	j, err = openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if got := fmt.Sprint(pendingOf(j)); got != "[keep]" {
		t.Fatalf("pending after compactions: %s", got)
	}
}
