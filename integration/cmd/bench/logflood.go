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

// benchLogFlood measures a quiet function's warm invocations alone and next to a function that
// floods its log (stdout as fast as it can write), in alternating blocks: the log store's bound
// per function must keep the quiet one's latency where it was (issue 14: p50 within 20%).
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
	if _, err := call(c, quiet, payload); err != nil {
		return nil, err
	}
	if _, err := call(c, loud, flood); err != nil {
		return nil, err
	}
	var alone, beside []time.Duration
	var lines int
	for len(alone) < n {
		k := min(latencyBlock, n-len(alone))
		for i := 0; i < k+10; i++ {
			d, err := call(c, quiet, payload)
			if err != nil {
				return nil, err
			}
			if i >= 10 {
				alone = append(alone, d)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var floodErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := call(c, loud, flood); err != nil {
					floodErr = err
					return
				}
				lines += 20000
			}
		}()
		time.Sleep(50 * time.Millisecond)
		for i := 0; i < k+10; i++ {
			d, err := call(c, quiet, payload)
			if err != nil {
				cancel()
				wg.Wait()
				return nil, err
			}
			if i >= 10 {
				beside = append(beside, d)
			}
		}
		cancel()
		wg.Wait()
		if floodErr != nil {
			return nil, fmt.Errorf("the flooding function: %w", floodErr)
		}
	}
	sortDur(alone)
	sortDur(beside)
	var rows []string
	for _, p := range []int{50, 99} {
		a, b := us(pct(alone, p)), us(pct(beside, p))
		rows = append(rows, fmt.Sprintf("| warm invoke p%d next to a function flooding its log (%d lines written meanwhile) | %.0f µs | %.0f µs alone | %.2fx alone (+%.0f µs) |",
			p, lines, b, a, b/a, b-a))
		fmt.Printf("warm invoke p%d beside a log flood %8.0f µs   alone %8.0f µs   %.2fx\n", p, b, a, b/a)
	}
	return rows, nil
}
