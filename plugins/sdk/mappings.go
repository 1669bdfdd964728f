package sdk

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// Runner is a TriggerSource's work for one mapping, as a MappingSet keeps it.
type Runner interface {
	// Start sets the mapping up, bounded by setup, and leaves its work running under parent
	// until Stop. It returns once the first attempt at setting up is over, whatever came of it:
	// a runner that cannot set up yet keeps trying in the background and says so in Status.
	Start(setup, parent context.Context)
	// Stop asks the work to end; Wait returns once it has ended.
	Stop()
	Wait()
	// Status reports the mapping's state.
	Status() MappingStatus
}

// MappingSet keeps one Runner per mapping for a TriggerSource's SetMappings, Status and Close:
// a mapping that changed gets a new runner, one that is gone is stopped, one that is the same
// keeps running undisturbed. It does no locking: the source calls it under its own lock, which
// its runners must not take.
type MappingSet[R Runner] struct {
	running map[string]mapped[R] // by mapping UUID
	order   []string             // mapping UUIDs in the order of the last Set
}

type mapped[R Runner] struct {
	m Mapping
	r R
}

// Set makes the running set match mappings. It stops the runners of mappings that are gone or
// changed and waits until they have stopped, then starts the new ones (newRunner) all at once,
// each one's set-up bounded by setupTimeout so that a backend that is down does not hold the
// call for long, and returns each mapping's status in the order given.
func (s *MappingSet[R]) Set(ctx, parent context.Context, mappings []Mapping, setupTimeout time.Duration, newRunner func(Mapping) R) ([]MappingStatus, error) {
	want := make(map[string]Mapping, len(mappings))
	for _, m := range mappings {
		if _, dup := want[m.UUID]; dup {
			return nil, fmt.Errorf("mapping %s is given twice", m.UUID)
		}
		want[m.UUID] = m
	}
	var stopping []R
	for id, e := range s.running {
		if m, ok := want[id]; !ok || !reflect.DeepEqual(m, e.m) {
			stopping = append(stopping, e.r)
			delete(s.running, id)
		}
	}
	stopRunners(stopping)

	if s.running == nil {
		s.running = map[string]mapped[R]{}
	}
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	var wg sync.WaitGroup
	s.order = s.order[:0]
	for _, m := range mappings {
		s.order = append(s.order, m.UUID)
		if _, ok := s.running[m.UUID]; ok {
			continue
		}
		r := newRunner(m)
		s.running[m.UUID] = mapped[R]{m: m, r: r}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Start(sctx, parent)
		}()
	}
	wg.Wait()
	return s.Status(), nil
}

// Status reports each mapping of the last Set, in its order.
func (s *MappingSet[R]) Status() []MappingStatus {
	out := make([]MappingStatus, 0, len(s.order))
	for _, id := range s.order {
		if e, ok := s.running[id]; ok {
			out = append(out, e.r.Status())
		}
	}
	return out
}

// Runner returns the runner of the mapping with uuid, if one is kept.
func (s *MappingSet[R]) Runner(uuid string) (R, bool) {
	e, ok := s.running[uuid]
	return e.r, ok
}

// Len is the number of runners kept.
func (s *MappingSet[R]) Len() int { return len(s.running) }

// StopAll stops every runner, waits until they have stopped, and empties the set.
func (s *MappingSet[R]) StopAll() {
	rs := make([]R, 0, len(s.running))
	for _, e := range s.running {
		rs = append(rs, e.r)
	}
	s.running, s.order = nil, nil
	stopRunners(rs)
}

// stopRunners stops them all at once, then waits for each.
func stopRunners[R Runner](rs []R) {
	for _, r := range rs {
		r.Stop()
	}
	for _, r := range rs {
		r.Wait()
	}
}
