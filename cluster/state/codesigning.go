package state

import (
	"sort"

	"github.com/lambdagw/gateway/internal/structs"
)

// CodeSigningConfig returns the code signing configuration id.
func (s *Store) CodeSigningConfig(id string) (*structs.CodeSigningConfig, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.signingConfigs[id]
	return c, ok
}

// CodeSigningConfigs returns every code signing configuration, sorted by ID.
func (s *Store) CodeSigningConfigs() []*structs.CodeSigningConfig {
	s.mu.RLock()
	out := make([]*structs.CodeSigningConfig, 0, len(s.signingConfigs))
	for _, c := range s.signingConfigs {
		out = append(out, c)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PutCodeSigningConfig stores a configuration at index (FSM only), replacing the one of its ID.
func (s *Store) PutCodeSigningConfig(index uint64, c *structs.CodeSigningConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c = c.Copy()
	c.ModifyIndex = index
	s.signingConfigs[c.ID] = c
	s.changedLocked(index)
}

// DeleteCodeSigningConfig removes a configuration (FSM only) and reports whether it existed.
func (s *Store) DeleteCodeSigningConfig(index uint64, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.signingConfigs[id]; !ok {
		return false
	}
	delete(s.signingConfigs, id)
	s.changedLocked(index)
	return true
}

// FunctionCodeSigningConfig returns the ID of the configuration attached to function fn.
func (s *Store) FunctionCodeSigningConfig(fn string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.functionSigning[fn]
	return id, ok
}

// FunctionsByCodeSigningConfig returns the functions configuration id is attached to, sorted.
func (s *Store) FunctionsByCodeSigningConfig(id string) []string {
	s.mu.RLock()
	var out []string
	for fn, c := range s.functionSigning {
		if c == id {
			out = append(out, fn)
		}
	}
	s.mu.RUnlock()
	sort.Strings(out)
	return out
}

// PutFunctionCodeSigningConfig attaches configuration id to function fn (FSM only).
func (s *Store) PutFunctionCodeSigningConfig(index uint64, fn, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.functionSigning[fn] = id
	s.changedLocked(index)
}

// DeleteFunctionCodeSigningConfig detaches function fn's configuration (FSM only) and reports
// whether it had one.
func (s *Store) DeleteFunctionCodeSigningConfig(index uint64, fn string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.functionSigning[fn]; !ok {
		return false
	}
	delete(s.functionSigning, fn)
	s.changedLocked(index)
	return true
}

func (s *Store) functionSigningCopy() map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]string, len(s.functionSigning))
	for k, v := range s.functionSigning {
		out[k] = v
	}
	return out
}

// restoreSigning indexes a snapshot's code signing configurations and attachments.
func restoreSigning(list []*structs.CodeSigningConfig, attached map[string]string) (map[string]*structs.CodeSigningConfig, map[string]string) {
	cs := make(map[string]*structs.CodeSigningConfig, len(list))
	for _, c := range list {
		cs[c.ID] = c
	}
	fs := make(map[string]string, len(attached))
	for k, v := range attached {
		fs[k] = v
	}
	return cs, fs
}
