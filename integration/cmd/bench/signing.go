package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// benchSigning runs internal/signing's BenchmarkVerify (what a deploy under a code signing
// configuration adds, and each node before it first runs the code: reading the signed zip's
// signature and hashing the zip as signed, then verifying the bundle with sigstore-go) case by
// case in rounds, and reports the median of rounds for a key publisher and a certificate
// identity, on a 1 MB and a 50 MB zip.
func benchSigning(tmp string, rounds, n int) ([]string, error) {
	bin := filepath.Join(tmp, "signing.test")
	build := exec.Command("go", "test", "-c", "-o", bin, "./internal/signing")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the signing benchmarks: %v\n%s", err, b)
	}
	metric := func(out []byte, unit string) float64 {
		m := regexp.MustCompile(`\s([0-9.]+) ` + regexp.QuoteMeta(unit) + `(\s|$)`).FindSubmatch(out)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	cases := []string{"key/1MB", "certificate/1MB", "key/50MB", "certificate/50MB"}
	res := map[string]map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, c := range cases {
			cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", "^BenchmarkVerify/"+regexp.QuoteMeta(c)+"$", "-test.benchtime", fmt.Sprintf("%dx", n))
			cmd.Dir = "internal/signing"
			out, err := cmd.CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("BenchmarkVerify/%s: %v\n%s", c, err, out)
			}
			if res[c] == nil {
				res[c] = map[string][]float64{}
			}
			for _, u := range []string{"ns/op", "read-µs/op", "verify-µs/op"} {
				res[c][u] = append(res[c][u], metric(out, u))
			}
			fmt.Printf("signing %-18s %s\n", c, strings.TrimSpace(lastLine(out, "BenchmarkVerify")))
		}
	}
	var rows []string
	for _, c := range []struct{ name, label string }{
		{"key/1MB", "a 1 MB zip signed with a key"},
		{"certificate/1MB", "a 1 MB zip signed with a certificate identity (chain to the trusted root, identity, validity now)"},
		{"key/50MB", "a 50 MB zip (Lambda's largest upload) signed with a key"},
		{"certificate/50MB", "a 50 MB zip signed with a certificate identity"},
	} {
		total := median(res[c.name]["ns/op"]) / 1e3
		rows = append(rows, fmt.Sprintf("| time to verify the signature of %s at deploy (%d verifications x %d rounds, median of rounds) | %.0f µs | | read and hash %.0f µs + verify %.0f µs |",
			c.label, n, rounds, total, median(res[c.name]["read-µs/op"]), median(res[c.name]["verify-µs/op"])))
	}
	return rows, nil
}
