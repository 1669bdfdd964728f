// Package reconcile makes an agent's functions match their HCL blocks: Plan compares a
// function's block with what the agent holds and returns the changes, in the order they must
// be made; Apply makes them. Layer blocks are planned first (PlanLayer), as the functions that
// name them take their latest versions. `gateway plan` prints a plan, `gateway apply` plans
// and applies.
//
// The agent is read and written through the Lambda-compatible API (Agent, which
// *api.Client satisfies); a plan reads everything it compares before anything is written.
package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// Agent is the part of the agent's API a reconciler reads and writes (*api.Client).
type Agent interface {
	GetFunction(ctx context.Context, name string) (*lambda.GetFunctionOutput, error)
	ListFunctions(ctx context.Context) ([]lambda.FunctionConfiguration, error)
	CreateFunction(ctx context.Context, in *lambda.CreateFunctionInput) (*lambda.FunctionConfiguration, error)
	UpdateFunctionCode(ctx context.Context, name string, in *lambda.UpdateFunctionCodeInput) (*lambda.FunctionConfiguration, error)
	UpdateFunctionConfiguration(ctx context.Context, name string, in *lambda.UpdateFunctionConfigurationInput) (*lambda.FunctionConfiguration, error)
	DeleteFunction(ctx context.Context, name string) error
	HasCode(ctx context.Context, sha256hex string) (bool, error)
	PublishVersion(ctx context.Context, name string, in *lambda.PublishVersionInput) (*lambda.FunctionConfiguration, error)

	GetFunctionConcurrency(ctx context.Context, name string) (*int, error)
	PutFunctionConcurrency(ctx context.Context, name string, n int) error
	DeleteFunctionConcurrency(ctx context.Context, name string) error

	ListAliases(ctx context.Context, name string) ([]lambda.AliasConfiguration, error)
	CreateAlias(ctx context.Context, name string, in *lambda.AliasInput) (*lambda.AliasConfiguration, error)
	UpdateAlias(ctx context.Context, name, alias string, in *lambda.AliasInput) (*lambda.AliasConfiguration, error)
	DeleteAlias(ctx context.Context, name, alias string) error

	ListProvisionedConcurrencyConfigs(ctx context.Context, name string) ([]lambda.ProvisionedConcurrencyConfig, error)
	GetProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string) (*lambda.ProvisionedConcurrencyConfig, error)
	PutProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string, n int) (*lambda.ProvisionedConcurrencyConfig, error)
	DeleteProvisionedConcurrencyConfig(ctx context.Context, name, qualifier string) error

	ListFunctionURLConfigs(ctx context.Context, name string) ([]lambda.FunctionURLConfig, error)
	CreateFunctionURLConfig(ctx context.Context, name, qualifier string, in *lambda.FunctionURLConfigInput) (*lambda.FunctionURLConfig, error)
	UpdateFunctionURLConfig(ctx context.Context, name, qualifier string, in *lambda.FunctionURLConfigInput) (*lambda.FunctionURLConfig, error)
	DeleteFunctionURLConfig(ctx context.Context, name, qualifier string) error

	ListFunctionEventInvokeConfigs(ctx context.Context, name string) ([]lambda.FunctionEventInvokeConfig, error)
	PutFunctionEventInvokeConfig(ctx context.Context, name, qualifier string, in *lambda.EventInvokeConfigInput) (*lambda.FunctionEventInvokeConfig, error)
	DeleteFunctionEventInvokeConfig(ctx context.Context, name, qualifier string) error

	ListTriggers(ctx context.Context, fn string) ([]*structs.Trigger, error)
	PutTrigger(ctx context.Context, t *structs.Trigger) (*structs.Trigger, error)
	DeleteTrigger(ctx context.Context, fn, name string) error

	ListLayerVersions(ctx context.Context, name string) ([]lambda.LayerVersionsListItem, error)
	GetLayerVersion(ctx context.Context, name string, version int64) (*lambda.LayerVersionOutput, error)
	PublishLayerVersion(ctx context.Context, name string, in *lambda.PublishLayerVersionInput) (*lambda.LayerVersionOutput, error)

	CodeSigningAgent
}

// Kind is what a change touches.
type Kind string

// The kinds of change, in the order a function's changes are made (a layer's before every
// function's).
const (
	Layer        Kind = "layer"         // a new version of a layer block (Change.Layer)
	Create       Kind = "create"        // the function does not exist yet
	UpdateCode   Kind = "update-code"   // the code's hash differs
	UpdateConfig Kind = "update-config" // configuration attributes differ
	Publish      Kind = "publish"       // a new version, when the block publishes and the function changed
	Reserved     Kind = "reserved-concurrency"
	Alias        Kind = "alias"
	Provisioned  Kind = "provisioned" // a configuration, or the wait for its environments
	URL          Kind = "url"
	Async        Kind = "async" // an event invoke configuration (an async block)
	Trigger      Kind = "trigger"
	Delete       Kind = "delete" // a function no file declares (Prune)
)

// Change is one step of a plan.
type Change struct {
	// Function is the function the change is to; Layer the layer block instead, for Kind Layer.
	Function string
	Layer    string
	Kind     Kind
	// Text is what plan says apply would do, e.g. "code to update (1.2 MB zip to upload)";
	// empty for a step only apply reports (the wait for provisioned environments).
	Text string
	// apply makes the change and says what it did: the agent's answers (a version's number, a
	// URL's address) are known only then.
	apply func(ctx context.Context, a Agent, progress func(string)) (string, error)
}

// Lines are the changes' texts, as plan shows them.
func Lines(changes []Change) []string {
	var out []string
	for _, c := range changes {
		if c.Text != "" {
			out = append(out, c.Text)
		}
	}
	return out
}

// subject names what the change is to: the function, or "layer NAME".
func (c *Change) subject() string {
	if c.Layer != "" {
		return "layer " + c.Layer
	}
	return c.Function
}

// Error is a function (or, with Layer set, a layer block) whose plan or apply failed: Done is
// what apply did before it stopped. Its text names the function or layer, what was done and
// what failed.
type Error struct {
	Function string
	Layer    string
	Done     []string
	Err      error
}

func (e *Error) Error() string {
	name := e.Function
	if e.Layer != "" {
		name = "layer " + e.Layer
	}
	if len(e.Done) == 0 {
		return name + ": " + e.Err.Error()
	}
	return name + ": " + strings.Join(e.Done, "; ") + ", but then: " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Options change what a reconciler shows.
type Options struct {
	// ShowSensitive shows environment variables' values in changes (hidden by default: they
	// often hold secrets).
	ShowSensitive bool
}

// Reconciler plans and applies changes to one agent. It packages each code folder once, as
// functions often share one, and remembers the layer blocks it planned, whose versions the
// functions' layer.NAME resolve to; it is not safe for concurrent use.
type Reconciler struct {
	agent  Agent
	opts   Options
	pkgs   map[string]*codepkg.Package
	layers map[string]*layerState
}

// New returns a reconciler of the agent's functions.
func New(agent Agent, opts Options) *Reconciler {
	return &Reconciler{agent: agent, opts: opts, pkgs: map[string]*codepkg.Package{}, layers: map[string]*layerState{}}
}

// Plan compares fn's block with the agent's function and returns the changes that make them
// equal, in the order Apply must make them; none when they are equal. It writes nothing.
// Errors are *Error.
func (r *Reconciler) Plan(ctx context.Context, fn *config.Function) ([]Change, error) {
	changes, err := r.plan(ctx, fn)
	if err != nil {
		return nil, &Error{Function: fn.Name, Err: err}
	}
	return changes, nil
}

// Apply makes the changes in order and returns what each did, e.g. "version 3 published".
// progress gets a line while a change is under way (upload progress, the wait for provisioned
// environments), with the function's name (or "layer NAME"). Apply stops at the first change
// that fails, with an *Error naming its function or layer and what was done for it before.
func (r *Reconciler) Apply(ctx context.Context, changes []Change, progress func(function, line string)) ([]string, error) {
	var all, done []string
	for i, c := range changes {
		if i > 0 && c.subject() != changes[i-1].subject() {
			done = nil
		}
		if c.apply == nil {
			// Only PlanLayer, Plan and Prune make changes that can be applied.
			return all, &Error{Function: c.Function, Layer: c.Layer, Done: done, Err: fmt.Errorf("change %q (%s) was not planned", c.Text, c.Kind)}
		}
		line, err := c.apply(ctx, r.agent, func(s string) {
			if progress != nil {
				progress(c.subject(), s)
			}
		})
		if err != nil {
			return all, &Error{Function: c.Function, Layer: c.Layer, Done: done, Err: err}
		}
		all, done = append(all, line), append(done, line)
	}
	return all, nil
}

// Prune returns the deletion of every function of the agent that none of fns declares, by
// name. Layers no file declares any more are left alone: their versions are immutable and
// functions (of these files or not) may still name them by ARN.
func (r *Reconciler) Prune(ctx context.Context, fns []*config.Function) ([]Change, error) {
	declared := map[string]bool{}
	for _, fn := range fns {
		declared[fn.Name] = true
	}
	all, err := r.agent.ListFunctions(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the agent's functions: %w", err)
	}
	var out []Change
	for _, f := range all {
		if declared[f.FunctionName] {
			continue
		}
		name := f.FunctionName
		out = append(out, Change{Function: name, Kind: Delete, Text: "to delete (no file declares it)",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.DeleteFunction(ctx, name); err != nil {
					return "", fmt.Errorf("deleting: %w", err)
				}
				return "deleted (no file declares it)", nil
			}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	return out, nil
}

// state is what the agent holds of a function besides its configuration; a function that
// does not exist yet has none of it.
type state struct {
	reserved    *int
	aliases     []lambda.AliasConfiguration
	provisioned []lambda.ProvisionedConcurrencyConfig
	urls        []lambda.FunctionURLConfig
	asyncs      []lambda.FunctionEventInvokeConfig
	triggers    []*structs.Trigger
}

func (r *Reconciler) read(ctx context.Context, name string) (state, error) {
	var st state
	var err error
	if st.reserved, err = r.agent.GetFunctionConcurrency(ctx, name); err != nil {
		return st, fmt.Errorf("reading the reserved concurrency: %w", err)
	}
	if st.aliases, err = r.agent.ListAliases(ctx, name); err != nil {
		return st, fmt.Errorf("listing aliases: %w", err)
	}
	if st.provisioned, err = r.agent.ListProvisionedConcurrencyConfigs(ctx, name); err != nil {
		return st, fmt.Errorf("listing provisioned concurrency: %w", err)
	}
	if st.urls, err = r.agent.ListFunctionURLConfigs(ctx, name); err != nil {
		return st, fmt.Errorf("listing URLs: %w", err)
	}
	if st.asyncs, err = r.agent.ListFunctionEventInvokeConfigs(ctx, name); err != nil {
		return st, fmt.Errorf("listing event invoke configurations: %w", err)
	}
	if st.triggers, err = r.agent.ListTriggers(ctx, name); err != nil {
		return st, fmt.Errorf("listing triggers: %w", err)
	}
	return st, nil
}

func (r *Reconciler) pkg(path string) (*codepkg.Package, error) {
	if p := r.pkgs[path]; p != nil {
		return p, nil
	}
	p, err := codepkg.Build(path)
	if err != nil {
		return nil, err
	}
	r.pkgs[path] = p
	return p, nil
}

// fnPkg is a function's code package: its zip, signed with its code_signature when it has one.
func (r *Reconciler) fnPkg(fn *config.Function) (*codepkg.Package, error) {
	p, err := r.pkg(fn.Code)
	if err != nil || fn.CodeSignature == "" {
		return p, err
	}
	key := fn.Code + "\x00" + fn.CodeSignature
	if sp := r.pkgs[key]; sp != nil {
		return sp, nil
	}
	sp, err := signedPkg(p, fn.CodeSignature)
	if err != nil {
		return nil, err
	}
	r.pkgs[key] = sp
	return sp, nil
}

func (r *Reconciler) plan(ctx context.Context, fn *config.Function) ([]Change, error) {
	var pkg *codepkg.Package
	if !fn.IsImage() {
		p, err := r.fnPkg(fn)
		if err != nil {
			return nil, err
		}
		pkg = p
	}
	layers, err := r.functionLayers(fn)
	if err != nil {
		return nil, err
	}
	cur, err := r.agent.GetFunction(ctx, fn.Name)
	var le *lambda.Error
	isNew := errors.As(err, &le) && le.Type == "ResourceNotFoundException"
	if err != nil && !isNew {
		return nil, fmt.Errorf("reading the function: %w", err)
	}
	var changes []Change
	var st state
	switch {
	case isNew && fn.IsImage():
		changes = append(changes, createImageChange(fn))
	case isNew:
		changes = append(changes, createChange(fn, pkg, layers))
	case fn.IsImage() != (cur.Configuration.PackageType == structs.PackageImage):
		// As Lambda: a function's package type is set when it is created.
		return nil, fmt.Errorf("the function is a %s function on the agent and a %s one in the file: a package type cannot change; delete the function (or rename it) to change it",
			cmp.Or(cur.Configuration.PackageType, structs.PackageZip), cmp.Or(fn.PackageType, structs.PackageZip))
	default:
		// The code signing configuration first: new code is checked under the one attached.
		csc, err := r.agent.GetFunctionCodeSigningConfig(ctx, fn.Name)
		if err != nil {
			return nil, fmt.Errorf("reading the code signing config: %w", err)
		}
		changes = append(changes, signingChange(fn, csc)...)
		changes = append(changes, functionChanges(cur, fn, pkg, layers, r.opts.ShowSensitive)...)
		if st, err = r.read(ctx, fn.Name); err != nil {
			return nil, err
		}
	}
	// A version is published, and provisioned environments awaited, only when the function
	// itself changed.
	changed := len(changes) > 0
	if fn.Publish && changed {
		changes = append(changes, publishChange(fn.Name, isNew))
	}
	changes = append(changes, reservedChanges(fn, st.reserved)...)
	aliases := aliasChanges(fn, st.aliases)
	changes = append(changes, aliases...)
	changes = append(changes, provisionedChanges(fn, st.provisioned, changed || len(aliases) > 0)...)
	changes = append(changes, urlChanges(fn, st.urls)...)
	// After the versions and aliases they name; before the deletion of the aliases they were on.
	asyncs, err := asyncChanges(fn, st.asyncs)
	if err != nil {
		return nil, err
	}
	changes = append(changes, asyncs...)
	// Triggers come last: the versions and aliases they name exist by then, and provisioned
	// environments are ready for their first batches. Aliases the file dropped go after the
	// triggers, which may have named them until then.
	changes = append(changes, triggerChanges(fn, st.triggers)...)
	changes = append(changes, aliasDeletions(fn, st.aliases)...)
	return changes, nil
}
