package sandbox

import "time"

// Hooks for the package's external tests.

// MaxRuntimeConns is the per-environment bound on Runtime API connections.
const MaxRuntimeConns = maxRuntimeConns

// SetHeaderTimeout shortens the Runtime API's header deadline for a test.
func SetHeaderTimeout(d time.Duration) (restore func()) {
	old := headerTimeout
	headerTimeout = d
	return func() { headerTimeout = old }
}

// BadTransitions counts environment lifecycle transitions the table refused (see lifecycle.go).
func BadTransitions() int64 { return badTransitions.Load() }
