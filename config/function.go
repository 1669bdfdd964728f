package config

// Function files: functions with their URLs, aliases, triggers, provisioned concurrency and
// asynchronous invocation settings (LoadFunctions).

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/lambdagw/gateway/internal/structs"
)

// Function is one function block.
type Function struct {
	Name        string
	Description string
	Runtime     string
	Handler     string
	Code        string // absolute path of a folder or a .zip; "" for an image function
	// PackageType is structs.PackageZip (the default) or structs.PackageImage, with ImageURI
	// and ImageConfig.
	PackageType string
	ImageURI    string
	ImageConfig *structs.ImageConfig
	// Logging is the logging_config block (Lambda's LoggingConfig): nil is Text.
	Logging *structs.LoggingConfig
	// Network is the network block: the operator's network the function's environments are
	// on, and the egress policies it adds; nil: loopback only.
	Network            *structs.FunctionNetwork
	MemoryMB           int
	Timeout            time.Duration
	EphemeralStorageMB int
	Environment        map[string]string
	FreezeDelay        *time.Duration
	// Layers are the function's layers in order (a later one's files win at /opt); apply
	// resolves each layer.NAME to the layer block's latest version.
	Layers []LayerRef
	// URL is the function's URL, when it has a url block.
	URL *FunctionURL
	// Publish publishes a new version on apply whenever the code or configuration changed.
	Publish bool
	// ReservedConcurrency caps the function's simultaneous executions; nil is no reservation.
	ReservedConcurrency *int
	// Aliases are the function's alias blocks, in file order.
	Aliases []*Alias
	// Provisioned are the provisioned_concurrency blocks, in file order, one per qualifier.
	Provisioned []*Provisioned
	// Triggers are the trigger blocks, in file order.
	Triggers []*Trigger
	// DeadLetterTarget ("queue:NAME" or "stream:NAME") receives the events of asynchronous
	// invocations that failed for good and have no on-failure destination.
	DeadLetterTarget string
	// Async are the async blocks (the function's own, naming a qualifier or $LATEST, and its
	// alias blocks'), one per qualifier, in file order.
	Async []*AsyncConfig
	// FileSystems are the file_system blocks: file systems of the agents mounted under /mnt
	// (at most one, as Lambda).
	FileSystems []structs.FileSystemConfig
	// CodeSigningConfig names a code_signing_config block of the files: the function's code
	// must verify under it.
	CodeSigningConfig      string
	CodeSigningConfigRange hcl.Range
	// CodeSignature is the absolute path of the Sigstore bundle of the code's zip (cosign
	// sign-blob --bundle, gateway sign -bundle), uploaded with it as a signed zip; "" when the
	// code carries its signature (gateway sign's signed zip) or has none.
	CodeSignature string
	DeclRange     hcl.Range
}

// AsyncConfig is an async block: how asynchronous invocations of a qualifier are retried, how long
// they may wait and where their outcome goes (Lambda's event invoke configuration).
type AsyncConfig struct {
	structs.EventInvokeConfig
	DeclRange hcl.Range
}

// Provisioned is a provisioned_concurrency block: Count environments of a published version or
// alias kept initialised.
type Provisioned struct {
	Qualifier string
	Count     int
	DeclRange hcl.Range
}

// Alias is an alias block: a name for a version, with an optional weighted second version.
type Alias struct {
	Name        string
	Version     string // "$LATEST" or a version number
	Routing     map[string]float64
	Description string
	DeclRange   hcl.Range
	// asyncBlocks are the alias's async blocks, decoded with the function's (decodeAsync).
	asyncBlocks []*hcl.Block
}

// FunctionURL is a function's url block, in the Lambda API's terms (SIGNED is AWS_IAM).
type FunctionURL struct {
	AuthType   string
	InvokeMode string
	Qualifier  string
	Cors       *structs.CORS
	DeclRange  hcl.Range
}

type urlBlock struct {
	AuthType   *string    `hcl:"auth_type,optional"`
	InvokeMode *string    `hcl:"invoke_mode,optional"`
	Qualifier  *string    `hcl:"qualifier,optional"`
	Cors       *corsBlock `hcl:"cors,block"`
}

type corsBlock struct {
	AllowOrigins     *[]string `hcl:"allow_origins,optional"`
	AllowMethods     *[]string `hcl:"allow_methods,optional"`
	AllowHeaders     *[]string `hcl:"allow_headers,optional"`
	ExposeHeaders    *[]string `hcl:"expose_headers,optional"`
	AllowCredentials *bool     `hcl:"allow_credentials,optional"`
	MaxAge           *int      `hcl:"max_age,optional"`
}

// decodeURL reads a function's url block.
func decodeURL(blk *hcl.Block, ctx *hcl.EvalContext) (*FunctionURL, hcl.Diagnostics) {
	var raw urlBlock
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	attrRange := func(body hcl.Body, name string) hcl.Range {
		attrs, _ := body.JustAttributes() // the body may have blocks too; the attributes still come
		if a, ok := attrs[name]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	}
	corsBody := blk.Body
	if pc, _, _ := blk.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "cors"}}}); len(pc.Blocks) > 0 {
		corsBody = pc.Blocks[0].Body
	}
	u := &FunctionURL{AuthType: structs.AuthNone, InvokeMode: structs.InvokeBuffered, DeclRange: blk.DefRange}
	if raw.AuthType != nil {
		u.AuthType = *raw.AuthType
		if u.AuthType == "SIGNED" {
			u.AuthType = structs.AuthSigned // the HCL's name: signed with the agent's keys, not IAM
		}
	}
	if raw.InvokeMode != nil {
		u.InvokeMode = *raw.InvokeMode
	}
	if raw.Qualifier != nil && *raw.Qualifier != structs.LatestVersion {
		u.Qualifier = *raw.Qualifier
	}
	if c := raw.Cors; c != nil {
		cors := &structs.CORS{}
		get := func(p *[]string) []string {
			if p == nil {
				return nil
			}
			return *p
		}
		cors.AllowOrigins, cors.AllowMethods = get(c.AllowOrigins), get(c.AllowMethods)
		cors.AllowHeaders, cors.ExposeHeaders = get(c.AllowHeaders), get(c.ExposeHeaders)
		if c.AllowCredentials != nil {
			cors.AllowCredentials = *c.AllowCredentials
		}
		if c.MaxAge != nil {
			cors.MaxAge = *c.MaxAge
		}
		cors.Normalize()
		u.Cors = cors
	}
	// The rules the Lambda API applies too (internal/structs), on the attributes' ranges.
	su := structs.FunctionURL{AuthType: u.AuthType, InvokeMode: u.InvokeMode, Qualifier: u.Qualifier, Cors: u.Cors}
	diags = append(diags, fieldDiags(su.Validate(), urlAttrs, func(attr string) hcl.Range {
		if name, ok := strings.CutPrefix(attr, "cors."); ok {
			return attrRange(corsBody, name)
		}
		return attrRange(blk.Body, attr)
	})...)
	return u, diags
}

// urlAttrs maps the Lambda API's names of a function URL's settings to a url block's attributes.
var urlAttrs = map[string]string{
	"AuthType": "auth_type", "InvokeMode": "invoke_mode", "Qualifier": "qualifier",
	"Cors.MaxAge": "cors.max_age", "Cors.AllowOrigins": "cors.allow_origins", "Cors.AllowMethods": "cors.allow_methods",
	"Cors.AllowHeaders": "cors.allow_headers", "Cors.ExposeHeaders": "cors.expose_headers",
}

// Structs maps the block to the shared domain type, without the code hash (the caller's job).
func (f *Function) Structs() *structs.Function {
	env := make(map[string]string, len(f.Environment))
	for k, v := range f.Environment {
		env[k] = v
	}
	return &structs.Function{
		Name: f.Name, Description: f.Description, Runtime: f.Runtime, Handler: f.Handler,
		MemoryMB: f.MemoryMB, Timeout: f.Timeout, EphemeralStorageMB: f.EphemeralStorageMB,
		Environment: env, FreezeDelay: f.FreezeDelay, DeadLetterTarget: f.DeadLetterTarget,
		PackageType: f.PackageType, ImageURI: f.ImageURI, ImageConfig: f.ImageConfig, Network: f.Network,
		FileSystems: append([]structs.FileSystemConfig(nil), f.FileSystems...),
		Logging:     f.Logging.Normal(f.Name),
	}
}

// IsImage reports whether the function's code is a container image.
func (f *Function) IsImage() bool { return f.PackageType == structs.PackageImage }

// functionAttrs maps the Lambda API's names of a function's settings (structs.FieldError.Field)
// to a function block's attributes; "" is the block's label.
var functionAttrs = map[string]string{
	"FunctionName": "", "Runtime": "runtime", "Handler": "handler", "Description": "description",
	"MemorySize": "memory_mb", "Timeout": "timeout", "EphemeralStorage.Size": "ephemeral_storage_mb",
	"GatewayOptions.FreezeDelayMs": "freeze_delay", "Environment.Variables": "environment",
	"ReservedConcurrentExecutions": "reserved_concurrency", "PackageType": "package_type", "Code.ImageUri": "image_uri",
	"ImageConfig": "image_config", "ImageConfig.WorkingDirectory": "image_config", "Layers": "layers",
	"DeadLetterConfig.TargetArn": "dead_letter_target", "VpcConfig.SubnetIds": "network", "VpcConfig.SecurityGroupIds": "network",
	"FileSystemConfigs": "file_system", "FileSystemConfigs.Arn": "file_system.name",
	"FileSystemConfigs.LocalMountPath": "file_system.local_mount_path",
	"LoggingConfig.LogFormat":          "logging_config.log_format", "LoggingConfig.LogGroup": "logging_config.log_group",
	"LoggingConfig.ApplicationLogLevel": "logging_config.application_log_level",
	"LoggingConfig.SystemLogLevel":      "logging_config.system_log_level",
}

// aliasAttrs maps the Lambda API's names of an alias's settings to an alias block's attributes;
// "" is the block's label.
var aliasAttrs = map[string]string{"Name": "", "FunctionVersion": "version", "RoutingConfig.AdditionalVersionWeights": "routing",
	"Description": "description"}

// decodeAlias reads an alias block: alias "live" { version = 3  routing = { "4" = 0.1 } }.
func decodeAlias(blk *hcl.Block, ctx *hcl.EvalContext) (*Alias, hcl.Diagnostics) {
	var raw struct {
		Version     hcl.Expression      `hcl:"version"`
		Routing     *map[string]float64 `hcl:"routing,optional"`
		Description *string             `hcl:"description,optional"`
	}
	partial, rest, diags := blk.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "async"}}})
	diags = append(diags, gohcl.DecodeBody(rest, ctx, &raw)...)
	if diags.HasErrors() {
		return nil, diags
	}
	a := &Alias{Name: blk.Labels[0], DeclRange: blk.DefRange, asyncBlocks: partial.Blocks}
	if v, _ := raw.Version.Value(ctx); v.IsNull() {
		rng := blk.DefRange
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing alias version",
			Detail: fmt.Sprintf("Alias %q needs version = <a published version's number> or \"$LATEST\".", a.Name), Subject: &rng})
	}
	if d := gohcl.DecodeExpression(raw.Version, ctx, &a.Version); d.HasErrors() {
		return nil, append(diags, d...)
	}
	if raw.Description != nil {
		a.Description = *raw.Description
	}
	if raw.Routing != nil {
		a.Routing = *raw.Routing
	}
	// The rules the Lambda API applies too (internal/structs), on the attributes' ranges.
	sa := structs.Alias{Name: a.Name, FunctionVersion: a.Version, AdditionalVersionWeights: a.Routing, Description: a.Description}
	attrs, _ := blk.Body.JustAttributes()
	diags = append(diags, fieldDiags(sa.Validate(), aliasAttrs, func(attr string) hcl.Range {
		if attr == "" {
			return blk.LabelRanges[0]
		}
		if a, ok := attrs[attr]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	})...)
	return a, diags
}

// Trigger is a trigger block: an event source mapping run by a trigger plugin.
type Trigger struct {
	structs.Trigger
	DeclRange hcl.Range
}

// decodeTrigger reads a trigger block:
//
//	trigger "orders" { plugin = "queue"  source = "orders"  batch_size = 10  on_failure { destination = "queue:dlq" } }
//
// aliases are the function's alias blocks: a qualifier that is not a number must be one of them.
func decodeTrigger(blk *hcl.Block, ctx *hcl.EvalContext, function string, aliases map[string]hcl.Range) (*Trigger, hcl.Diagnostics) {
	var raw struct {
		Plugin           string             `hcl:"plugin"`
		Source           string             `hcl:"source"`
		Qualifier        *string            `hcl:"qualifier,optional"`
		BatchSize        *int               `hcl:"batch_size,optional"`
		BatchWindow      hcl.Expression     `hcl:"batch_window,optional"`
		StartingPosition *string            `hcl:"starting_position,optional"`
		StartingAt       *string            `hcl:"starting_position_timestamp,optional"`
		Retries          *int               `hcl:"maximum_retry_attempts,optional"`
		RecordAge        hcl.Expression     `hcl:"maximum_record_age,optional"`
		Bisect           *bool              `hcl:"bisect_batch_on_function_error,optional"`
		ReportFailures   *bool              `hcl:"report_batch_item_failures,optional"`
		Enabled          *bool              `hcl:"enabled,optional"`
		Options          *map[string]string `hcl:"options,optional"`
		OnFailure        []struct {
			Destination string `hcl:"destination"`
		} `hcl:"on_failure,block"`
	}
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	attrs, _ := blk.Body.JustAttributes()
	at := func(name string) hcl.Range {
		if a, ok := attrs[name]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	}
	t := &Trigger{Trigger: structs.Trigger{Function: function, Name: blk.Labels[0], Plugin: raw.Plugin, Source: raw.Source,
		MaximumRetryAttempts: -1, Enabled: true}, DeclRange: blk.DefRange}
	if raw.Qualifier != nil {
		t.Qualifier = *raw.Qualifier
		if _, err := strconv.Atoi(t.Qualifier); err != nil && t.Qualifier != structs.LatestVersion {
			if _, ok := aliases[t.Qualifier]; !ok {
				diags = append(diags, rangeDiag("Unknown qualifier", fmt.Sprintf("%q is neither a version number, \"$LATEST\" nor an alias block of this function.", t.Qualifier), at("qualifier")))
			}
		}
	}
	if raw.BatchSize != nil {
		t.BatchSize = *raw.BatchSize
		if t.BatchSize == 0 { // 0 stands for the plugin's default in the shared rule; here one omits it
			diags = append(diags, rangeDiag("Invalid batch_size", fmt.Sprintf("0: a batch holds 1 to %d records; omit batch_size for the plugin's default.", structs.MaxTriggerBatchSize), at("batch_size")))
		}
	}
	if isSet(raw.BatchWindow) {
		d, dd := durationValue(raw.BatchWindow, ctx)
		diags = append(diags, dd...)
		t.BatchWindow = d
	}
	if raw.StartingPosition != nil {
		t.StartingPosition = *raw.StartingPosition
	}
	if raw.StartingAt != nil {
		ts, err := time.Parse(time.RFC3339, *raw.StartingAt)
		if err != nil {
			diags = append(diags, rangeDiag("Invalid starting_position_timestamp", fmt.Sprintf("%q: use RFC 3339, like 2026-01-02T15:04:05Z.", *raw.StartingAt), at("starting_position_timestamp")))
		}
		t.StartingPositionTimestamp = ts
		if t.StartingPosition != structs.AtTimestamp {
			diags = append(diags, rangeDiag("Unused starting_position_timestamp", "starting_position_timestamp goes with starting_position = \"AT_TIMESTAMP\".", at("starting_position_timestamp")))
		}
	}
	if raw.Retries != nil {
		t.MaximumRetryAttempts = *raw.Retries
	}
	if isSet(raw.RecordAge) {
		d, dd := durationValue(raw.RecordAge, ctx)
		diags = append(diags, dd...)
		t.MaximumRecordAge = d
	}
	if raw.Bisect != nil {
		t.BisectBatchOnFunctionError = *raw.Bisect
	}
	if raw.ReportFailures != nil {
		t.ReportBatchItemFailures = *raw.ReportFailures
	}
	if raw.Enabled != nil {
		t.Enabled = *raw.Enabled
	}
	if raw.Options != nil {
		t.Options = *raw.Options
	}
	for i, of := range raw.OnFailure {
		if i > 0 {
			diags = append(diags, rangeDiag("Duplicate on_failure block", "A trigger has one on_failure destination.", blk.DefRange))
			break
		}
		t.OnFailure = of.Destination
	}
	// The rules the API's triggers and event source mappings obey too (internal/structs); a
	// field is named as its attribute.
	diags = append(diags, fieldDiags(t.Check(), nil, func(attr string) hcl.Range {
		if attr == "name" {
			return blk.LabelRanges[0]
		}
		return at(attr)
	})...)
	return t, diags
}

// decodeProvisioned reads a provisioned_concurrency block. aliases are the function's alias
// blocks: a qualifier that is not a number must be one of them.
func decodeProvisioned(blk *hcl.Block, ctx *hcl.EvalContext, aliases map[string]hcl.Range) (*Provisioned, hcl.Diagnostics) {
	var raw struct {
		Qualifier hcl.Expression `hcl:"qualifier"`
		Count     int            `hcl:"count"`
	}
	diags := gohcl.DecodeBody(blk.Body, ctx, &raw)
	if diags.HasErrors() {
		return nil, diags
	}
	p := &Provisioned{Count: raw.Count, DeclRange: blk.DefRange}
	if v, _ := raw.Qualifier.Value(ctx); v.IsNull() {
		rng := blk.DefRange
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing qualifier",
			Detail: "provisioned_concurrency needs qualifier = <a published version's number> or <an alias of this function>.", Subject: &rng})
	}
	if d := gohcl.DecodeExpression(raw.Qualifier, ctx, &p.Qualifier); d.HasErrors() {
		return nil, append(diags, d...)
	}
	attrs, _ := blk.Body.JustAttributes()
	// The form is the API's rule too (internal/structs); the alias must be a block of this function.
	qdiags := fieldDiags(structs.ValidateProvisionedQualifier(p.Qualifier), map[string]string{"Qualifier": "qualifier"},
		func(string) hcl.Range { return raw.Qualifier.Range() })
	diags = append(diags, qdiags...)
	if _, err := strconv.Atoi(p.Qualifier); len(qdiags) == 0 && err != nil && aliases[p.Qualifier] == (hcl.Range{}) {
		diags = append(diags, rangeDiag("Unknown alias", fmt.Sprintf("%q is neither a version number nor an alias block of this function.", p.Qualifier), raw.Qualifier.Range()))
	}
	diags = append(diags, fieldDiags(structs.ValidateProvisionedCount(p.Count), map[string]string{"ProvisionedConcurrentExecutions": "count"},
		func(string) hcl.Range { return attrs["count"].Expr.Range() })...)
	return p, diags
}

// asyncAttrs maps the Lambda API's names of an event invoke configuration's settings
// (structs.EventInvokeConfig.Check) to an async block's attributes.
var asyncAttrs = map[string]string{
	"Qualifier": "qualifier", "MaximumRetryAttempts": "maximum_retry_attempts", "MaximumEventAgeInSeconds": "maximum_event_age",
	"DestinationConfig.OnSuccess.Destination": "on_success.destination", "DestinationConfig.OnFailure.Destination": "on_failure.destination",
}

// decodeAsync reads an async block:
//
//	async { maximum_retry_attempts = 1  maximum_event_age = "1h"  on_failure { destination = "queue:dlq" } }
//
// of function (a qualifier = "..." names a version or one of aliases, else $LATEST), or of
// alias, when it is inside that alias's block (where a qualifier would be redundant).
func decodeAsync(blk *hcl.Block, ctx *hcl.EvalContext, function, alias string, aliases map[string]hcl.Range) (*AsyncConfig, hcl.Diagnostics) {
	var raw struct {
		Qualifier *string        `hcl:"qualifier,optional"`
		Retries   *int           `hcl:"maximum_retry_attempts,optional"`
		EventAge  hcl.Expression `hcl:"maximum_event_age,optional"`
	}
	partial, rest, diags := blk.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "on_success"}, {Type: "on_failure"}}})
	d := gohcl.DecodeBody(rest, ctx, &raw)
	diags = append(diags, d...)
	if d.HasErrors() {
		return nil, diags
	}
	attrs, _ := rest.JustAttributes()
	// Attributes by name: "on_success.destination" is the destination of the on_success block.
	ranges := map[string]hcl.Range{}
	for name, a := range attrs {
		ranges[name] = a.Expr.Range()
	}
	at := func(name string) hcl.Range {
		if r, ok := ranges[name]; ok {
			return r
		}
		return blk.DefRange
	}
	a := &AsyncConfig{EventInvokeConfig: structs.EventInvokeConfig{Function: function, Qualifier: structs.LatestVersion}, DeclRange: blk.DefRange}
	switch {
	case alias != "" && raw.Qualifier != nil:
		diags = append(diags, rangeDiag("Qualifier in an alias's async block", fmt.Sprintf("This async block is alias %q's: remove qualifier, or move the block out of the alias.", alias), at("qualifier")))
		a.Qualifier = alias
	case alias != "":
		a.Qualifier = alias
	case raw.Qualifier != nil:
		a.Qualifier = *raw.Qualifier
		// A number is a version (whether it exists is known when applying); a name that is
		// not a version must be an alias block. A malformed one is Check's.
		if _, isAlias := aliases[a.Qualifier]; !isAlias && structs.ValidAlias(a.Qualifier) {
			diags = append(diags, rangeDiag("Unknown qualifier", fmt.Sprintf("%q is neither a version number, \"$LATEST\" nor an alias block of this function.", a.Qualifier), at("qualifier")))
		}
	}
	var errs []structs.FieldError
	if raw.Retries != nil {
		a.MaximumRetryAttempts = raw.Retries
	}
	if isSet(raw.EventAge) {
		age, d := durationValue(raw.EventAge, ctx)
		diags = append(diags, d...)
		a.MaximumEventAge = age
		if !d.HasErrors() && age == 0 { // 0 would read as the default: given, it is out of range
			errs = append(errs, structs.ValidateEventAge(0)...)
		}
	}
	seen := map[string]hcl.Range{}
	for _, b := range partial.Blocks {
		if first, dup := seen[b.Type]; dup {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate " + b.Type + " block",
				Detail: fmt.Sprintf("An async block has one %s destination; the first is at %s.", b.Type, first), Subject: &rng})
			continue
		}
		seen[b.Type] = b.DefRange
		var dest struct {
			Destination string `hcl:"destination"`
		}
		if d := gohcl.DecodeBody(b.Body, ctx, &dest); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		if attrs, _ := b.Body.JustAttributes(); attrs["destination"] != nil {
			ranges[b.Type+".destination"] = attrs["destination"].Expr.Range()
		}
		if b.Type == "on_failure" {
			a.OnFailure = dest.Destination
		} else {
			a.OnSuccess = dest.Destination
		}
	}
	// The rules the Lambda API applies too (internal/structs), on the attributes' ranges.
	diags = append(diags, fieldDiags(append(errs, a.Check()...), asyncAttrs, at)...)
	return a, diags
}

// notYetSchema lists function blocks a later version of the gateway supports.
var notYetSchema = []hcl.BlockHeaderSchema{}

// LoadFunctions reads function files; a directory stands for every *.hcl file in it.
func LoadFunctions(paths ...string) ([]*Function, *Files, hcl.Diagnostics) {
	return LoadFunctionsWith(Inputs{}, paths...)
}

// LoadFunctionsWith reads function files with values for their variables, and returns their
// functions (LoadFunctionFiles has their layers too).
func LoadFunctionsWith(in Inputs, paths ...string) ([]*Function, *Files, hcl.Diagnostics) {
	ff, files, diags := LoadFunctionFiles(in, paths...)
	return ff.Functions, files, diags
}

// FunctionFiles is what function files declare.
type FunctionFiles struct {
	// Functions, Layers and CodeSigningConfigs are in the order of the files, then of their
	// blocks.
	Functions          []*Function
	Layers             []*Layer
	CodeSigningConfigs []*CodeSigningConfig
}

// LoadFunctionFiles reads function files with values for their variables. The files given
// together share their variable blocks, which any of them may declare, and their layer
// blocks, which a function of any of them may name.
func LoadFunctionFiles(in Inputs, paths ...string) (*FunctionFiles, *Files, hcl.Diagnostics) {
	files := newFiles()
	var diags hcl.Diagnostics
	out := &FunctionFiles{}
	seen := map[string]hcl.Range{}
	seenLayers := map[string]hcl.Range{}
	seenSigning := map[string]hcl.Range{}
	type parsed struct {
		path string
		body hcl.Body
	}
	var bodies []parsed
	var decls []*hcl.Block
	for _, p := range expandPaths(paths, &diags) {
		f, d := files.parser.ParseHCLFile(p)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if d := agentFileDiag(p, f.Body); d != nil {
			diags = append(diags, d)
			continue // its function-file errors would only bury this one
		}
		content, rest, d := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "variable", LabelNames: []string{"name"}}}})
		diags = append(diags, d...)
		decls = append(decls, content.Blocks...)
		bodies = append(bodies, parsed{p, rest})
	}
	values, d := variableValues(files, decls, in)
	diags = append(diags, d...)
	if d.HasErrors() {
		return out, files, diags // every use of a missing variable would only repeat it
	}
	ctx := evalContext()
	ctx.Variables["var"] = cty.ObjectVal(values)
	ctx.Functions = functions()
	for _, b := range bodies {
		fns, layers, cscs, d := decodeFunctions(b.body, ctx, filepath.Dir(b.path))
		diags = append(diags, d...)
		for _, c := range cscs {
			if d := firstDecl(seenSigning, "Code signing config", c.Name, c.DeclRange); d != nil {
				diags = append(diags, d)
				continue
			}
			out.CodeSigningConfigs = append(out.CodeSigningConfigs, c)
		}
		for _, l := range layers {
			if d := firstDecl(seenLayers, "Layer", l.Name, l.DeclRange); d != nil {
				diags = append(diags, d)
				continue
			}
			out.Layers = append(out.Layers, l)
		}
		for _, fn := range fns {
			if d := firstDecl(seen, "Function", fn.Name, fn.DeclRange); d != nil {
				diags = append(diags, d)
				continue
			}
			out.Functions = append(out.Functions, fn)
		}
	}
	// A layer.NAME may name a layer block of any of the files, and code_signing_config a
	// code_signing_config block.
	for _, fn := range out.Functions {
		if _, ok := seenSigning[fn.CodeSigningConfig]; fn.CodeSigningConfig != "" && !ok {
			diags = append(diags, rangeDiag("Unknown code signing config", fmt.Sprintf("No code_signing_config block of these files is named %q.", fn.CodeSigningConfig), fn.CodeSigningConfigRange))
		}
		for _, r := range fn.Layers {
			if _, ok := seenLayers[r.Layer]; r.Layer != "" && !ok {
				diags = append(diags, rangeDiag("Unknown layer", fmt.Sprintf("No layer block of these files is named %q.", r.Layer), r.Range))
			}
		}
	}
	return out, files, diags
}

// agentFileDiag says, at its first agent setting, that a file given as a function file is an
// agent file (a folder of function files may well hold one, as examples/ did); nil otherwise.
func agentFileDiag(path string, body hcl.Body) *hcl.Diagnostic {
	schema, _ := gohcl.ImpliedBodySchema(agentFile{})
	agentNames := map[string]bool{}
	for _, a := range schema.Attributes {
		agentNames[a.Name] = true
	}
	for _, b := range schema.Blocks {
		agentNames[b.Type] = true
	}
	type item struct {
		name string
		rng  hcl.Range
	}
	var found []item
	if sb, ok := body.(*hclsyntax.Body); ok {
		for name, a := range sb.Attributes {
			if agentNames[name] {
				found = append(found, item{name, a.NameRange})
			}
		}
		for _, b := range sb.Blocks {
			if agentNames[b.Type] {
				found = append(found, item{b.Type, b.TypeRange})
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].rng.Start.Byte < found[j].rng.Start.Byte })
	var names []string
	for _, it := range found {
		if !slices.Contains(names, it.name) {
			names = append(names, it.name)
		}
	}
	rng := found[0].rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Agent file given as a function file",
		Detail: fmt.Sprintf("%s is an agent file (it has %s): give apply, plan and validate only function files, and an agent file to gateway agent -config.",
			path, strings.Join(names, ", ")), Subject: &rng}
}

func expandPaths(paths []string, diags *hcl.Diagnostics) []string {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read function file", Detail: err.Error()})
			continue
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		m, _ := filepath.Glob(filepath.Join(p, "*.hcl"))
		sort.Strings(m)
		if len(m) == 0 {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No function files", Detail: fmt.Sprintf("Directory %s has no *.hcl file.", p)})
		}
		out = append(out, m...)
	}
	return out
}

// decodeFunctions reads a function file's function, layer and code_signing_config blocks.
func decodeFunctions(body hcl.Body, ctx *hcl.EvalContext, baseDir string) ([]*Function, []*Layer, []*CodeSigningConfig, hcl.Diagnostics) {
	schema := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "function", LabelNames: []string{"name"}},
		{Type: "layer", LabelNames: []string{"name"}}, {Type: "code_signing_config", LabelNames: []string{"name"}}}}
	content, diags := body.Content(schema)
	var fns []*Function
	var layers []*Layer
	var cscs []*CodeSigningConfig
	for _, blk := range content.Blocks {
		if blk.Type == "code_signing_config" {
			c, d := decodeCodeSigningConfig(blk, ctx)
			diags = append(diags, d...)
			if c != nil {
				cscs = append(cscs, c)
			}
			continue
		}
		if blk.Type == "layer" {
			l, d := decodeLayer(blk, ctx, baseDir)
			diags = append(diags, d...)
			if l != nil {
				layers = append(layers, l)
			}
			continue
		}
		fn, d := decodeFunction(blk, ctx, baseDir)
		diags = append(diags, d...)
		if fn != nil {
			fns = append(fns, fn)
		}
	}
	return fns, layers, cscs, diags
}

func decodeFunction(blk *hcl.Block, ctx *hcl.EvalContext, baseDir string) (*Function, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	// Blocks of later versions get a clear word instead of "Unsupported block type".
	known := []hcl.BlockHeaderSchema{{Type: "url"}, {Type: "alias", LabelNames: []string{"name"}}, {Type: "provisioned_concurrency"},
		{Type: "trigger", LabelNames: []string{"name"}}, {Type: "image_config"}, {Type: "async"}, {Type: "network"}, {Type: "file_system"},
		{Type: "logging_config"}}
	partial, rest, d := blk.Body.PartialContent(&hcl.BodySchema{Blocks: append(slices.Clone(known), notYetSchema...)})
	diags = append(diags, d...)
	blocks := map[string][]*hcl.Block{} // by type
	for _, b := range partial.Blocks {
		if slices.ContainsFunc(known, func(k hcl.BlockHeaderSchema) bool { return k.Type == b.Type }) {
			blocks[b.Type] = append(blocks[b.Type], b)
			continue
		}
		rng := b.DefRange
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Not supported yet",
			Detail: fmt.Sprintf("The %q block is not supported yet by this version of the gateway.", b.Type), Subject: &rng})
	}
	urlBlocks, aliasBlocks, provBlocks, triggerBlocks := blocks["url"], blocks["alias"], blocks["provisioned_concurrency"], blocks["trigger"]
	imageConfigBlocks, asyncBlocks, networkBlocks, fsBlocks := blocks["image_config"], blocks["async"], blocks["network"], blocks["file_system"]
	var raw struct {
		Runtime            *string            `hcl:"runtime,optional"`
		Code               hcl.Expression     `hcl:"code,optional"`
		PackageType        *string            `hcl:"package_type,optional"`
		ImageURI           *string            `hcl:"image_uri,optional"`
		Handler            *string            `hcl:"handler,optional"`
		Description        *string            `hcl:"description,optional"`
		MemoryMB           *int               `hcl:"memory_mb,optional"`
		Timeout            hcl.Expression     `hcl:"timeout,optional"`
		EphemeralStorageMB *int               `hcl:"ephemeral_storage_mb,optional"`
		Environment        *map[string]string `hcl:"environment,optional"`
		FreezeDelay        hcl.Expression     `hcl:"freeze_delay,optional"`
		Publish            *bool              `hcl:"publish,optional"`
		Reserved           *int               `hcl:"reserved_concurrency,optional"`
		Layers             hcl.Expression     `hcl:"layers,optional"`
		DeadLetterTarget   *string            `hcl:"dead_letter_target,optional"`
		CodeSigningConfig  *string            `hcl:"code_signing_config,optional"`
		CodeSignature      hcl.Expression     `hcl:"code_signature,optional"`
	}
	d = gohcl.DecodeBody(rest, ctx, &raw)
	diags = append(diags, d...)
	if d.HasErrors() {
		return nil, diags
	}
	attrs, _ := blk.Body.JustAttributes()
	at := func(name string) hcl.Range {
		if a, ok := attrs[name]; ok {
			return a.Expr.Range()
		}
		return blk.DefRange
	}
	if len(fsBlocks) > 0 {
		// A file system's rules are on its block's attributes; too many, on the second block.
		at = func(name string) hcl.Range {
			if name == "file_system" {
				return fsBlocks[min(1, len(fsBlocks)-1)].DefRange
			}
			if sub, ok := strings.CutPrefix(name, "file_system."); ok {
				fsAttrs, _ := fsBlocks[0].Body.JustAttributes()
				if a, ok := fsAttrs[sub]; ok {
					return a.Expr.Range()
				}
				return fsBlocks[0].DefRange
			}
			if a, ok := attrs[name]; ok {
				return a.Expr.Range()
			}
			return blk.DefRange
		}
	}
	fn := &Function{
		Name: blk.Labels[0], MemoryMB: structs.DefaultMemoryMB,
		Timeout: structs.DefaultTimeout, EphemeralStorageMB: structs.DefaultEphemeralMB,
		Environment: map[string]string{}, DeclRange: blk.DefRange,
	}
	if raw.Runtime != nil {
		fn.Runtime = *raw.Runtime
	}
	if raw.PackageType != nil {
		fn.PackageType = *raw.PackageType
	}
	if raw.ImageURI != nil {
		fn.ImageURI = *raw.ImageURI
	}
	diags = append(diags, onlyOne("image_config", imageConfigBlocks)...)
	for _, b := range imageConfigBlocks[:min(1, len(imageConfigBlocks))] {
		var ic struct {
			EntryPoint       *[]string `hcl:"entry_point,optional"`
			Command          *[]string `hcl:"command,optional"`
			WorkingDirectory *string   `hcl:"working_directory,optional"`
		}
		if d := gohcl.DecodeBody(b.Body, ctx, &ic); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		fn.ImageConfig = &structs.ImageConfig{}
		if ic.EntryPoint != nil {
			fn.ImageConfig.EntryPoint = *ic.EntryPoint
		}
		if ic.Command != nil {
			fn.ImageConfig.Command = *ic.Command
		}
		if ic.WorkingDirectory != nil {
			fn.ImageConfig.WorkingDirectory = *ic.WorkingDirectory
		}
	}
	logBlocks := blocks["logging_config"]
	diags = append(diags, onlyOne("logging_config", logBlocks)...)
	for _, b := range logBlocks[:min(1, len(logBlocks))] {
		var lc struct {
			LogFormat           *string `hcl:"log_format,optional"`
			ApplicationLogLevel *string `hcl:"application_log_level,optional"`
			SystemLogLevel      *string `hcl:"system_log_level,optional"`
			LogGroup            *string `hcl:"log_group,optional"`
		}
		if d := gohcl.DecodeBody(b.Body, ctx, &lc); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		fn.Logging = &structs.LoggingConfig{}
		for dst, src := range map[*string]*string{&fn.Logging.LogFormat: lc.LogFormat, &fn.Logging.ApplicationLogLevel: lc.ApplicationLogLevel,
			&fn.Logging.SystemLogLevel: lc.SystemLogLevel, &fn.Logging.LogGroup: lc.LogGroup} {
			if src != nil {
				*dst = *src
			}
		}
	}
	for i, b := range networkBlocks {
		if i > 0 {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate network block",
				Detail: fmt.Sprintf("A function is on one network; its network block is at %s.", networkBlocks[0].DefRange), Subject: &rng})
			continue
		}
		var nb struct {
			Name           string    `hcl:"name"`
			EgressPolicies *[]string `hcl:"egress_policies,optional"`
		}
		if d := gohcl.DecodeBody(b.Body, ctx, &nb); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		fn.Network = &structs.FunctionNetwork{Name: nb.Name}
		if nb.EgressPolicies != nil {
			fn.Network.EgressPolicies = *nb.EgressPolicies
		}
	}
	switch {
	case fn.IsImage() && isSet(raw.Code):
		diags = append(diags, rangeDiag("Code of an image function", "An image function's code is its image (image_uri): remove code.", raw.Code.Range()))
	case fn.IsImage():
	case !isSet(raw.Code):
		diags = append(diags, rangeDiag("Missing code", "A function needs code: a folder or a .zip file (relative to this file), or package_type = \"Image\" with image_uri.", blk.DefRange))
	case raw.Runtime == nil:
		diags = append(diags, rangeDiag("Missing runtime", "A zip function needs a runtime (provided.al2023, provided.al2 or provided).", blk.DefRange))
	}
	if !fn.IsImage() && isSet(raw.Code) {
		code, d := codePath(raw.Code, ctx, baseDir, "function")
		diags = append(diags, d...)
		fn.Code = code
	}
	if raw.CodeSigningConfig != nil {
		fn.CodeSigningConfig, fn.CodeSigningConfigRange = *raw.CodeSigningConfig, at("code_signing_config")
	}
	if isSet(raw.CodeSignature) {
		if fn.IsImage() {
			diags = append(diags, rangeDiag("Code signature of an image", "An image's signatures are in its registry beside it (cosign sign): remove code_signature.", raw.CodeSignature.Range()))
		} else {
			p, d := codeSignaturePath(raw.CodeSignature, ctx, baseDir, fn.Code)
			diags = append(diags, d...)
			fn.CodeSignature = p
		}
	}
	if raw.Handler != nil {
		fn.Handler = *raw.Handler
	}
	if raw.Description != nil {
		fn.Description = *raw.Description
	}
	if raw.MemoryMB != nil {
		fn.MemoryMB = *raw.MemoryMB
	}
	if raw.EphemeralStorageMB != nil {
		fn.EphemeralStorageMB = *raw.EphemeralStorageMB
	}
	// A duration that does not parse keeps the default, so its one diagnostic is the parse's.
	if isSet(raw.Timeout) {
		if t, d := durationValue(raw.Timeout, ctx); d.HasErrors() {
			diags = append(diags, d...)
		} else {
			fn.Timeout = t
		}
	}
	if isSet(raw.FreezeDelay) {
		if t, d := durationValue(raw.FreezeDelay, ctx); d.HasErrors() {
			diags = append(diags, d...)
		} else {
			fn.FreezeDelay = &t
		}
	}
	if raw.Publish != nil {
		fn.Publish = *raw.Publish
	}
	for _, b := range fsBlocks {
		c, d := decodeFileSystem(b, ctx)
		diags = append(diags, d...)
		if c != nil {
			fn.FileSystems = append(fn.FileSystems, *c)
		}
	}
	if raw.DeadLetterTarget != nil {
		fn.DeadLetterTarget = *raw.DeadLetterTarget // checked with the function's other rules below
	}
	if isSet(raw.Layers) {
		refs, d := decodeLayerRefs(raw.Layers, ctx)
		diags = append(diags, d...)
		fn.Layers = refs
	}
	if raw.Reserved != nil {
		fn.ReservedConcurrency = raw.Reserved
		diags = append(diags, fieldDiags(structs.ValidateReservedConcurrency(*raw.Reserved), functionAttrs, at)...)
	}
	seen := map[string]hcl.Range{}
	for _, b := range aliasBlocks {
		a, d := decodeAlias(b, ctx)
		diags = append(diags, d...)
		if a == nil {
			continue
		}
		if first, dup := seen[a.Name]; dup {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate alias",
				Detail: fmt.Sprintf("Alias %q is already declared at %s.", a.Name, first), Subject: &rng})
			continue
		}
		seen[a.Name] = b.DefRange
		fn.Aliases = append(fn.Aliases, a)
	}
	provSeen := map[string]hcl.Range{}
	provTotal := 0
	for _, b := range provBlocks {
		p, d := decodeProvisioned(b, ctx, seen)
		diags = append(diags, d...)
		if p == nil {
			continue
		}
		if first, dup := provSeen[p.Qualifier]; dup {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate provisioned_concurrency",
				Detail: fmt.Sprintf("Qualifier %q already has a provisioned_concurrency block at %s.", p.Qualifier, first), Subject: &rng})
			continue
		}
		provSeen[p.Qualifier] = b.DefRange
		provTotal += p.Count
		if fn.ReservedConcurrency != nil && provTotal > *fn.ReservedConcurrency && *fn.ReservedConcurrency >= 0 {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Provisioned concurrency above the reservation",
				Detail: fmt.Sprintf("The provisioned_concurrency blocks ask for %d environments, more than reserved_concurrency = %d allows to run.", provTotal, *fn.ReservedConcurrency), Subject: &rng})
		}
		fn.Provisioned = append(fn.Provisioned, p)
	}
	trigSeen := map[string]hcl.Range{}
	for _, b := range triggerBlocks {
		tr, d := decodeTrigger(b, ctx, fn.Name, seen)
		diags = append(diags, d...)
		if tr == nil {
			continue
		}
		if first, dup := trigSeen[tr.Name]; dup {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate trigger",
				Detail: fmt.Sprintf("Trigger %q is already declared at %s.", tr.Name, first), Subject: &rng})
			continue
		}
		trigSeen[tr.Name] = b.DefRange
		fn.Triggers = append(fn.Triggers, tr)
	}
	fn.Async, d = decodeAsyncBlocks(asyncBlocks, ctx, fn, seen)
	diags = append(diags, d...)
	for i, b := range urlBlocks {
		if i > 0 {
			rng := b.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate url block",
				Detail: fmt.Sprintf("A function has one url block; the first is at %s.", urlBlocks[0].DefRange), Subject: &rng})
			continue
		}
		u, d := decodeURL(b, ctx)
		diags = append(diags, d...)
		fn.URL = u
	}
	if raw.Environment != nil {
		for k, v := range *raw.Environment {
			fn.Environment[k] = v
		}
	}
	// The rules the Lambda API applies too (internal/structs), on the attributes' ranges. The
	// layers' versions and sizes are known only when applying; their count, names and the
	// package type are checked here.
	sf := fn.Structs()
	for _, r := range fn.Layers {
		name := r.Layer
		if r.ARN != "" {
			name = layerARNName(r.ARN)
		}
		sf.Layers = append(sf.Layers, structs.FunctionLayer{Name: name})
	}
	errs := sf.Validate()
	if raw.Runtime == nil && !fn.IsImage() {
		// Said above as "Missing runtime".
		errs = slices.DeleteFunc(errs, func(e structs.FieldError) bool { return e.Field == "Runtime" })
	}
	diags = append(diags, fieldDiags(errs, functionAttrs, func(attr string) hcl.Range {
		switch {
		case attr == "":
			return blk.LabelRanges[0]
		case attr == "network" && len(networkBlocks) > 0:
			return networkBlocks[0].DefRange
		case strings.HasPrefix(attr, "logging_config.") && len(logBlocks) > 0:
			lcAttrs, _ := logBlocks[0].Body.JustAttributes()
			if a, ok := lcAttrs[strings.TrimPrefix(attr, "logging_config.")]; ok {
				return a.Expr.Range()
			}
			return logBlocks[0].DefRange
		}
		return at(attr)
	})...)
	return fn, diags
}

// decodeFileSystem reads a function's file_system block:
//
//	file_system { name = "shared"  access_point = "team-a"  local_mount_path = "/mnt/shared"  read_only = false }
//
// Its rules are the function's (structs.ValidateFileSystems, the API's too), checked with the
// function's other settings; whether the agents declare the file system is for apply to learn.
func decodeFileSystem(blk *hcl.Block, ctx *hcl.EvalContext) (*structs.FileSystemConfig, hcl.Diagnostics) {
	var raw struct {
		Name           string  `hcl:"name"`
		AccessPoint    *string `hcl:"access_point,optional"`
		LocalMountPath string  `hcl:"local_mount_path"`
		ReadOnly       *bool   `hcl:"read_only,optional"`
	}
	if diags := gohcl.DecodeBody(blk.Body, ctx, &raw); diags.HasErrors() {
		return nil, diags
	}
	c := &structs.FileSystemConfig{FileSystem: raw.Name, LocalMountPath: raw.LocalMountPath}
	if raw.AccessPoint != nil {
		c.AccessPoint = *raw.AccessPoint
	}
	if raw.ReadOnly != nil {
		c.ReadOnly = *raw.ReadOnly
	}
	return c, nil
}

// decodeAsyncBlocks reads a function's async blocks and those of its aliases (aliases are its
// alias blocks): one per qualifier.
func decodeAsyncBlocks(blocks []*hcl.Block, ctx *hcl.EvalContext, fn *Function, aliases map[string]hcl.Range) ([]*AsyncConfig, hcl.Diagnostics) {
	type block struct {
		blk   *hcl.Block
		alias string
	}
	all := make([]block, 0, len(blocks))
	for _, b := range blocks {
		all = append(all, block{blk: b})
	}
	for _, a := range fn.Aliases {
		for _, b := range a.asyncBlocks {
			all = append(all, block{blk: b, alias: a.Name})
		}
	}
	// In file order, so the later of two blocks for one qualifier is the duplicate.
	sort.SliceStable(all, func(i, j int) bool { return all[i].blk.DefRange.Start.Byte < all[j].blk.DefRange.Start.Byte })
	var out []*AsyncConfig
	var diags hcl.Diagnostics
	seen := map[string]hcl.Range{}
	for _, b := range all {
		a, d := decodeAsync(b.blk, ctx, fn.Name, b.alias, aliases)
		diags = append(diags, d...)
		if a == nil {
			continue
		}
		if first, dup := seen[a.Qualifier]; dup {
			rng := b.blk.DefRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate async block",
				Detail: fmt.Sprintf("Qualifier %q already has an async block at %s.", a.Qualifier, first), Subject: &rng})
			continue
		}
		seen[a.Qualifier] = b.blk.DefRange
		out = append(out, a)
	}
	return out, diags
}

// codePath reads a code attribute of a function or layer (what): a folder or a .zip file,
// relative to the file's folder baseDir. The path is returned even when it does not exist
// (with a diagnostic); "" when the expression is not a string.
func codePath(expr hcl.Expression, ctx *hcl.EvalContext, baseDir, what string) (string, hcl.Diagnostics) {
	var code string
	if d := gohcl.DecodeExpression(expr, ctx, &code); d.HasErrors() {
		return "", d
	}
	if !filepath.IsAbs(code) {
		code = filepath.Join(baseDir, code)
	}
	if st, err := os.Stat(code); err != nil {
		return code, hcl.Diagnostics{rangeDiag("Code not found", fmt.Sprintf("%s: %v. Build the %s first, or fix the path (relative to this file).", code, err, what), expr.Range())}
	} else if !st.IsDir() && !strings.HasSuffix(strings.ToLower(code), ".zip") {
		return code, hcl.Diagnostics{rangeDiag("Invalid code", fmt.Sprintf("%s is neither a folder nor a .zip file.", code), expr.Range())}
	}
	return code, nil
}

// firstDecl records the declaration of kind name at rng in seen, or, when name was declared
// before, returns the diagnostic of this second declaration.
func firstDecl(seen map[string]hcl.Range, kind, name string, rng hcl.Range) *hcl.Diagnostic {
	if prev, dup := seen[name]; dup {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate " + strings.ToLower(kind),
			Detail: fmt.Sprintf("%s %q is also declared at %s.", kind, name, prev), Subject: &rng}
	}
	seen[name] = rng
	return nil
}

// onlyOne refuses every block of a kind a function has one of, after the first.
func onlyOne(kind string, blocks []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, b := range blocks[min(1, len(blocks)):] {
		rng := b.DefRange
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate " + kind + " block",
			Detail: fmt.Sprintf("A function has one %s block; the first is at %s.", kind, blocks[0].DefRange), Subject: &rng})
	}
	return diags
}
