// Command testplugin is a minimal plugin for the plugin host's and the agent's tests. As a
// trigger, each time it is given mappings it delivers one batch per mapping, naming its own
// process and its greeting. As an extension, it appends each telemetry event's type and
// record to telemetry.log in its data folder, and lets a function-URL request through only
// with the header x-allow: yes (else 401 with a message naming the function). Configured, it
// logs two lines through sdk.Logger: "configured" (module t) and "ready" (module t.setup),
// with a duration and a large count. It takes records (a destination "<plugin>:<target>"),
// appending "target key data" lines to records.log in its data folder, and refuses those for
// a target named in the file "refuse" there.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// logger is made before sdk.Serve, which then points os.Stderr elsewhere.
var logger = sdk.Logger().Named("t")

type source struct {
	mu       sync.Mutex
	host     sdk.Host
	greeting string
	dataDir  string
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
	s.host, s.greeting, s.dataDir = host, cfg.Greeting, req.HostInfo["data_dir"]
	s.mu.Unlock()
	logger.Info("configured", "poll", 1500*time.Millisecond, "records", 2000000, "greeting", cfg.Greeting)
	logger.Named("setup").Debug("ready", "took", 3*time.Second)
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

func (s *source) AcceptRecord(_ context.Context, r sdk.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if refused, _ := os.ReadFile(filepath.Join(s.dataDir, "refuse")); strings.TrimSpace(string(refused)) == r.Target {
		return fmt.Errorf("target %s refuses records", r.Target)
	}
	f, err := os.OpenFile(filepath.Join(s.dataDir, "records.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s %s %s\n", r.Target, r.Key, r.Data)
	return err
}

type extension struct {
	mu  sync.Mutex
	log *os.File
}

func (e *extension) Schema() sdk.Schema { return (&source{}).Schema() }

func (e *extension) Configure(_ context.Context, req sdk.ConfigureRequest) ([]sdk.Diagnostic, error) {
	f, err := os.OpenFile(filepath.Join(req.HostInfo["data_dir"], "telemetry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	e.log = f
	return nil, nil
}

func (e *extension) Capabilities() sdk.Capabilities {
	return sdk.Capabilities{Telemetry: true, Authorizer: true}
}

func (e *extension) Telemetry(_ context.Context, ev sdk.TelemetryEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(e.log, "%s %s %s %s\n", ev.Type, ev.Function, ev.RequestID, ev.Record)
}

func (e *extension) Authorize(_ context.Context, req sdk.AuthorizeRequest) (sdk.AuthorizeResponse, error) {
	if req.Headers["x-allow"] == "yes" {
		return sdk.AuthorizeResponse{Allow: true}, nil
	}
	return sdk.AuthorizeResponse{Status: 401, Message: "no x-allow header for " + req.Function}, nil
}

func main() { sdk.Serve(sdk.ServeOpts{Trigger: &source{}, Extension: &extension{}}) }
