package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"unicode"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/internal/agent"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/reconcile"
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

  Checks function files (and packs each function's and layer's code) without contacting
  an agent.

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
	ff, ok := loadFunctions(c.ui, inputs(), fs.Args())
	if !ok {
		return 1
	}
	for _, l := range ff.Layers {
		if _, err := codepkg.Build(l.Code); err != nil {
			c.ui.Error(fmt.Sprintf("%s: layer %q: %v", l.DeclRange, l.Name, err))
			return 1
		}
	}
	for _, fn := range ff.Functions {
		if fn.IsImage() {
			continue
		}
		if _, err := codepkg.Build(fn.Code); err != nil {
			c.ui.Error(fmt.Sprintf("%s: function %q: %v", fn.DeclRange, fn.Name, err))
			return 1
		}
	}
	if len(ff.Layers) > 0 {
		c.ui.Output(fmt.Sprintf("The configuration is valid (%d functions, %d layers).", len(ff.Functions), len(ff.Layers)))
		return 0
	}
	c.ui.Output(fmt.Sprintf("The configuration is valid (%d functions).", len(ff.Functions)))
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

func loadFunctions(ui cli.Ui, in config.Inputs, paths []string) (*config.FunctionFiles, bool) {
	ff, files, diags := config.LoadFunctionFiles(in, paths...)
	if len(diags) > 0 {
		var b bytes.Buffer
		_ = files.WriteDiagnostics(&b, diags)
		ui.Error(strings.TrimRight(b.String(), "\n"))
	}
	return ff, !diags.HasErrors()
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
  aliases they name exist. Code signing configuration blocks come first, then layer
  blocks: one whose code or settings differ from its latest version's gets a new
  version, which the functions naming it (layer.NAME) then use. Layers the files
  no longer declare are left alone.

  -prune                   also delete the agent's functions, and the code signing
                           configurations files made, that no file declares
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

  Compares the files with the agent's layers and functions and prints, per layer
  and function, what gateway apply would create, change (attribute by attribute),
  publish or delete, without changing anything.

  Exit status: 0 when nothing would change, 2 when something would (Terraform's
  -detailed-exitcode convention), 1 on an error.

  -prune                   also show the agent's functions (and code signing
                           configurations files made) no file declares: apply -prune
                           deletes them
  -show-sensitive          show environment variables' values in the changes (hidden by
                           default, "~ KEY": they often hold secrets)
  -var N=V                 set variable N (repeatable; also GATEWAY_VAR_N in the environment)
  -var-file F              set variables from an HCL file of N = value lines (repeatable)
` + apiFlagsHelp
}

func (c *planCommand) Run(args []string) int { return runApply(c.ui, "plan", c.Help(), args, true) }

// runApply is apply, or with dry set plan: each layer's, then each function's changes are
// planned, then printed (plan) or made (apply); with -prune, so are the deletions of the
// agent's undeclared functions.
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
	ff, ok := loadFunctions(ui, inputs(), fs.Args())
	if !ok {
		return 1
	}
	fns := ff.Functions
	client, ctx, stop, ok := connect(ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	r := reconcile.New(client, reconcile.Options{ShowSensitive: *showSensitive})
	progress := func(fn, line string) { ui.Output(fn + ": " + line) }
	// do prints a function's planned changes, or makes them and prints what they did; it
	// reports whether there were any.
	do := func(fn string, changes []reconcile.Change) (bool, error) {
		lines := reconcile.Lines(changes)
		if !dry {
			var err error
			if lines, err = r.Apply(ctx, changes, progress); err != nil {
				return false, err
			}
		}
		if len(lines) == 0 {
			ui.Output(fn + ": unchanged")
			return false, nil
		}
		ui.Output(fn + ": " + strings.Join(lines, "; "))
		return true, nil
	}
	changed, failed := 0, 0
	// count tallies one layer's or function's outcome; false when there is no agent (every
	// other one would fail the same way).
	count := func(c bool, err error) bool {
		switch {
		case unreachable(err):
			ui.Error(errorText(err))
			return false
		case err != nil:
			ui.Error(err.Error()) // it names the layer or function
			failed++
		case c:
			changed++
		}
		return true
	}
	// Code signing configurations first: the functions that name them are created with them
	// and their code checked under them.
	for _, c := range ff.CodeSigningConfigs {
		changes, err := r.PlanCodeSigningConfig(ctx, c)
		ch := false
		if err == nil {
			ch, err = do("code_signing_config "+c.Name, changes)
		}
		if !count(ch, err) {
			return 1
		}
	}
	// Layers next: apply publishes their new versions before the functions that take them
	// are planned; plan shows such a version as "(new version)".
	for _, l := range ff.Layers {
		changes, err := r.PlanLayer(ctx, l)
		c := false
		if err == nil {
			c, err = do("layer "+l.Name, changes)
		}
		if !count(c, err) {
			return 1
		}
	}
	for _, fn := range fns {
		changes, err := r.Plan(ctx, fn)
		c := false
		if err == nil {
			c, err = do(fn.Name, changes)
		}
		if !count(c, err) {
			return 1
		}
	}
	unchanged := len(ff.CodeSigningConfigs) + len(ff.Layers) + len(fns) - changed - failed
	deleted := 0
	if *prune {
		deletions, err := r.Prune(ctx, fns)
		if err != nil {
			ui.Error(errorText(err))
			failed++
		}
		// The configurations a function file made that none declares any more, once the
		// functions that used them are gone.
		cscs, err := r.PruneCodeSigningConfigs(ctx, ff.CodeSigningConfigs)
		if err != nil {
			ui.Error(errorText(err))
			failed++
		}
		deletions = append(deletions, cscs...)
		// Each deletion on its own: one that fails does not stop the others.
		for _, d := range deletions {
			name := d.Function
			if name == "" {
				name = d.Layer
			}
			if _, err := do(name, []reconcile.Change{d}); err != nil {
				ui.Error(errorText(err))
				failed++
				continue
			}
			deleted++
		}
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
			triggers[t.Function] = append(triggers[t.Function], fmt.Sprintf("%s (%s)", t.Name, reconcile.TriggerText(t)))
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
				list = append(list, fmt.Sprintf("%s (%s, %s)", u.FunctionUrl, reconcile.AuthWord(u.AuthType), u.InvokeMode))
			}
			addr = strings.Join(list, ", ")
		}
		trig := "-"
		if list := triggers[f.FunctionName]; len(list) > 0 {
			trig = strings.Join(list, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d MB\t%ds\t%s\t%s\t%s\t%s\n", f.FunctionName, f.Runtime, f.MemorySize, f.Timeout, reconcile.Size(f.CodeSize), f.LastModified, addr, trig)
	}
	_ = tw.Flush()
	c.ui.Output(strings.TrimRight(b.String(), "\n"))
	return 0
}

// ---- logs ----

// printable escapes a function's control characters (tabs kept) so its lines cannot move the
// terminal's cursor, rewrite earlier lines or change colours: a function's output is untrusted.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r != '\t' && unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

type logsCommand struct{ ui cli.Ui }

func (c *logsCommand) Synopsis() string { return "Print a function's log from every node" }
func (c *logsCommand) Help() string {
	return `Usage: gateway logs [options] NAME

  Prints the function's log lines from every node of the cluster, merged in time order, each
  with the node that ran it: TIME NODE LINE. A node that cannot be read is said in a line
  starting with [gateway].

  -n N                     how many of the last lines to print (at most 100000)
  -since WHEN              only lines from WHEN on: a duration back from now (15m, 2h) or an
                           RFC3339 time (2026-01-02T15:04:05Z)
  -until WHEN              only lines up to WHEN (same forms)
  -filter PATTERN          only lines containing PATTERN, where * stands for any run of
                           characters (case-sensitive: "ERROR*timeout")
  -request-id ID           only the lines of that invocation: START to REPORT and the
                           runtime's output during it
  -f, -follow              keep printing new lines from every node until interrupted
  -json                    print one JSON object per line: time, node, function,
                           request_id, type (platform, function, platform.start...), level
                           when known, message
` + apiFlagsHelp
}

func (c *logsCommand) Run(args []string) int {
	fs := flagSet("logs", c.ui, c.Help())
	apiOpts := addAPIFlags(fs)
	n := fs.Int("n", 100, "")
	follow := fs.Bool("f", false, "")
	fs.BoolVar(follow, "follow", false, "")
	since := fs.String("since", "", "")
	until := fs.String("until", "", "")
	filter := fs.String("filter", "", "")
	requestID := fs.String("request-id", "", "")
	asJSON := fs.Bool("json", false, "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 1
	}
	q := url.Values{"lines": {strconv.Itoa(*n)}, "format": {"json"}}
	for k, v := range map[string]string{"since": *since, "until": *until, "filter": *filter, "request_id": *requestID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *follow {
		q.Set("follow", "true")
	}
	client, ctx, stop, ok := connect(c.ui, apiOpts)
	if !ok {
		return 1
	}
	defer stop()
	err := client.LogLines(ctx, fs.Arg(0), q, func(line string) error {
		if *asJSON {
			c.ui.Output(line)
			return nil
		}
		var e struct{ Time, Node, Message string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return fmt.Errorf("reading the log: %w", err)
		}
		c.ui.Output(e.Time + "  " + e.Node + "  " + printable(e.Message))
		return nil
	})
	if err != nil && ctx.Err() == nil {
		c.ui.Error(errorText(err))
		return 1
	}
	return 0
}
