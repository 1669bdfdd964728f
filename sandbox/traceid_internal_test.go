package sandbox

import (
	"regexp"
	"testing"
)

// The trace header a function gets when the caller sent none: X-Ray's form, each one new.
func TestNewTraceID(t *testing.T) {
	form := regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := newTraceID()
		if !form.MatchString(id) {
			t.Fatalf("trace id %q is not in X-Ray's form", id)
		}
		if seen[id] {
			t.Fatalf("trace id %q made twice", id)
		}
		seen[id] = true
	}
}
