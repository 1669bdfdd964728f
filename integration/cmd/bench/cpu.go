package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The CPU rows say where a 4-caller throughput run's CPU goes, per call: the serving processes
// (agent, minimal gateway or floor server), the function's runtimes, the caller (this process),
// and how busy the machine was. A side that uses less CPU per call but serves fewer calls per
// second is held back by waiting, not by work.

// cpuPart is one consumer of CPU, read as a running total.
type cpuPart struct {
	name string
	read func() (time.Duration, error)
}

// userHZ is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on every Linux architecture Go
// supports).
const userHZ = 100

// procStat is /proc/<pid>/stat from field 3 (state) on: the command name (field 2) may hold
// spaces, so the fields are counted after its closing parenthesis.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return nil, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return f, nil
}

// statCPU is the CPU time (utime + stime, every thread) in procStat's fields.
func statCPU(f []string) (time.Duration, error) {
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing CPU times %q %q", f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// procCPU is the CPU time of a process, every thread included.
func procCPU(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return statCPU(f)
}

// childrenCPU is the CPU time of pid's living children (the minimal gateway's runtimes).
func childrenCPU(pid int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	parent := strconv.Itoa(pid)
	var sum time.Duration
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStat(child)
		if err != nil || f[1] != parent { // field 4: the parent's pid
			continue
		}
		if d, err := statCPU(f); err == nil {
			sum += d
		}
	}
	return sum, nil
}

// cgroupsCPU is the CPU time of every cgroup matching glob under the cpuacct (v1) or unified
// (v2) hierarchy: the agent's environments, under its cgroup parent.
func cgroupsCPU(glob string) (time.Duration, error) {
	if dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/cpuacct", glob)); len(dirs) > 0 {
		var sum time.Duration
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "cpuacct.usage"))
			if err != nil {
				return 0, err
			}
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return 0, err
			}
			sum += time.Duration(ns)
		}
		return sum, nil
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", glob))
	if len(dirs) == 0 {
		return 0, fmt.Errorf("no cgroup matches %s", glob)
	}
	var sum time.Duration
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cpu.stat"))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, err
				}
				sum += time.Duration(us) * time.Microsecond
			}
		}
	}
	return sum, nil
}

// machineCPU returns the machine's busy and total CPU time so far (/proc/stat, every CPU).
func machineCPU() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat: %q", line)
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if i >= 8 { // guest times are counted in user already
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

// cpuPerCall runs callers against url for dur and returns each part's CPU per call, the
// machine's busy fraction and the calls per second.
func cpuPerCall(c *http.Client, url string, payload []byte, callers int, dur time.Duration, parts []cpuPart) ([]time.Duration, float64, float64, error) {
	before := make([]time.Duration, len(parts))
	for i, p := range parts {
		v, err := p.read()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("reading the CPU time of the %s: %w", p.name, err)
		}
		before[i] = v
	}
	busy0, total0, err := machineCPU()
	if err != nil {
		return nil, 0, 0, err
	}
	n, el, err := throughput(c, url, payload, callers, dur)
	if err != nil {
		return nil, 0, 0, err
	}
	busy1, total1, err := machineCPU()
	if err != nil {
		return nil, 0, 0, err
	}
	per := make([]time.Duration, len(parts))
	for i, p := range parts {
		v, err := p.read()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("reading the CPU time of the %s: %w", p.name, err)
		}
		per[i] = time.Duration(float64(v-before[i]) / n)
	}
	return per, float64(busy1-busy0) / float64(max(total1-total0, 1)), n / el.Seconds(), nil
}

// cpuCell formats a side's CPU per call: "agent 197 + environments 220 + caller 136 µs/call,
// 2,863/s, machine 78% busy".
func cpuCell(parts []cpuPart, per []time.Duration, busy, rate float64) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(" + ")
		}
		fmt.Fprintf(&b, "%s %.0f", p.name, us(per[i]))
	}
	fmt.Fprintf(&b, " µs/call; %.0f/s, machine %.0f%% busy", rate, 100*busy)
	return b.String()
}
