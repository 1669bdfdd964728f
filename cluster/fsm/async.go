package fsm

import (
	"encoding/json"
	"fmt"

	"github.com/lambdagw/gateway/internal/structs"
)

// PutEventInvokeConfig stores the asynchronous invocation configuration of a function's
// qualifier ("$LATEST", a published version or an alias, which must exist), replacing the
// qualifier's whole configuration (Lambda's PutFunctionEventInvokeConfig). Update refuses to
// create one (UpdateFunctionEventInvokeConfig of a configuration deleted meanwhile).
type PutEventInvokeConfig struct {
	Config *structs.EventInvokeConfig `json:"config"`
	Update bool                       `json:"update,omitempty"`
}

// DeleteEventInvokeConfig removes the asynchronous invocation configuration of a qualifier.
type DeleteEventInvokeConfig struct {
	Function  string `json:"function"`
	Qualifier string `json:"qualifier"`
}

func init() {
	registerCommand(PutEventInvokeConfigType, applyPutEventInvokeConfig)
	registerCommand(DeleteEventInvokeConfigType, applyDeleteEventInvokeConfig)
}

func applyPutEventInvokeConfig(f *FSM, index uint64, body []byte) any {
	var m PutEventInvokeConfig
	if err := json.Unmarshal(body, &m); err != nil || m.Config == nil {
		return fmt.Errorf("decoding PutEventInvokeConfig: %v", err)
	}
	c := m.Config
	if errs := c.Check(); len(errs) > 0 {
		return fmt.Errorf("%v: %w", errs[0], ErrInvalid)
	}
	if _, ok := f.state.Function(c.Function); !ok {
		return fmt.Errorf("function %s: %w", c.Function, ErrNotFound)
	}
	if c.Qualifier == "" {
		return fmt.Errorf("the configuration of %s names no qualifier: %w", c.Function, ErrInvalid)
	}
	if q := c.Qualifier; q != structs.LatestVersion {
		_, isVersion := f.state.Version(c.Function, q)
		_, isAlias := f.state.Alias(c.Function, q)
		if !isVersion && !isAlias {
			return fmt.Errorf("qualifier %s of function %s: %w", q, c.Function, ErrNotFound)
		}
	}
	if _, exists := f.state.EventInvokeConfig(c.Function, c.Qualifier); m.Update && !exists {
		return fmt.Errorf("asynchronous invocation configuration of %s:%s: %w", c.Function, c.Qualifier, ErrNotFound)
	}
	f.state.PutEventInvokeConfig(index, c)
	stored, _ := f.state.EventInvokeConfig(c.Function, c.Qualifier)
	return stored
}

func applyDeleteEventInvokeConfig(f *FSM, index uint64, body []byte) any {
	var m DeleteEventInvokeConfig
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("decoding DeleteEventInvokeConfig: %v", err)
	}
	if !f.state.DeleteEventInvokeConfig(index, m.Function, m.Qualifier) {
		return fmt.Errorf("asynchronous invocation configuration of %s:%s: %w", m.Function, m.Qualifier, ErrNotFound)
	}
	return nil
}
