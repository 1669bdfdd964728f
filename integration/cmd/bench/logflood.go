package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// benchLogFlood measures a quiet function's warm invocations alone, next to a function that
// floods its log (stdout as fast as it can write), and next to one that only keeps a CPU busy,
// in alternating blocks. On a small machine any busy neighbour costs the quiet function CPU; the
// flood's own cost is what it adds over the busy neighbour's (issue 14: within 20%).
func benchLogFlood(c *http.Client, gwBin, base, fnDir, tmp string, n int) ([]string, error) {
	path := filepath.Join(tmp, "logflood.hcl")
	fns := functionBlock("quiet", fnDir, "100ms") +
		fmt.Sprintf("function \"loud\" {\n  runtime   = \"provided.al2023\"\n  code      = %q\n  memory_mb = 128\n  timeout   = \"60s\"\n}\n", fnDir)
	if err := os.WriteFile(path, []byte(fns), 0o644); err != nil {
		return nil, err
	}
	if _, err := runCLI(gwBin, "Apply complete", "apply", "-address", base, path); err != nil {
		return nil, err
	}
	invoke := func(name string) string { return base + "/2015-03-31/functions/" + name + "/invocations" }
	quiet, loud := invoke("quiet"), invoke("loud")
	payload := []byte(`{"mode":"hello","name":"bench"}`)
	flood := []byte(`{"mode":"log","n":20000}`) // 20,000 lines a call, called back to back
	burn := []byte(`{"mode":"burn","ms":100}`)
	if _, err := call(c, quiet, payload); err != nil {
		return nil, err
	}
	if _, err := call(c, loud, flood); err != nil {
		return nil, err
	}
	var alone, beside, busy []time.Duration
	var lines int
	// next runs k+10 quiet calls (the first 10 unrecorded) while neighbour (if any) is called
	// back to back on loud.
	next := func(neighbour []byte, k int, out *[]time.Duration) error {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var loudErr error
		if neighbour != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if _, err := call(c, loud, neighbour); err != nil {
						loudErr = err
						return
					}
					if &neighbour[0] == &flood[0] {
						lines += 20000
					}
				}
			}()
			time.Sleep(50 * time.Millisecond)
		}
		var err error
		for i := 0; i < k+10 && err == nil; i++ {
			var d time.Duration
			if d, err = call(c, quiet, payload); err == nil && i >= 10 {
				*out = append(*out, d)
			}
		}
		cancel()
		wg.Wait()
		if err == nil && loudErr != nil {
			err = fmt.Errorf("the neighbour: %w", loudErr)
		}
		return err
	}
	for len(alone) < n {
		k := min(latencyBlock, n-len(alone))
		for _, b := range []struct {
			neighbour []byte
			out       *[]time.Duration
		}{{nil, &alone}, {flood, &beside}, {burn, &busy}} {
			if err := next(b.neighbour, k, b.out); err != nil {
				return nil, err
			}
		}
	}
	sortDur(alone)
	sortDur(beside)
	sortDur(busy)
	var rows []string
	for _, p := range []int{50, 99} {
		a, f, b := us(pct(alone, p)), us(pct(beside, p)), us(pct(busy, p))
		rows = append(rows,
			fmt.Sprintf("| warm invoke p%d next to a function burning a CPU (no output) | %.0f µs | %.0f µs alone | %.2fx alone (+%.0f µs) |", p, b, a, b/a, b-a),
			fmt.Sprintf("| warm invoke p%d next to a function flooding its log (%d lines written meanwhile) | %.0f µs | %.0f µs beside the CPU burner | %.2fx (+%.0f µs); %.2fx alone |",
				p, lines, f, b, f/b, f-b, f/a))
		fmt.Printf("warm invoke p%d: alone %6.0f µs, beside a CPU burner %6.0f µs, beside a log flood %6.0f µs (%.2fx the burner)\n", p, a, b, f, f/b)
	}
	return rows, nil
}
