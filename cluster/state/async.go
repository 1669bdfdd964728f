package state

import "github.com/lambdagw/gateway/internal/structs"

// EventInvokeConfig returns the asynchronous invocation configuration of qualifier ("$LATEST",
// a version or an alias) of function fn.
func (s *Store) EventInvokeConfig(fn, qualifier string) (*structs.EventInvokeConfig, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.eventConfigs[fn][qualifier]
	return c, ok
}

// EventInvokeConfigs returns the asynchronous invocation configurations of function fn sorted
// by qualifier; of every function (sorted by function) when fn is empty.
func (s *Store) EventInvokeConfigs(fn string) []*structs.EventInvokeConfig {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return perFunction(s.eventConfigs, fn, func(c *structs.EventInvokeConfig) (string, string) { return c.Function, c.Qualifier })
}

// PutEventInvokeConfig stores a configuration at index (FSM only), replacing the qualifier's.
func (s *Store) PutEventInvokeConfig(index uint64, c *structs.EventInvokeConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.eventConfigs[c.Function]
	if m == nil {
		m = map[string]*structs.EventInvokeConfig{}
		s.eventConfigs[c.Function] = m
	}
	m[c.Qualifier] = c.Copy()
	s.changedLocked(index)
}

// DeleteEventInvokeConfig removes a configuration (FSM only) and reports whether it existed.
func (s *Store) DeleteEventInvokeConfig(index uint64, fn, qualifier string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.eventConfigs[fn][qualifier]; !ok {
		return false
	}
	delete(s.eventConfigs[fn], qualifier)
	if len(s.eventConfigs[fn]) == 0 {
		delete(s.eventConfigs, fn)
	}
	s.changedLocked(index)
	return true
}

// restoreEventConfigs indexes a snapshot's configurations by function and qualifier.
func restoreEventConfigs(list []*structs.EventInvokeConfig) map[string]map[string]*structs.EventInvokeConfig {
	out := map[string]map[string]*structs.EventInvokeConfig{}
	for _, c := range list {
		if out[c.Function] == nil {
			out[c.Function] = map[string]*structs.EventInvokeConfig{}
		}
		out[c.Function][c.Qualifier] = c
	}
	return out
}
