package funclog

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
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
