package reconcile

import (
	"fmt"
	"sort"
	"strings"
)

// envChanges lists the environment variables that differ, "~ KEY" (changed), "- KEY" (removed)
// and "+ KEY" (added), with their values only when showSensitive is set: they often hold
// secrets, and plan output ends up in CI logs.
func envChanges(old, new map[string]string, showSensitive bool) string {
	var parts []string
	for _, k := range sortedKeys(old, new) {
		o, inOld := old[k]
		n, inNew := new[k]
		switch {
		case !inOld && showSensitive:
			parts = append(parts, fmt.Sprintf("+ %s = %q", k, n))
		case !inOld:
			parts = append(parts, "+ "+k)
		case !inNew && showSensitive:
			parts = append(parts, fmt.Sprintf("- %s = %q", k, o))
		case !inNew:
			parts = append(parts, "- "+k)
		case o != n && showSensitive:
			parts = append(parts, fmt.Sprintf("~ %s = %q -> %q", k, o, n))
		case o != n:
			parts = append(parts, "~ "+k)
		}
	}
	out := strings.Join(parts, ", ")
	if !showSensitive {
		out += " (values hidden; -show-sensitive shows them)"
	}
	return out
}

// keyDiff lists the keys that differ between two maps: -KEY, ~KEY, +KEY.
func keyDiff(old, new map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(old, new) {
		o, inOld := old[k]
		n, inNew := new[k]
		switch {
		case !inOld:
			parts = append(parts, "+"+k)
		case !inNew:
			parts = append(parts, "-"+k)
		case o != n:
			parts = append(parts, "~"+k)
		}
	}
	return strings.Join(parts, " ")
}

func sortedKeys(maps ...map[string]string) []string {
	keys := map[string]bool{}
	for _, m := range maps {
		for k := range m {
			keys[k] = true
		}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	return sorted
}

// routingText shows an alias's weighted version, e.g. " + 10% to 4".
func routingText(r map[string]float64) string {
	var parts []string
	for v, w := range r {
		parts = append(parts, fmt.Sprintf(" + %g%% to %s", 100*w, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, "")
}
