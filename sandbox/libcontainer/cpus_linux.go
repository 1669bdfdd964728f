//go:build linux && cgo

package libcontainer

import (
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// mbPerCPU is Lambda's compute allocation: one vCPU per 1,769 MB of memory.
const mbPerCPU = 1769

// cpuSet gives each environment as many CPUs as its memory buys in Lambda's model (one per
// 1,769 MB, at least one), choosing the least used ones, so a small function cannot spread over
// every core of the host. Runtimes size their thread pools by the CPUs they can run on (Go's
// GOMAXPROCS, the JVM's GC threads): on a machine shared by many environments, one CPU each
// avoids a scheduler per environment spinning across every core. CPU shares still weigh
// environments against each other under contention.
type cpuSet struct {
	mu   sync.Mutex
	cpus []int       // the agent's own affinity
	load map[int]int // environments per CPU
}

func newCPUSet() *cpuSet {
	s := &cpuSet{load: map[int]int{}}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		for c := 0; c < len(set)*64 && len(s.cpus) < set.Count(); c++ {
			if set.IsSet(c) {
				s.cpus = append(s.cpus, c)
			}
		}
	}
	return s
}

// take reserves the CPUs of an environment with memoryMB and returns them in cpuset syntax
// ("" when the host's CPUs are unknown: no restriction).
func (s *cpuSet) take(memoryMB int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cpus) == 0 {
		return ""
	}
	n := (memoryMB + mbPerCPU - 1) / mbPerCPU
	if n < 1 {
		n = 1
	}
	if n >= len(s.cpus) {
		n = len(s.cpus)
	}
	order := append([]int(nil), s.cpus...)
	sort.SliceStable(order, func(i, j int) bool { return s.load[order[i]] < s.load[order[j]] })
	chosen := order[:n]
	sort.Ints(chosen)
	parts := make([]string, n)
	for i, c := range chosen {
		s.load[c]++
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}

// release gives back what take returned.
func (s *cpuSet) release(cpus string) {
	if cpus == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range strings.Split(cpus, ",") {
		if c, err := strconv.Atoi(p); err == nil && s.load[c] > 0 {
			s.load[c]--
		}
	}
}
