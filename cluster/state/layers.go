package state

import (
	"sort"

	"github.com/lambdagw/gateway/internal/structs"
)

// LayerVersion returns version v of layer name.
func (s *Store) LayerVersion(name string, v int64) (*structs.LayerVersion, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, l := range s.layers[name] {
		if l.Version == v {
			return l, true
		}
	}
	return nil, false
}

// LayerVersions returns the versions of layer name, oldest first, or of every layer (sorted by
// name) when name is "".
func (s *Store) LayerVersions(name string) []*structs.LayerVersion {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if name != "" {
		return append([]*structs.LayerVersion(nil), s.layers[name]...)
	}
	names := make([]string, 0, len(s.layers))
	for n := range s.layers {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*structs.LayerVersion
	for _, n := range names {
		out = append(out, s.layers[n]...)
	}
	return out
}

// PublishLayerVersion stores l as its layer's next version (FSM only) and returns what was
// stored.
func (s *Store) PublishLayerVersion(index uint64, l *structs.LayerVersion) *structs.LayerVersion {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *l
	c.CompatibleRuntimes = append([]string(nil), l.CompatibleRuntimes...)
	c.CompatibleArchitectures = append([]string(nil), l.CompatibleArchitectures...)
	c.Policy = nil
	s.layerSeq[l.Name]++
	c.Version = s.layerSeq[l.Name]
	c.CreateIndex = index
	s.layers[l.Name] = append(s.layers[l.Name], &c)
	s.changedLocked(index)
	return &c
}

// DeleteLayerVersion removes version v of layer name (FSM only) and reports whether it existed.
// The layer's version numbers are kept: a new version never takes a deleted one's number.
func (s *Store) DeleteLayerVersion(index uint64, name string, v int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.layers[name]
	for i, l := range ls {
		if l.Version == v {
			rest := append(append([]*structs.LayerVersion(nil), ls[:i]...), ls[i+1:]...)
			if len(rest) == 0 {
				delete(s.layers, name)
			} else {
				s.layers[name] = rest
			}
			s.changedLocked(index)
			return true
		}
	}
	return false
}

// ReplaceLayerVersion replaces a stored layer version with l, same name and version (FSM only:
// its policy changed).
func (s *Store) ReplaceLayerVersion(index uint64, l *structs.LayerVersion) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.layers[l.Name]
	for i, cur := range ls {
		if cur.Version == l.Version {
			next := append([]*structs.LayerVersion(nil), ls...)
			next[i] = l
			s.layers[l.Name] = next
			s.changedLocked(index)
			return true
		}
	}
	return false
}
