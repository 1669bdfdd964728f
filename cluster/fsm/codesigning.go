package fsm

import (
	"encoding/json"
	"fmt"

	"github.com/lambdagw/gateway/internal/structs"
)

// PutCodeSigningConfig stores a code signing configuration. Create refuses to replace one of
// the same ID, Update to create one. A configuration with a name has the ID its name gives.
type PutCodeSigningConfig struct {
	Config *structs.CodeSigningConfig `json:"config"`
	Create bool                       `json:"create,omitempty"`
	Update bool                       `json:"update,omitempty"`
}

// DeleteCodeSigningConfig removes a code signing configuration no function uses.
type DeleteCodeSigningConfig struct {
	ID string `json:"id"`
}

// PutFunctionCodeSigningConfig attaches a configuration (which must exist) to a function
// (which must exist), replacing the one it had.
type PutFunctionCodeSigningConfig struct {
	Function string `json:"function"`
	Config   string `json:"config"`
}

// DeleteFunctionCodeSigningConfig detaches a function's configuration.
type DeleteFunctionCodeSigningConfig struct {
	Function string `json:"function"`
}

func init() {
	registerCommand(PutCodeSigningConfigType, applyPutCodeSigningConfig)
	registerCommand(DeleteCodeSigningConfigType, applyDeleteCodeSigningConfig)
	registerCommand(PutFunctionCodeSigningConfigType, applyPutFunctionCodeSigningConfig)
	registerCommand(DeleteFunctionCodeSigningConfigType, applyDeleteFunctionCodeSigningConfig)
}

func applyPutCodeSigningConfig(f *FSM, index uint64, body []byte) any {
	var m PutCodeSigningConfig
	if err := json.Unmarshal(body, &m); err != nil || m.Config == nil {
		return fmt.Errorf("decoding PutCodeSigningConfig: %v", err)
	}
	c := m.Config
	if errs := c.Check(); len(errs) > 0 {
		return fmt.Errorf("%v: %w", errs[0], ErrInvalid)
	}
	if c.ID == "" || (c.Name != "" && c.ID != structs.CodeSigningConfigID(c.Name)) {
		return fmt.Errorf("code signing configuration %q (name %q) has not the ID its name gives: %w", c.ID, c.Name, ErrInvalid)
	}
	_, exists := f.state.CodeSigningConfig(c.ID)
	switch {
	case m.Create && exists:
		return fmt.Errorf("code signing configuration %s: %w", c.ID, ErrExists)
	case m.Update && !exists:
		return fmt.Errorf("code signing configuration %s: %w", c.ID, ErrNotFound)
	}
	f.state.PutCodeSigningConfig(index, c)
	stored, _ := f.state.CodeSigningConfig(c.ID)
	return stored
}

func applyDeleteCodeSigningConfig(f *FSM, index uint64, body []byte) any {
	var m DeleteCodeSigningConfig
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteCodeSigningConfig: %v", err)
	}
	if fns := f.state.FunctionsByCodeSigningConfig(m.ID); len(fns) > 0 {
		return fmt.Errorf("code signing configuration %s is used by function %s: %w", m.ID, fns[0], ErrConflict)
	}
	if !f.state.DeleteCodeSigningConfig(index, m.ID) {
		return fmt.Errorf("code signing configuration %s: %w", m.ID, ErrNotFound)
	}
	return nil
}

func applyPutFunctionCodeSigningConfig(f *FSM, index uint64, body []byte) any {
	var m PutFunctionCodeSigningConfig
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding PutFunctionCodeSigningConfig: %v", err)
	}
	if _, ok := f.state.Function(m.Function); !ok {
		return fmt.Errorf("function %s: %w", m.Function, ErrNotFound)
	}
	if _, ok := f.state.CodeSigningConfig(m.Config); !ok {
		return fmt.Errorf("code signing configuration %s: %w", m.Config, ErrNotFound)
	}
	f.state.PutFunctionCodeSigningConfig(index, m.Function, m.Config)
	return nil
}

func applyDeleteFunctionCodeSigningConfig(f *FSM, index uint64, body []byte) any {
	var m DeleteFunctionCodeSigningConfig
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteFunctionCodeSigningConfig: %v", err)
	}
	if !f.state.DeleteFunctionCodeSigningConfig(index, m.Function) {
		return fmt.Errorf("code signing configuration of function %s: %w", m.Function, ErrNotFound)
	}
	return nil
}
