package funclog

import (
	"context"
	"fmt"
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
