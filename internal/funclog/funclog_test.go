package funclog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestAppendTailFollow(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := s.Follow(ctx, "fn")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				s.Append("fn", fmt.Sprintf("g%d line %d", g, i))
			}
		}(g)
	}
	wg.Wait()
	lines, err := s.Tail("fn", 10)
	if err != nil || len(lines) != 10 {
		t.Fatalf("tail: %d lines, %v", len(lines), err)
	}
	all, _ := s.Tail("fn", 1000)
	if len(all) != 200 {
		t.Fatalf("%d lines in all, want 200", len(all))
	}
	if _, rest, ok := strings.Cut(all[0], "\t"); !ok || !strings.Contains(rest, "line") {
		t.Fatalf("line format %q", all[0])
	}
	got := 0
	timeout := time.After(5 * time.Second)
	for got < 200 {
		select {
		case <-follow:
			got++
		case <-timeout:
			t.Fatalf("followed %d of 200 lines", got)
		}
	}
	if l, _ := s.Tail("other", 5); l != nil {
		t.Fatalf("unknown function: %v", l)
	}
}

// Lines are buffered between flushes; Close writes what is left, and a new store reads it.
func TestCloseWritesBufferedLines(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		s.Append("fn", fmt.Sprintf("line %d", i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Append("fn", "after close") // dropped, not a panic
	s2, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	lines, err := s2.Tail("fn", 10)
	if err != nil || len(lines) != 3 || !strings.HasSuffix(lines[2], "\tline 2") {
		t.Fatalf("after reopening: %q, %v", lines, err)
	}
}

// The flusher writes buffered lines to the file without any reader asking.
func TestFlusherWritesInBackground(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Append("fn", "hello")
	deadline := time.Now().Add(10 * FlushInterval)
	for {
		b, _ := os.ReadFile(s.path("fn"))
		if strings.Contains(string(b), "\thello\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("line not written after %s: %q", 10*FlushInterval, b)
		}
		time.Sleep(FlushInterval / 4)
	}
}

// A function that writes past its queue's bound loses its own excess lines (counted, and noted
// in its log), never the gateway's lines and never another function's.
func TestFloodIsBoundedPerFunction(t *testing.T) {
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.queueBytes = 64 << 10
	// Hold the writer off so the queue fills: Append must not wait for it.
	s.wmu.Lock()
	line := strings.Repeat("x", 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			s.Append("loud", line)
		}
		s.Platform("loud", "END RequestId: r1")
		s.Append("quiet", "a quiet line")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Append waited for the writer")
	}
	s.wmu.Unlock()
	if d := s.Dropped(); d < 900 {
		t.Fatalf("dropped %d lines of 1,000 with room for about 64", d)
	}
	loud, _ := s.Tail("loud", 2000)
	if len(loud) > 100 {
		t.Fatalf("%d lines of the flood kept, over the bound", len(loud))
	}
	last := loud[len(loud)-1]
	note := loud[len(loud)-2]
	if !strings.HasSuffix(last, "\tEND RequestId: r1") || !strings.Contains(note, "log lines dropped") {
		t.Fatalf("the end of the flooded log:\n%s\n%s", note, last)
	}
	if q, _ := s.Tail("quiet", 5); len(q) != 1 || !strings.HasSuffix(q[0], "\ta quiet line") {
		t.Fatalf("the quiet function's log: %q", q)
	}
}

// A full disk loses lines while it is full, and logging resumes by itself once there is room,
// with a note of what was lost; no half line is left in the file.
func TestDiskFullIsSurvived(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounting a small tmpfs needs root; CI runs as root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	s, err := New(filepath.Join(dir, "logs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write(make([]byte, 128<<10)) // fills the tmpfs: ENOSPC part of the way
	f.Close()
	for i := 0; i < 100; i++ {
		s.Append("fn", fmt.Sprintf("while full %d %s", i, strings.Repeat("y", 100)))
	}
	if lines, _ := s.Tail("fn", 1000); len(lines) != 0 {
		t.Fatalf("%d lines written to a full disk", len(lines))
	}
	if s.Lost() == 0 {
		t.Fatal("no line counted as lost on a full disk")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.Append("fn", "after")
	lines, err := s.Tail("fn", 10)
	if err != nil || len(lines) != 2 || !strings.Contains(lines[0], "log lines lost while writing failed") || !strings.HasSuffix(lines[1], "\tafter") {
		t.Fatalf("after the disk had room again: %q, %v", lines, err)
	}
}

// Only function names become paths.
func TestNamesAreValidated(t *testing.T) {
	dir := t.TempDir()
	s, err := New(filepath.Join(dir, "logs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"../escape", "a/b", "", ".", "..", strings.Repeat("n", 65), "x\x00y"} {
		s.Append(name, "line")
		s.Platform(name, "line")
		if _, err := s.Tail(name, 5); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Tail(%q): %v", name, err)
		}
		if err := s.Remove(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Remove(%q): %v", name, err)
		}
	}
	s.flush("")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files beside the log folder: %v", entries)
	}
	if logs, _ := os.ReadDir(filepath.Join(dir, "logs")); len(logs) != 0 {
		t.Fatalf("files for invalid names: %v", logs)
	}
}
