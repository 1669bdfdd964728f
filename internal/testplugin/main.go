// Command testplugin is a minimal trigger plugin for the plugin host's tests: each time it is
// given mappings it delivers one batch per mapping, naming its own process and its greeting.
package main

import (
	"context"
	"encoding/json"
	"os"
	"sync"

	"github.com/lambdagw/gateway/plugins/sdk"
)

type source struct {
	mu       sync.Mutex
	host     sdk.Host
	greeting string
	statuses []sdk.MappingStatus
}

func (s *source) Schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "greeting", Type: sdk.TypeString, Required: true},
		{Name: "tags", Type: sdk.TypeListString},
	}}
}

func (s *source) Configure(_ context.Context, req sdk.ConfigureRequest, host sdk.Host) ([]sdk.Diagnostic, error) {
	var cfg struct {
		Greeting string `json:"greeting"`
	}
	if err := req.DecodeConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.Greeting == "bad" {
		return []sdk.Diagnostic{{Attribute: "greeting", Summary: "Unfriendly greeting", Detail: "say something nicer"}}, nil
	}
	s.mu.Lock()
	s.host, s.greeting = host, cfg.Greeting
	s.mu.Unlock()
	return nil, nil
}

func (s *source) SetMappings(ctx context.Context, ms []sdk.Mapping) ([]sdk.MappingStatus, error) {
	var st []sdk.MappingStatus
	for _, m := range ms {
		ev, _ := json.Marshal(map[string]any{"greeting": s.greeting, "pid": os.Getpid(), "source": m.Source})
		if _, err := s.host.Deliver(ctx, sdk.Batch{MappingUUID: m.UUID, Event: ev, ItemIDs: []string{"1"}}); err != nil {
			st = append(st, sdk.MappingStatus{UUID: m.UUID, State: sdk.StateError, Message: err.Error()})
			continue
		}
		st = append(st, sdk.MappingStatus{UUID: m.UUID, State: sdk.StateOK})
	}
	s.mu.Lock()
	s.statuses = st
	s.mu.Unlock()
	return st, nil
}

func (s *source) Status(context.Context) ([]sdk.MappingStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statuses, nil
}

func main() { sdk.Serve(sdk.ServeOpts{Trigger: &source{}}) }
