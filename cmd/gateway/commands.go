package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/internal/agent"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/sandbox/libcontainer"
)

// flagSet makes a flag set whose usage is the command's help.
func flagSet(name string, ui cli.Ui, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { ui.Error(strings.TrimSpace(help)) }
	return fs
}

func parse(fs *flag.FlagSet, ui cli.Ui, args []string) bool {
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			ui.Error(err.Error())
		}
		fs.Usage()
		return false
	}
	return true
}

// apiFlags are the flags of the commands that talk to an agent: where it is, the CA its
// certificate is checked against, and the access key to sign requests with when the agent
// has access_key blocks.
type apiFlags struct {
	address, caCert, keyID, secret, region *string
}

// apiFlagsHelp documents apiFlags in each command's help.
const apiFlagsHelp = `  -address URL             the agent (default $GATEWAY_ADDR or http://127.0.0.1:9500);
                           https://... for an agent with http { tls { ... } }
  -ca-cert FILE            the PEM CA certificate(s) that signed the agent's certificate
                           (default $GATEWAY_CACERT; else the system's roots)
  -access-key-id ID        sign requests (AWS Signature V4) with this access key
                           (default $AWS_ACCESS_KEY_ID); needed when the agent has access keys
  -secret-access-key KEY   the key's secret (default $AWS_SECRET_ACCESS_KEY)
  -region R                the region to sign for (default $AWS_REGION or us-east-1)`

func addAPIFlags(fs *flag.FlagSet) *apiFlags {
	return &apiFlags{
		address: fs.String("address", "", ""),
		caCert:  fs.String("ca-cert", "", ""),
		keyID:   fs.String("access-key-id", "", ""),
		secret:  fs.String("secret-access-key", "", ""),
		region:  fs.String("region", "", ""),
	}
}

// credentials are the flags' access key, else the AWS environment's; nil when neither has one.
func (f *apiFlags) credentials() *api.Credentials {
	creds := api.CredentialsFromEnv()
	if *f.keyID != "" || *f.secret != "" {
		creds = &api.Credentials{AccessKeyID: *f.keyID, SecretAccessKey: *f.secret}
		if env := api.CredentialsFromEnv(); env != nil {
			creds.Region = env.Region
		}
	}
	if creds != nil && *f.region != "" {
		creds.Region = *f.region
	}
	return creds
}

// connect makes the API client the flags describe and a context that SIGINT or SIGTERM ends;
// ok is false, the error shown, when the address or the credentials are unusable.
func connect(ui cli.Ui, f *apiFlags) (*api.Client, context.Context, context.CancelFunc, bool) {
	client, err := api.New(api.Config{Address: *f.address, CACert: *f.caCert, Credentials: f.credentials()})
	if err != nil {
		ui.Error(err.Error())
		return nil, nil, nil, false
	}
	ctx, stop := signalContext()
	return client, ctx, stop, true
}

// errorText is how the CLI shows an error of a request: when no agent answered, where it
// looked and how to point it elsewhere.
func errorText(err error) string {
	var ue *api.UnreachableError
	if errors.As(err, &ue) {
		return "Error: " + ue.Error() + ". Start one with `make run` or `gateway agent -dev`, " +
			"or point at another with -address or GATEWAY_ADDR."
	}
	return err.Error()
}

// unreachable says whether err is a request no agent answered.
func unreachable(err error) bool {
	var ue *api.UnreachableError
	return errors.As(err, &ue)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// ---- agent ----

type agentCommand struct{ ui cli.Ui }

func (c *agentCommand) Synopsis() string { return "Run a gateway node" }
func (c *agentCommand) Help() string {
	return `Usage: gateway agent -config FILE | -dev [-config FILE]

  Runs a gateway node until SIGINT or SIGTERM, then drains: invocations in flight
  finish, every execution environment is shut down.

  -config FILE    the agent's HCL configuration
  -dev            a throwaway single node on 127.0.0.1:9500 with its data in a temporary
                  directory (with -config: that file's settings, and a temporary data_dir
                  when it sets none); falls back to the process driver (no isolation) when
                  libcontainer cannot run here. It refuses an HTTP address other machines
                  can reach unless the file has access_key blocks.
  -data-dir DIR   with -dev: keep the data in DIR instead`
}

func (c *agentCommand) Run(args []string) int {
	fs := flagSet("agent", c.ui, c.Help())
	confPath := fs.String("config", "", "")
	dev := fs.Bool("dev", false, "")
	dataDir := fs.String("data-dir", "", "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	var cfg *config.Agent
	var warnings string
	switch {
	case *confPath != "":
		a, files, diags := config.LoadAgent(*confPath)
		if len(diags) > 0 {
			var b bytes.Buffer
			_ = files.WriteDiagnostics(&b, diags)
			if diags.HasErrors() {
				c.ui.Error(strings.TrimRight(b.String(), "\n"))
				return 1
			}
			warnings = strings.TrimRight(b.String(), "\n")
		}
		cfg = a
	case *dev:
		cfg = config.DevAgent("")
	default:
		fs.Usage()
		return 1
	}
	if cfg.Sandbox.Driver == "libcontainer" {
		// Returns only when there is nothing to do, or on failure (then containers still start,
		// each sealing its own copy of the binary, which is slower). What follows runs once, in
		// the sealed process.
		if err := libcontainer.SealSelf(); err != nil {
			c.ui.Warn("gateway: running from an unsealed binary: " + err.Error())
		}
	}
	if warnings != "" {
		c.ui.Warn(warnings)
	}
	if *dev && (*dataDir != "" || cfg.DataDir == "") {
		dir := *dataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "gateway-dev-")
			if err != nil {
				c.ui.Error(err.Error())
				return 1
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		cfg.DataDir = dir
	}
	ctx, stop := signalContext()
	defer stop()
	if err := agent.Run(ctx, cfg, agent.Options{Dev: *dev}); err != nil {
		c.ui.Error("agent: " + err.Error())
		return 1
	}
	return 0
}

// ---- validate ----

type validateCommand struct{ ui cli.Ui }

func (c *validateCommand) Synopsis() string { return "Check function files without an agent" }
func (c *validateCommand) Help() string {
	return `Usage: gateway validate [-var N=V] [-var-file F] FILE|DIR...

  Checks function files (and packs each function's code) without contacting an agent.

  -var N=V       set variable N (repeatable; also GATEWAY_VAR_N in the environment)
  -var-file F    set variables from an HCL file of N = value lines (repeatable)`
}

func (c *validateCommand) Run(args []string) int {
	fs := flagSet("validate", c.ui, c.Help())
	inputs := varFlags(fs)
	if !parse(fs, c.ui, args) || fs.NArg() == 0 {
		if fs.NArg() == 0 {
			fs.Usage()
		}
		return 1
	}
	fns, ok := loadFunctions(c.ui, inputs(), fs.Args())
	if !ok {
		return 1
	}
	for _, fn := range fns {
		if _, err := codepkg.Build(fn.Code); err != nil {
			c.ui.Error(fmt.Sprintf("%s: function %q: %v", fn.DeclRange, fn.Name, err))
			return 1
		}
	}
	c.ui.Output(fmt.Sprintf("The configuration is valid (%d functions).", len(fns)))
	return 0
}

// varFlags adds -var NAME=VALUE and -var-file FILE (both repeatable) to fs and returns the
// inputs they gave, once parsed.
func varFlags(fs *flag.FlagSet) func() config.Inputs {
	in := config.Inputs{Vars: map[string]string{}}
	fs.Func("var", "", func(s string) error {
		name, value, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return fmt.Errorf("-var %q: write -var NAME=VALUE", s)
		}
		in.Vars[name] = value
		return nil
	})
	fs.Func("var-file", "", func(s string) error { in.VarFiles = append(in.VarFiles, s); return nil })
	return func() config.Inputs { return in }
}

func loadFunctions(ui cli.Ui, in config.Inputs, paths []string) ([]*config.Function, bool) {
	fns, files, diags := config.LoadFunctionsWith(in, paths...)
	if len(diags) > 0 {
		var b bytes.Buffer
		_ = files.WriteDiagnostics(&b, diags)
		ui.Error(strings.TrimRight(b.String(), "\n"))
	}
	return fns, !diags.HasErrors()
}

// ---- apply ----

type applyCommand struct{ ui cli.Ui }

func (c *applyCommand) Synopsis() string { return "Create or update functions from HCL files" }
func (c *applyCommand) Help() string {
	return `Usage: gateway apply [-address URL] [-prune] FILE|DIR...

  Makes the agent's functions match the files: creates missing ones, uploads code
  only when its hash changed, and updates configuration attributes that differ.
  A function's aliases, URL and triggers follow its blocks: those its file no
  longer declares are deleted. Triggers are applied last, once the versions and
  aliases they name exist.

  -prune                   also delete the agent's functions that no file declares
  -show-sensitive          show environment variables' values in what changed (hidden
                           by default: they often hold secrets)
  -var N=V                 set variable N (repeatable; also GATEWAY_VAR_N in the environment)
  -var-file F              set variables from an HCL file of N = value lines (repeatable)
` + apiFlagsHelp
}

func (c *applyCommand) Run(args []string) int { return runApply(c.ui, "apply", c.Help(), args, false) }

type planCommand struct{ ui cli.Ui }

func (c *planCommand) Synopsis() string { return "Show what apply would change" }
func (c *planCommand) Help() string {
	return `Usage: gateway plan [-address URL] [-prune] FILE|DIR...

  Compares the files with the agent's functions and prints, per function, what
  gateway apply would create, change (attribute by attribute), publish or delete,
  without changing anything.

  Exit status: 0 when nothing would change, 2 when something would (Terraform's
  -detailed-exitcode convention), 1 on an error.

  -prune                   also show the agent's functions no file declares (apply -prune
                           deletes them)
  -show-sensitive          show environment variables' values in the changes (hidden by
                           default, "~ KEY": they often hold secrets)
  -var N=V                 set variable N (repeatable; also GATEWAY_VAR_N in the environment)
  -var-file F              set variables from an HCL file of N = value lines (repeatable)
` + apiFlagsHelp
}

func (c *planCommand) Run(args []string) int { return runApply(c.ui, "plan", c.Help(), args, true) }

// runApply is apply, or with dry set plan: one walk over the files' functions (and, with
// -prune, the agent's undeclared ones) that either makes the changes or only reports them.
// Plan exits 2 when there are changes (Terraform's -detailed-exitcode); both exit 1 on errors.
func runApply(ui cli.Ui, name, help string, args []string, dry bool) int {
	fs := flagSet(name, ui, help)
	inputs := varFlags(fs)
	apiOpts := addAPIFlags(fs)
	prune := fs.Bool("prune", false, "")
	showSensitive := fs.Bool("show-sensitive", false, "")
	if !parse(fs, ui, args) {
		return 1
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 1
	}
	fns, ok := loadFunctions(ui, inputs(), fs.Args())
	if !ok {
		return 1
	}
	client, ctx, stop, ok := connect(ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	failed, changed := 0, 0
	// Functions often share a code folder: package each folder once.
	pkgs := map[string]*codepkg.Package{}
	for _, fn := range fns {
		progress := func(msg string) { ui.Output(fn.Name + ": " + msg) }
		msg, err := applyOne(ctx, client, fn, pkgs, dry, *showSensitive, progress)
		if unreachable(err) {
			// No agent: every other function would fail the same way.
			ui.Error(errorText(err))
			return 1
		}
		if err != nil {
			failed++
			ui.Error(fmt.Sprintf("%s: %v", fn.Name, err))
			continue
		}
		if msg != "unchanged" {
			changed++
		}
		ui.Output(fn.Name + ": " + msg)
	}
	unchanged := len(fns) - changed - failed
	deleted := 0
	if *prune {
		n, f := pruneFunctions(ctx, ui, client, fns, dry)
		deleted, failed = n, failed+f
	}
	if dry {
		ui.Output(fmt.Sprintf("Plan: %d to change, %d unchanged, %d to delete, %d failed.", changed, unchanged, deleted, failed))
	} else {
		ui.Output(fmt.Sprintf("Apply complete: %d changed, %d unchanged, %d deleted, %d failed.", changed, unchanged, deleted, failed))
	}
	switch {
	case failed > 0:
		return 1
	case dry && changed+deleted > 0:
		return 2
	}
	return 0
}

// pruneFunctions deletes (or, dry, lists) the agent's functions that none of fns declares, and
// returns how many it deleted and how many deletions failed.
func pruneFunctions(ctx context.Context, ui cli.Ui, client *api.Client, fns []*config.Function, dry bool) (changed, failed int) {
	declared := map[string]bool{}
	for _, fn := range fns {
		declared[fn.Name] = true
	}
	all, err := client.ListFunctions(ctx)
	if err != nil {
		ui.Error("listing the agent's functions: " + errorText(err))
		return 0, 1
	}
	for _, f := range all {
		if declared[f.FunctionName] {
			continue
		}
		if !dry {
			if err := client.DeleteFunction(ctx, f.FunctionName); err != nil {
				ui.Error(fmt.Sprintf("%s: deleting: %v", f.FunctionName, err))
				failed++
				continue
			}
		}
		ui.Output(f.FunctionName + ": " + verb(dry, "deleted (no file declares it)", "to delete (no file declares it)"))
		changed++
	}
	return changed, failed
}

func freezeOption(fn *config.Function) *lambda.GatewayOptions {
	if fn.FreezeDelay == nil {
		return nil
	}
	ms := int64(*fn.FreezeDelay / time.Millisecond)
	return &lambda.GatewayOptions{FreezeDelayMs: &ms}
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// applyOne brings one function in line with its block and says what it did.
// With dry set (gateway plan) it changes nothing and says what it would do.
//
// progress prints a line while it works: upload progress, and the wait for provisioned
// environments.
//
// Environment values are shown only with showSensitive: they often hold secrets.
func applyOne(ctx context.Context, client *api.Client, fn *config.Function, pkgs map[string]*codepkg.Package, dry, showSensitive bool, progress func(string)) (string, error) {
	pkg := pkgs[fn.Code]
	if pkg == nil {
		var err error
		if pkg, err = codepkg.Build(fn.Code); err != nil {
			return "", err
		}
		pkgs[fn.Code] = pkg
	}
	// The request carries the zip base64-encoded in JSON: about 4/3 of the zip's size.
	upload := api.WithUploadProgress(ctx, func(sent, total int64) {
		progress(fmt.Sprintf("uploading code: %s of the %s request sent (the %s zip, base64-encoded)", size(sent), size(total), size(pkg.Size)))
	})
	memory, timeout, storage := fn.MemoryMB, int(fn.Timeout/time.Second), fn.EphemeralStorageMB
	cur, err := client.GetFunction(ctx, fn.Name)
	var le *lambda.Error
	if errors.As(err, &le) && le.Type == "ResourceNotFoundException" && dry {
		return planNew(fn, pkg), nil
	}
	if errors.As(err, &le) && le.Type == "ResourceNotFoundException" {
		code, sent := codeFor(ctx, client, pkg)
		_, err := client.CreateFunction(upload, &lambda.CreateFunctionInput{
			FunctionName: fn.Name, Runtime: fn.Runtime, Handler: fn.Handler, Description: fn.Description,
			Code: code, MemorySize: &memory, Timeout: &timeout,
			Environment: &lambda.Environment{Variables: fn.Environment}, EphemeralStorage: &lambda.EphemeralStorage{Size: storage},
			GatewayOptions: freezeOption(fn),
		})
		if err != nil {
			return "", err
		}
		done := []string{fmt.Sprintf("created (code: %s zip %s)", size(pkg.Size), sent)}
		rest, err := applyVersionsAndURL(ctx, client, fn, true, false, progress)
		done = append(done, rest...)
		if err != nil {
			return "", fmt.Errorf("%s, but then: %w", strings.Join(done, "; "), err)
		}
		return strings.Join(done, "; "), nil
	}
	if err != nil {
		return "", err
	}
	var done []string
	if cur.Configuration.CodeSha256 != pkg.Base64Sha256() {
		sent := "to upload"
		if !dry {
			var code lambda.FunctionCode
			code, sent = codeFor(ctx, client, pkg)
			in := &lambda.UpdateFunctionCodeInput{ZipFile: code.ZipFile, GatewayCodeSha256: code.GatewayCodeSha256}
			if _, err := client.UpdateFunctionCode(upload, fn.Name, in); err != nil {
				return "", err
			}
		}
		done = append(done, verb(dry, fmt.Sprintf("code updated (%s zip %s)", size(pkg.Size), sent), fmt.Sprintf("code to update (%s zip %s)", size(pkg.Size), sent)))
	}
	in, diffs := configChanges(cur.Configuration, fn, showSensitive)
	if len(diffs) > 0 {
		if !dry {
			if _, err := client.UpdateFunctionConfiguration(ctx, fn.Name, in); err != nil {
				return "", err
			}
		}
		done = append(done, verb(dry, "configuration updated", "configuration to update")+" ("+strings.Join(diffs, ", ")+")")
	}
	rest, err := applyVersionsAndURL(ctx, client, fn, len(done) > 0, dry, progress)
	done = append(done, rest...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(done, "; "), err)
	}
	if len(done) == 0 {
		return "unchanged", nil
	}
	return strings.Join(done, "; "), nil
}

// codeFor is the Code of a create or update: a reference to the zip when the agent already
// holds it (functions sharing a code folder upload it once), else the zip itself; and the word
// for what was sent.
func codeFor(ctx context.Context, client *api.Client, pkg *codepkg.Package) (lambda.FunctionCode, string) {
	if has, err := client.HasCode(ctx, pkg.Sha256); err == nil && has {
		return lambda.FunctionCode{GatewayCodeSha256: pkg.Sha256}, "already on the agent"
	}
	return lambda.FunctionCode{ZipFile: pkg.Data}, "uploaded"
}

// configChanges compares the agent's configuration of a function with its block: the update
// that makes them equal, and one "attribute old -> new" text per difference (none when equal).
func configChanges(cc lambda.FunctionConfiguration, fn *config.Function, showSensitive bool) (*lambda.UpdateFunctionConfigurationInput, []string) {
	memory, timeout, storage := fn.MemoryMB, int(fn.Timeout/time.Second), fn.EphemeralStorageMB
	var diffs []string
	in := &lambda.UpdateFunctionConfigurationInput{}
	diff := func(attr string, old, new any) bool {
		if reflect.DeepEqual(old, new) {
			return false
		}
		diffs = append(diffs, fmt.Sprintf("%s %v -> %v", attr, old, new))
		return true
	}
	if diff("runtime", cc.Runtime, fn.Runtime) {
		in.Runtime = &fn.Runtime
	}
	if diff("handler", cc.Handler, fn.Handler) {
		in.Handler = &fn.Handler
	}
	if diff("description", cc.Description, fn.Description) {
		in.Description = &fn.Description
	}
	if diff("memory_mb", cc.MemorySize, memory) {
		in.MemorySize = &memory
	}
	if diff("timeout", cc.Timeout, timeout) {
		in.Timeout = &timeout
	}
	curStorage := 0
	if cc.EphemeralStorage != nil {
		curStorage = cc.EphemeralStorage.Size
	}
	if diff("ephemeral_storage_mb", curStorage, storage) {
		in.EphemeralStorage = &lambda.EphemeralStorage{Size: storage}
	}
	curEnv := map[string]string{}
	if cc.Environment != nil && cc.Environment.Variables != nil {
		curEnv = cc.Environment.Variables
	}
	if !reflect.DeepEqual(curEnv, fn.Environment) {
		diffs = append(diffs, "environment: "+envChanges(curEnv, fn.Environment, showSensitive))
		in.Environment = &lambda.Environment{Variables: fn.Environment}
	}
	var curDelay, newDelay any = "default", "default"
	if cc.GatewayOptions != nil && cc.GatewayOptions.FreezeDelayMs != nil {
		curDelay = time.Duration(*cc.GatewayOptions.FreezeDelayMs) * time.Millisecond
	}
	if fn.FreezeDelay != nil {
		newDelay = *fn.FreezeDelay
	}
	if diff("freeze_delay", curDelay, newDelay) {
		in.GatewayOptions = freezeOption(fn)
		if in.GatewayOptions == nil {
			in.GatewayOptions = &lambda.GatewayOptions{}
		}
	}
	return in, diffs
}

// applyVersionsAndURL runs after the function itself was created or updated (changed): it
// publishes a version when the file asks for it and something changed, makes the aliases match
// the file, then the URL (which may name an alias), then the triggers (which may too).
func applyVersionsAndURL(ctx context.Context, client *api.Client, fn *config.Function, changed, dry bool, progress func(string)) ([]string, error) {
	var done []string
	if fn.Publish && changed && dry {
		done = append(done, "a new version to publish")
	} else if fn.Publish && changed {
		v, err := client.PublishVersion(ctx, fn.Name, &lambda.PublishVersionInput{})
		if err != nil {
			return done, fmt.Errorf("publishing a version: %w", err)
		}
		done = append(done, "version "+v.Version+" published")
	}
	cur, err := client.GetFunctionConcurrency(ctx, fn.Name)
	if err != nil {
		return done, fmt.Errorf("reading the reserved concurrency: %w", err)
	}
	switch want := fn.ReservedConcurrency; {
	case want != nil && (cur == nil || *cur != *want):
		if !dry {
			if err := client.PutFunctionConcurrency(ctx, fn.Name, *want); err != nil {
				return done, fmt.Errorf("reserving concurrency: %w", err)
			}
		}
		done = append(done, fmt.Sprintf("reserved_concurrency %s -> %d", reservedText(cur), *want))
	case want == nil && cur != nil:
		if !dry {
			if err := client.DeleteFunctionConcurrency(ctx, fn.Name); err != nil {
				return done, fmt.Errorf("removing the reserved concurrency: %w", err)
			}
		}
		done = append(done, fmt.Sprintf("reserved_concurrency %d -> none", *cur))
	}
	aliasDone, err := applyAliases(ctx, client, fn, dry, false)
	done = append(done, aliasDone...)
	if err != nil {
		return done, err
	}
	provDone, err := applyProvisioned(ctx, client, fn, changed || len(aliasDone) > 0, dry, progress)
	done = append(done, provDone...)
	if err != nil {
		return done, err
	}
	urlDone, err := applyURL(ctx, client, fn, dry)
	if urlDone != "" {
		done = append(done, urlDone)
	}
	if err != nil {
		return done, err
	}
	// Triggers come last: the versions and aliases they name exist by now, and provisioned
	// environments are ready for their first batches.
	triggerDone, err := applyTriggers(ctx, client, fn, dry)
	done = append(done, triggerDone...)
	if err != nil {
		return done, err
	}
	// Aliases the file dropped go after the triggers, which may have named them until now.
	pruned, err := applyAliases(ctx, client, fn, dry, true)
	done = append(done, pruned...)
	return done, err
}

// applyTriggers makes the function's triggers match its trigger blocks: it creates the missing
// ones, replaces those whose settings differ, and deletes the triggers the file no longer has,
// as applyAliases does with aliases.
func applyTriggers(ctx context.Context, client *api.Client, fn *config.Function, dry bool) ([]string, error) {
	cur, err := client.ListTriggers(ctx, fn.Name)
	if err != nil {
		return nil, fmt.Errorf("listing triggers: %w", err)
	}
	have := map[string]*structs.Trigger{}
	for _, t := range cur {
		have[t.Name] = t
	}
	var done []string
	for _, blk := range fn.Triggers {
		want := blk.Trigger
		want.Function = fn.Name
		old, exists := have[want.Name]
		delete(have, want.Name)
		if exists && old.SameSettings(&want) {
			continue
		}
		if !dry {
			if _, err := client.PutTrigger(ctx, &want); err != nil {
				action := "creating"
				if exists {
					action = "updating"
				}
				return done, fmt.Errorf("%s trigger %s: %w", action, want.Name, err)
			}
		}
		if !exists {
			done = append(done, fmt.Sprintf("trigger %s %s (%s)", want.Name, verb(dry, "created", "to create"), triggerText(&want)))
			continue
		}
		done = append(done, fmt.Sprintf("trigger %s %s (%s)", want.Name, verb(dry, "updated", "to update"), strings.Join(triggerChanges(old, &want), ", ")))
	}
	gone := make([]string, 0, len(have))
	for name := range have {
		gone = append(gone, name)
	}
	sort.Strings(gone)
	for _, name := range gone {
		if !dry {
			if err := client.DeleteTrigger(ctx, fn.Name, name); err != nil {
				return done, fmt.Errorf("deleting trigger %s: %w", name, err)
			}
		}
		done = append(done, "trigger "+name+" "+verb(dry, "deleted", "to delete"))
	}
	return done, nil
}

// triggerText sums a trigger up: its plugin and source, the qualifier it delivers to, and
// whether it is disabled, e.g. "queue: orders -> live".
func triggerText(t *structs.Trigger) string {
	s := t.Plugin + ": " + t.Source
	if t.Qualifier != "" {
		s += " -> " + t.Qualifier
	}
	if !t.Enabled {
		s += ", disabled"
	}
	return s
}

// triggerChanges lists the settings that differ between two triggers, one "attribute old -> new"
// per difference, by the trigger block's attribute names.
func triggerChanges(old, new *structs.Trigger) []string {
	var diffs []string
	diff := func(attr, o, n string) {
		if o != n {
			diffs = append(diffs, fmt.Sprintf("%s %s -> %s", attr, o, n))
		}
	}
	or := func(s, empty string) string {
		if s == "" {
			return empty
		}
		return s
	}
	batch := func(n int) string {
		if n == 0 {
			return "default"
		}
		return strconv.Itoa(n)
	}
	age := func(d time.Duration) string {
		if d == 0 {
			return "none"
		}
		return d.String()
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "none"
		}
		return t.UTC().Format(time.RFC3339)
	}
	diff("plugin", old.Plugin, new.Plugin)
	diff("source", old.Source, new.Source)
	diff("qualifier", or(old.Qualifier, "none"), or(new.Qualifier, "none"))
	diff("batch_size", batch(old.BatchSize), batch(new.BatchSize))
	diff("batch_window", old.BatchWindow.String(), new.BatchWindow.String())
	diff("starting_position", or(old.StartingPosition, "default"), or(new.StartingPosition, "default"))
	diff("starting_position_timestamp", stamp(old.StartingPositionTimestamp), stamp(new.StartingPositionTimestamp))
	diff("maximum_retry_attempts", strconv.Itoa(old.MaximumRetryAttempts), strconv.Itoa(new.MaximumRetryAttempts))
	diff("maximum_record_age", age(old.MaximumRecordAge), age(new.MaximumRecordAge))
	diff("bisect_batch_on_function_error", strconv.FormatBool(old.BisectBatchOnFunctionError), strconv.FormatBool(new.BisectBatchOnFunctionError))
	diff("report_batch_item_failures", strconv.FormatBool(old.ReportBatchItemFailures), strconv.FormatBool(new.ReportBatchItemFailures))
	diff("enabled", strconv.FormatBool(old.Enabled), strconv.FormatBool(new.Enabled))
	if !reflect.DeepEqual(nonNil(old.Options), nonNil(new.Options)) {
		diffs = append(diffs, "options "+envDiff(old.Options, new.Options))
	}
	diff("on_failure", or(old.OnFailure, "none"), or(new.OnFailure, "none"))
	if len(diffs) == 0 && !old.SameSettings(new) {
		diffs = append(diffs, "settings")
	}
	return diffs
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// applyAliases makes the function's aliases match its alias blocks: it creates and updates
// them, or (prune) deletes the aliases the file no longer has (with their URLs).
func applyAliases(ctx context.Context, client *api.Client, fn *config.Function, dry, prune bool) ([]string, error) {
	cur, err := client.ListAliases(ctx, fn.Name)
	if err != nil {
		return nil, fmt.Errorf("listing aliases: %w", err)
	}
	have := map[string]lambda.AliasConfiguration{}
	for _, a := range cur {
		have[a.Name] = a
	}
	var done []string
	for _, a := range fn.Aliases {
		if prune {
			delete(have, a.Name)
			continue
		}
		desc := a.Description
		in := &lambda.AliasInput{Name: a.Name, FunctionVersion: a.Version, Description: &desc,
			RoutingConfig: &lambda.AliasRoutingConfiguration{AdditionalVersionWeights: a.Routing}}
		old, exists := have[a.Name]
		delete(have, a.Name)
		if !exists {
			if !dry {
				if _, err := client.CreateAlias(ctx, fn.Name, in); err != nil {
					return done, fmt.Errorf("creating alias %s: %w", a.Name, err)
				}
			}
			done = append(done, fmt.Sprintf("alias %s %s (-> %s%s)", a.Name, verb(dry, "created", "to create"), a.Version, routingText(a.Routing)))
			continue
		}
		var oldRouting map[string]float64
		if old.RoutingConfig != nil {
			oldRouting = old.RoutingConfig.AdditionalVersionWeights
		}
		if old.FunctionVersion == a.Version && old.Description == a.Description && routingText(oldRouting) == routingText(a.Routing) {
			continue
		}
		if !dry {
			if _, err := client.UpdateAlias(ctx, fn.Name, a.Name, in); err != nil {
				return done, fmt.Errorf("updating alias %s: %w", a.Name, err)
			}
		}
		done = append(done, fmt.Sprintf("alias %s %s (%s%s -> %s%s)", a.Name, verb(dry, "updated", "to update"), old.FunctionVersion, routingText(oldRouting), a.Version, routingText(a.Routing)))
	}
	if !prune {
		return done, nil
	}
	for name := range have {
		if !dry {
			if err := client.DeleteAlias(ctx, fn.Name, name); err != nil {
				return done, fmt.Errorf("deleting alias %s: %w", name, err)
			}
		}
		done = append(done, "alias "+name+" "+verb(dry, "deleted", "to delete"))
	}
	return done, nil
}

// verb is what apply says it did, or what plan says apply would do.
func verb(dry bool, did, would string) string {
	if dry {
		return would
	}
	return did
}

// planNew describes the creation of a function that does not exist yet.
func planNew(fn *config.Function, pkg *codepkg.Package) string {
	out := []string{fmt.Sprintf("to create (%s zip to upload)", size(pkg.Size))}
	if fn.ReservedConcurrency != nil {
		out = append(out, fmt.Sprintf("reserved_concurrency none -> %d", *fn.ReservedConcurrency))
	}
	if fn.Publish {
		out = append(out, "version 1 to publish")
	}
	for _, a := range fn.Aliases {
		out = append(out, fmt.Sprintf("alias %s to create (-> %s%s)", a.Name, a.Version, routingText(a.Routing)))
	}
	for _, p := range fn.Provisioned {
		out = append(out, fmt.Sprintf("provisioned_concurrency %s none -> %d", p.Qualifier, p.Count))
	}
	if fn.URL != nil {
		out = append(out, "URL to create")
	}
	for _, t := range fn.Triggers {
		out = append(out, fmt.Sprintf("trigger %s to create (%s)", t.Name, triggerText(&t.Trigger)))
	}
	return strings.Join(out, "; ")
}

// provisionedWait bounds how long apply waits for provisioned environments to finish Init.
const provisionedWait = 5 * time.Minute

// applyProvisioned makes the function's provisioned concurrency match its blocks, then waits
// until every configuration is READY when anything it covers changed (the function, an alias,
// or the configuration): apply returns with the environments initialised, as Lambda's
// deployment tools wait for them.
func applyProvisioned(ctx context.Context, client *api.Client, fn *config.Function, changed, dry bool, progress func(string)) ([]string, error) {
	cur, err := client.ListProvisionedConcurrencyConfigs(ctx, fn.Name)
	if err != nil {
		return nil, fmt.Errorf("listing provisioned concurrency: %w", err)
	}
	have := map[string]int{}
	for _, c := range cur {
		have[c.FunctionArn[strings.LastIndex(c.FunctionArn, ":")+1:]] = c.RequestedProvisionedConcurrentExecutions
	}
	var done []string
	for _, p := range fn.Provisioned {
		old, exists := have[p.Qualifier]
		delete(have, p.Qualifier)
		if exists && old == p.Count {
			continue
		}
		changed = true
		if !dry {
			if _, err := client.PutProvisionedConcurrencyConfig(ctx, fn.Name, p.Qualifier, p.Count); err != nil {
				return done, fmt.Errorf("setting provisioned concurrency of %s: %w", p.Qualifier, err)
			}
		}
		from := "none"
		if exists {
			from = strconv.Itoa(old)
		}
		done = append(done, fmt.Sprintf("provisioned_concurrency %s %s -> %d", p.Qualifier, from, p.Count))
	}
	for q, n := range have {
		if !dry {
			if err := client.DeleteProvisionedConcurrencyConfig(ctx, fn.Name, q); err != nil {
				return done, fmt.Errorf("removing provisioned concurrency of %s: %w", q, err)
			}
		}
		done = append(done, fmt.Sprintf("provisioned_concurrency %s %d -> none", q, n))
	}
	if dry || !changed || len(fn.Provisioned) == 0 {
		return done, nil
	}
	total := 0
	for _, p := range fn.Provisioned {
		total += p.Count
	}
	progress(fmt.Sprintf("waiting for %d provisioned environment(s) to finish Init", total))
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, provisionedWait)
	defer cancel()
	for _, p := range fn.Provisioned {
		for {
			st, err := client.GetProvisionedConcurrencyConfig(wctx, fn.Name, p.Qualifier)
			if err != nil {
				return done, fmt.Errorf("waiting for provisioned concurrency of %s: %w", p.Qualifier, err)
			}
			if st.Status == lambda.ProvisionedReady {
				break
			}
			if st.Status == lambda.ProvisionedFailed {
				return done, fmt.Errorf("provisioned concurrency of %s failed (%d of %d ready): %s", p.Qualifier,
					st.AvailableProvisionedConcurrentExecutions, st.RequestedProvisionedConcurrentExecutions, st.StatusReason)
			}
			select {
			case <-wctx.Done():
				return done, fmt.Errorf("provisioned concurrency of %s: %d of %d environments ready after %s", p.Qualifier,
					st.AvailableProvisionedConcurrentExecutions, st.RequestedProvisionedConcurrentExecutions, time.Since(start).Round(time.Second))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	done = append(done, fmt.Sprintf("provisioned environments ready in %s", time.Since(start).Round(10*time.Millisecond)))
	return done, nil
}

func reservedText(n *int) string {
	if n == nil {
		return "none"
	}
	return strconv.Itoa(*n)
}

// routingText shows an alias's weighted version, e.g. " + 10% to 4".
func routingText(r map[string]float64) string {
	var parts []string
	for v, w := range r {
		parts = append(parts, fmt.Sprintf(" + %g%% to %s", 100*w, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, "")
}

func urlInput(u *config.FunctionURL) *lambda.FunctionURLConfigInput {
	in := &lambda.FunctionURLConfigInput{AuthType: u.AuthType, InvokeMode: u.InvokeMode, Cors: &lambda.Cors{}}
	if u.Cors != nil {
		in.Cors = lambda.CorsFrom(u.Cors)
	}
	return in
}

// applyURL makes the function's URLs match its url block: the file is the truth, so a URL the
// file no longer has is deleted.
func applyURL(ctx context.Context, client *api.Client, fn *config.Function, dry bool) (string, error) {
	cur, err := client.ListFunctionURLConfigs(ctx, fn.Name)
	if err != nil {
		return "", err
	}
	var done []string
	wantQualifier, found := "", false
	if fn.URL != nil {
		wantQualifier = fn.URL.Qualifier
	}
	for _, u := range cur {
		_, q, _ := lambda.ParseFunctionName(u.FunctionArn)
		if fn.URL != nil && q == wantQualifier {
			found = true
			var changes []string
			if u.AuthType != fn.URL.AuthType {
				changes = append(changes, fmt.Sprintf("auth_type %s -> %s", authWord(u.AuthType), authWord(fn.URL.AuthType)))
			}
			if u.InvokeMode != fn.URL.InvokeMode {
				changes = append(changes, fmt.Sprintf("invoke_mode %s -> %s", u.InvokeMode, fn.URL.InvokeMode))
			}
			if corsKey(u.Cors.Structs()) != corsKey(derefCORS(fn.URL.Cors)) {
				changes = append(changes, "cors")
			}
			if len(changes) == 0 {
				continue
			}
			if !dry {
				if _, err := client.UpdateFunctionURLConfig(ctx, fn.Name, q, urlInput(fn.URL)); err != nil {
					return "", err
				}
			}
			done = append(done, "URL "+verb(dry, "updated", "to update")+" ("+strings.Join(changes, ", ")+")")
			continue
		}
		if !dry {
			if err := client.DeleteFunctionURLConfig(ctx, fn.Name, q); err != nil {
				return "", err
			}
		}
		done = append(done, "URL "+u.FunctionUrl+" "+verb(dry, "deleted", "to delete"))
	}
	if fn.URL != nil && !found && dry {
		done = append(done, "URL to create")
	} else if fn.URL != nil && !found {
		u, err := client.CreateFunctionURLConfig(ctx, fn.Name, wantQualifier, urlInput(fn.URL))
		if err != nil {
			return "", err
		}
		done = append(done, "URL "+u.FunctionUrl+" created")
	}
	return strings.Join(done, "; "), nil
}

// corsKey compares CORS settings: the JSON of structs.CORS omits empty fields, so an absent
// block, unset and empty lists compare equal.
func corsKey(c structs.CORS) string {
	b, _ := json.Marshal(c)
	return string(b)
}

func derefCORS(c *structs.CORS) structs.CORS {
	if c == nil {
		return structs.CORS{}
	}
	return *c
}

// envChanges lists the environment variables that differ, "~ KEY" (changed), "- KEY" (removed)
// and "+ KEY" (added), with their values only when showSensitive is set.
func envChanges(old, new map[string]string, showSensitive bool) string {
	var parts []string
	for _, k := range sortedKeys(old, new) {
		o, inOld := old[k]
		n, inNew := new[k]
		switch {
		case !inOld && showSensitive:
			parts = append(parts, fmt.Sprintf("+ %s = %q", k, n))
		case !inOld:
			parts = append(parts, "+ "+k)
		case !inNew && showSensitive:
			parts = append(parts, fmt.Sprintf("- %s = %q", k, o))
		case !inNew:
			parts = append(parts, "- "+k)
		case o != n && showSensitive:
			parts = append(parts, fmt.Sprintf("~ %s = %q -> %q", k, o, n))
		case o != n:
			parts = append(parts, "~ "+k)
		}
	}
	out := strings.Join(parts, ", ")
	if !showSensitive {
		out += " (values hidden; -show-sensitive shows them)"
	}
	return out
}

func sortedKeys(maps ...map[string]string) []string {
	keys := map[string]bool{}
	for _, m := range maps {
		for k := range m {
			keys[k] = true
		}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	return sorted
}

// envDiff lists the keys that differ between two maps: -KEY, ~KEY, +KEY.
func envDiff(old, new map[string]string) string {
	var parts []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range new {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		o, inOld := old[k]
		n, inNew := new[k]
		switch {
		case !inOld:
			parts = append(parts, "+"+k)
		case !inNew:
			parts = append(parts, "-"+k)
		case o != n:
			parts = append(parts, "~"+k)
		}
	}
	return strings.Join(parts, " ")
}

// ---- invoke ----

type invokeCommand struct{ ui cli.Ui }

func (c *invokeCommand) Synopsis() string { return "Invoke a function" }
func (c *invokeCommand) Help() string {
	return `Usage: gateway invoke [-address URL] [-qualifier Q] [-payload JSON|@file] [-type T] [-log-tail] NAME

  Prints the function's response. Exits 1 when the function failed.

  -qualifier Q             a version number or alias (default $LATEST)
  -payload JSON|@file      the event (default {})
  -type T                  RequestResponse (default), Event or DryRun
  -log-tail                print the invocation's log (START to REPORT) to stderr
` + apiFlagsHelp
}

func (c *invokeCommand) Run(args []string) int {
	fs := flagSet("invoke", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	qualifier := fs.String("qualifier", "", "")
	payload := fs.String("payload", "{}", "")
	typ := fs.String("type", "", "")
	tail := fs.Bool("log-tail", false, "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	body := []byte(*payload)
	if strings.HasPrefix(*payload, "@") {
		b, err := os.ReadFile(strings.TrimPrefix(*payload, "@"))
		if err != nil {
			c.ui.Error(err.Error())
			return 1
		}
		body = b
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	out, err := client.Invoke(ctx, &api.InvokeInput{FunctionName: fs.Arg(0), Qualifier: *qualifier, InvocationType: *typ, LogTail: *tail, Payload: body})
	if err != nil {
		c.ui.Error(errorText(err))
		return 1
	}
	if *tail && out.LogResult != "" {
		c.ui.Error(strings.TrimRight(out.LogResult, "\n"))
	}
	switch {
	case out.StatusCode == 202:
		c.ui.Output("Accepted (request " + out.RequestID + ")")
	case out.StatusCode == 204:
		c.ui.Output("Dry run: the call would be accepted")
	default:
		c.ui.Output(string(out.Payload))
	}
	if out.FunctionError != "" {
		return 1
	}
	return 0
}

// ---- functions ----

type functionsCommand struct{ ui cli.Ui }

func (c *functionsCommand) Synopsis() string { return "List functions" }
func (c *functionsCommand) Help() string {
	return `Usage: gateway functions [-address URL] [-json]

  -json                    print the functions' configurations as JSON
` + apiFlagsHelp
}

func (c *functionsCommand) Run(args []string) int {
	fs := flagSet("functions", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	asJSON := fs.Bool("json", false, "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	fns, err := client.ListFunctions(ctx)
	if err != nil {
		c.ui.Error(errorText(err))
		return 1
	}
	if *asJSON {
		b, _ := json.MarshalIndent(fns, "", "  ")
		c.ui.Output(string(b))
		return 0
	}
	// Every function's triggers at once; an agent without triggers lists none.
	triggers := map[string][]string{}
	if all, err := client.ListTriggers(ctx, ""); err == nil {
		for _, t := range all {
			triggers[t.Function] = append(triggers[t.Function], fmt.Sprintf("%s (%s)", t.Name, triggerText(t)))
		}
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRUNTIME\tMEMORY\tTIMEOUT\tCODE SIZE\tLAST MODIFIED\tURL\tTRIGGERS")
	for _, f := range fns {
		addr := "-"
		if urls, err := client.ListFunctionURLConfigs(ctx, f.FunctionName); err == nil && len(urls) > 0 {
			var list []string
			for _, u := range urls {
				list = append(list, fmt.Sprintf("%s (%s, %s)", u.FunctionUrl, authWord(u.AuthType), u.InvokeMode))
			}
			addr = strings.Join(list, ", ")
		}
		trig := "-"
		if list := triggers[f.FunctionName]; len(list) > 0 {
			trig = strings.Join(list, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d MB\t%ds\t%s\t%s\t%s\t%s\n", f.FunctionName, f.Runtime, f.MemorySize, f.Timeout, size(f.CodeSize), f.LastModified, addr, trig)
	}
	_ = tw.Flush()
	c.ui.Output(strings.TrimRight(b.String(), "\n"))
	return 0
}

// authWord is the HCL's word for an auth type.
func authWord(t string) string {
	if t == structs.AuthSigned {
		return "SIGNED"
	}
	return t
}

// ---- logs ----

type logsCommand struct{ ui cli.Ui }

func (c *logsCommand) Synopsis() string { return "Print a function's log" }
func (c *logsCommand) Help() string {
	return `Usage: gateway logs [-address URL] [-n 100] [-f] NAME

  -n N                     how many of the last lines to print
  -f                       keep printing new lines until interrupted
` + apiFlagsHelp
}

func (c *logsCommand) Run(args []string) int {
	fs := flagSet("logs", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	n := fs.Int("n", 100, "")
	follow := fs.Bool("f", false, "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	err := client.Logs(ctx, fs.Arg(0), *n, *follow, func(line string) error { c.ui.Output(line); return nil })
	if err != nil && ctx.Err() == nil {
		c.ui.Error(errorText(err))
		return 1
	}
	return 0
}
