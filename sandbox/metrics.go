package sandbox

import (
	"time"

	"github.com/lambdagw/gateway/internal/invoke"
)

// Metrics is told what happens to invocations and environments, for the node's metrics (the
// agent wires internal/metrics in). Its methods run on the warm path: they must be cheap.
type Metrics interface {
	// Invocation returns the recorder of a call of function through arn (the ARN the caller
	// invoked); the same arn gives the same recorder.
	Invocation(function, arn string) InvocationMetrics
	// Thawed and Frozen observe how long a thaw or a freeze took.
	Thawed(time.Duration)
	Frozen(time.Duration)
}

// InvocationMetrics records one function's invocations through one qualifier.
type InvocationMetrics interface {
	Begin()
	// End: initDur is non-zero on a cold start, errorType empty on success.
	End(dur, initDur time.Duration, errorType string)
	StreamBytes(n int64)
}

// noMetrics counts nothing (ManagerConfig.Metrics unset).
type noMetrics struct{}

func (noMetrics) Invocation(string, string) InvocationMetrics { return noMetrics{} }
func (noMetrics) Thawed(time.Duration)                        {}
func (noMetrics) Frozen(time.Duration)                        {}
func (noMetrics) Begin()                                      {}
func (noMetrics) End(time.Duration, time.Duration, string)    {}
func (noMetrics) StreamBytes(int64)                           {}

// outcome is the error type an invocation ended with, for metrics: the sandbox's own (status
// set) or the function's (its response says so); empty on success.
func outcome(resp *invoke.Response, errType string) string {
	if errType != "" {
		return errType
	}
	if resp != nil && resp.FunctionError {
		if resp.ErrorType != "" {
			return resp.ErrorType
		}
		return "Unhandled"
	}
	return ""
}

// met is the environments' Metrics, nothing counted when none was set.
func (c *envConfig) met() Metrics {
	if c.metrics == nil {
		return noMetrics{}
	}
	return c.metrics
}

// Figures are the node's environments as its metrics read them.
type Figures struct {
	// States counts the live environments by phase; standby ones (started, waiting for a
	// function) as "standby".
	States map[string]int
	// MemoryLimitBytes is the memory limit of all live environments, MemoryPeakBytes the sum of
	// their peak use.
	MemoryLimitBytes, MemoryPeakBytes uint64
	// ProvisionedInUse counts the provisioned environments running an invocation, by function
	// and version.
	ProvisionedInUse map[[2]string]int
}

// Figures reads the live environments, for a metrics scrape (not the warm path).
func (m *Manager) Figures() Figures {
	m.mu.Lock()
	envs := make([]*environment, 0, len(m.all))
	for env := range m.all {
		envs = append(envs, env)
	}
	standby := map[*environment]bool{}
	for _, env := range m.standby.ready() {
		standby[env] = true
	}
	m.mu.Unlock()
	f := Figures{States: map[string]int{}, ProvisionedInUse: map[[2]string]int{}}
	for _, env := range envs {
		env.mu.Lock()
		ph := env.phase
		env.mu.Unlock()
		if ph == phaseDead {
			continue
		}
		state := ph.String()
		if standby[env] {
			state = "standby"
		}
		f.States[state]++
		if env.fn != nil {
			f.MemoryLimitBytes += uint64(env.fn.MemoryMB) << 20
		}
		if env.inst != nil {
			if b, err := env.inst.MaxMemoryBytes(); err == nil {
				f.MemoryPeakBytes += b
			}
		}
		if env.prov.Load() != provNone && (ph == phaseInvoking || ph == phaseFinishing || ph == phaseThawing) && env.fn != nil && env.pool != nil {
			f.ProvisionedInUse[[2]string{env.fn.Name, env.pool.key.version}]++
		}
	}
	return f
}
