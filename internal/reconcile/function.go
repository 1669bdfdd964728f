package reconcile

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/gateway/api"
	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// Size shows a byte count as apply and `gateway functions` do: "3.0 MB", "12.5 KB", "80 B".
func Size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// uploading is a context whose code uploads report their progress. The request carries the
// zip base64-encoded in JSON, about 4/3 of the zip's size: the line names both.
func uploading(ctx context.Context, pkg *codepkg.Package, progress func(string)) context.Context {
	return api.WithUploadProgress(ctx, func(sent, total int64) {
		progress(fmt.Sprintf("uploading code: %s of the %s request sent (the %s zip, base64-encoded)", Size(sent), Size(total), Size(pkg.Size)))
	})
}

// codeFor is the Code of a create or update: a reference to the zip when the agent already
// holds it (functions sharing a code folder upload it once), else the zip itself; and the word
// for what was sent. It is decided when applying: an earlier function may have uploaded it.
func codeFor(ctx context.Context, a Agent, pkg *codepkg.Package) (lambda.FunctionCode, string) {
	if has, err := a.HasCode(ctx, pkg.Sha256); err == nil && has {
		return lambda.FunctionCode{GatewayCodeSha256: pkg.Sha256}, "already on the agent"
	}
	return lambda.FunctionCode{ZipFile: pkg.Data}, "uploaded"
}

func freezeOption(fn *config.Function) *lambda.GatewayOptions {
	if fn.FreezeDelay == nil {
		return nil
	}
	ms := int64(*fn.FreezeDelay / time.Millisecond)
	return &lambda.GatewayOptions{FreezeDelayMs: &ms}
}

func createInput(fn *config.Function) *lambda.CreateFunctionInput {
	memory, timeout := fn.MemoryMB, int(fn.Timeout/time.Second)
	in := &lambda.CreateFunctionInput{
		FunctionName: fn.Name, Runtime: fn.Runtime, Handler: fn.Handler, Description: fn.Description,
		MemorySize: &memory, Timeout: &timeout,
		Environment:      &lambda.Environment{Variables: fn.Environment},
		EphemeralStorage: &lambda.EphemeralStorage{Size: fn.EphemeralStorageMB},
		GatewayOptions:   freezeOption(fn),
	}
	if fn.DeadLetterTarget != "" {
		in.DeadLetterConfig = deadLetterConfig(fn.DeadLetterTarget)
	}
	if fn.Network != nil {
		in.VpcConfig = lambda.VpcConfigFrom(fn.Network)
	}
	if len(fn.FileSystems) > 0 {
		in.FileSystemConfigs = lambda.FileSystemConfigsInput(fn.FileSystems, wireRegion)
	}
	if fn.Logging != nil {
		in.LoggingConfig = apiLogging(fn)
	}
	if fn.CodeSigningConfig != "" {
		in.CodeSigningConfigArn = structs.CodeSigningConfigID(fn.CodeSigningConfig) // an ID is taken for its ARN
	}
	return in
}

// networkText describes a network setting for a plan: "none", or the network and its policies.
func networkText(n *structs.FunctionNetwork) string {
	if n == nil {
		return "none"
	}
	if len(n.EgressPolicies) == 0 {
		return n.Name
	}
	return n.Name + " " + fmt.Sprint(n.EgressPolicies)
}

// apiLogging is the function block's logging_config as the API takes it, every field set (an
// update sets them all back to what the block says).
func apiLogging(fn *config.Function) *lambda.LoggingConfig {
	return lambda.LoggingConfigFrom(&structs.Function{Name: fn.Name, Logging: fn.Logging})
}

// loggingText is a LoggingConfig for a plan: "Text" or "JSON (application INFO, system WARN)",
// with its log group when not the default.
func loggingText(l *lambda.LoggingConfig, function string) string {
	if l == nil {
		return "Text"
	}
	s := l.LogFormat
	if s == "" {
		s = "Text"
	}
	if l.LogFormat == "JSON" {
		s += " (application " + l.ApplicationLogLevel + ", system " + l.SystemLogLevel + ")"
	}
	if l.LogGroup != "" && l.LogGroup != structs.DefaultLogGroup(function) {
		s += " to " + l.LogGroup
	}
	return s
}

func apiImageConfig(ic *structs.ImageConfig) *lambda.ImageConfig {
	if ic == nil {
		return nil
	}
	return &lambda.ImageConfig{EntryPoint: ic.EntryPoint, Command: ic.Command, WorkingDirectory: ic.WorkingDirectory}
}

// createImageChange creates an image function: the agent pins the image's tag to its digest.
func createImageChange(fn *config.Function) Change {
	in := createInput(fn)
	in.PackageType, in.Code = structs.PackageImage, lambda.FunctionCode{ImageUri: fn.ImageURI}
	in.ImageConfig = apiImageConfig(fn.ImageConfig)
	return Change{Function: fn.Name, Kind: Create, Text: "to create (image " + fn.ImageURI + ")",
		apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
			out, err := a.CreateFunction(ctx, in)
			if err != nil {
				return "", fmt.Errorf("creating the function: %w", err)
			}
			return fmt.Sprintf("created (image %s, sha256:%s)", fn.ImageURI, out.CodeSha256), nil
		}}
}

// createChange creates a zip function with its layers, resolved when applying: a layer.NAME
// takes the version its layer's change published just before.
func createChange(fn *config.Function, pkg *codepkg.Package, layers wantLayers) Change {
	in := createInput(fn)
	text := fmt.Sprintf("to create (%s zip to upload", Size(pkg.Size))
	if len(layers.shown) > 0 {
		text += ", layers " + listText(layers.shown)
	}
	return Change{Function: fn.Name, Kind: Create, Text: text + ")",
		apply: func(ctx context.Context, a Agent, progress func(string)) (string, error) {
			req := *in
			var sent, with string
			if len(fn.Layers) > 0 {
				arns, err := layers.resolve()
				if err != nil {
					return "", err
				}
				req.Layers, with = arns, ", layers "+listText(layerTexts(arns))
			}
			req.Code, sent = codeFor(ctx, a, pkg)
			if _, err := a.CreateFunction(uploading(ctx, pkg, progress), &req); err != nil {
				return "", fmt.Errorf("creating the function: %w", err)
			}
			return fmt.Sprintf("created (code: %s zip %s%s)", Size(pkg.Size), sent, with), nil
		}}
}

// functionChanges are the code and configuration updates of a function that exists.
func functionChanges(cur *lambda.GetFunctionOutput, fn *config.Function, pkg *codepkg.Package, layers wantLayers, showSensitive bool) []Change {
	var out []Change
	cc := cur.Configuration
	if fn.IsImage() {
		// The image as named: a tag that moved since is followed when image_uri changes (or the
		// function is updated through the API), as Lambda and Terraform do.
		if cur.Code.ImageUri != fn.ImageURI {
			out = append(out, Change{Function: fn.Name, Kind: UpdateCode, Text: fmt.Sprintf("image to update (%s -> %s)", cur.Code.ImageUri, fn.ImageURI),
				apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
					res, err := a.UpdateFunctionCode(ctx, fn.Name, &lambda.UpdateFunctionCodeInput{ImageUri: fn.ImageURI})
					if err != nil {
						return "", fmt.Errorf("updating the image: %w", err)
					}
					return fmt.Sprintf("image updated (%s, sha256:%s)", fn.ImageURI, res.CodeSha256), nil
				}})
		}
	} else if cc.CodeSha256 != pkg.Base64Sha256() {
		out = append(out, Change{Function: fn.Name, Kind: UpdateCode, Text: fmt.Sprintf("code to update (%s zip to upload)", Size(pkg.Size)),
			apply: func(ctx context.Context, a Agent, progress func(string)) (string, error) {
				code, sent := codeFor(ctx, a, pkg)
				in := &lambda.UpdateFunctionCodeInput{ZipFile: code.ZipFile, GatewayCodeSha256: code.GatewayCodeSha256}
				if _, err := a.UpdateFunctionCode(uploading(ctx, pkg, progress), fn.Name, in); err != nil {
					return "", fmt.Errorf("updating the code: %w", err)
				}
				return fmt.Sprintf("code updated (%s zip %s)", Size(pkg.Size), sent), nil
			}})
	}
	in, diffs := configChanges(cc, fn, showSensitive)
	// The layers go with the other settings, in the same update; a new version's number is
	// known only when applying.
	curLayers := listText(layerTexts(layerARNs(cc.Layers)))
	layersChanged := layers.changed(cc.Layers)
	if layersChanged {
		diffs = append(diffs, "layers "+curLayers+" -> "+listText(layers.shown))
	}
	if len(diffs) > 0 {
		list := strings.Join(diffs, ", ")
		out = append(out, Change{Function: fn.Name, Kind: UpdateConfig, Text: "configuration to update (" + list + ")",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				req, done := *in, diffs
				if layersChanged {
					arns, err := layers.resolve()
					if err != nil {
						return "", err
					}
					req.Layers = &arns
					done = append(slices.Clip(diffs[:len(diffs)-1]), "layers "+curLayers+" -> "+listText(layerTexts(arns)))
				}
				if _, err := a.UpdateFunctionConfiguration(ctx, fn.Name, &req); err != nil {
					return "", fmt.Errorf("updating the configuration: %w", err)
				}
				return "configuration updated (" + strings.Join(done, ", ") + ")", nil
			}})
	}
	return out
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
	if fn.IsImage() {
		var curIC *lambda.ImageConfig
		if cc.ImageConfigResponse != nil {
			curIC = cc.ImageConfigResponse.ImageConfig
		}
		newIC := apiImageConfig(fn.ImageConfig)
		if !reflect.DeepEqual(normalImageConfig(curIC), normalImageConfig(newIC)) {
			diffs = append(diffs, fmt.Sprintf("image_config %s -> %s", imageConfigText(curIC), imageConfigText(newIC)))
			in.ImageConfig = newIC
			if in.ImageConfig == nil {
				in.ImageConfig = &lambda.ImageConfig{} // empty removes it; nil would leave it
			}
		}
	}
	var curDelay, newDelay any = "default", "default"
	if cc.GatewayOptions != nil && cc.GatewayOptions.FreezeDelayMs != nil {
		curDelay = time.Duration(*cc.GatewayOptions.FreezeDelayMs) * time.Millisecond
	}
	if fn.FreezeDelay != nil {
		newDelay = *fn.FreezeDelay
	}
	newTarget := "none"
	if fn.DeadLetterTarget != "" {
		newTarget = fn.DeadLetterTarget
	}
	if diff("dead_letter_target", deadLetterText(cc.DeadLetterConfig), newTarget) {
		in.DeadLetterConfig = deadLetterConfig(fn.DeadLetterTarget)
	}
	var curNet *structs.FunctionNetwork
	if v := cc.VpcConfig; v != nil && len(v.SubnetIds) > 0 {
		curNet = &structs.FunctionNetwork{Name: v.SubnetIds[0], EgressPolicies: v.SecurityGroupIds}
	}
	if diff("network", networkText(curNet), networkText(fn.Network)) {
		in.VpcConfig = lambda.VpcConfigFrom(fn.Network) // empty lists remove it
	}
	if diff("file_system", fileSystemsText(cc.FileSystemConfigs), fileSystemsWanted(fn.FileSystems)) {
		fss := lambda.FileSystemConfigsInput(fn.FileSystems, wireRegion)
		in.FileSystemConfigs = &fss // [] removes them
	}
	if want := apiLogging(fn); diff("logging_config", loggingText(cc.LoggingConfig, fn.Name), loggingText(want, fn.Name)) {
		in.LoggingConfig = want
	}
	if diff("freeze_delay", curDelay, newDelay) {
		in.GatewayOptions = freezeOption(fn)
		if in.GatewayOptions == nil {
			// An empty GatewayOptions sets the default back; nil would leave it.
			in.GatewayOptions = &lambda.GatewayOptions{}
		}
	}
	return in, diffs
}

// fileSystemsText is a function's file systems as the agent answers them, as file_system blocks
// show them: "shared/team-a at /mnt/data (read-only)"; "none" without. A file system set
// through the API by an EFS access point's ARN shows as its access point alone ("/team-a"):
// apply sets it once more, in the gateway's ARN, and the two then agree.
func fileSystemsText(fss []lambda.FileSystemConfig) string {
	var parts []string
	for _, c := range fss {
		parts = append(parts, fileSystemText(c.Name(), c.LocalMountPath, c.GatewayReadOnly))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// fileSystemsWanted is the function block's file systems as fileSystemsText shows them.
func fileSystemsWanted(fss []structs.FileSystemConfig) string {
	var parts []string
	for _, c := range fss {
		parts = append(parts, fileSystemText(c.Name(), c.LocalMountPath, c.ReadOnly))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func fileSystemText(name, path string, readOnly bool) string {
	s := name + " at " + path
	if readOnly {
		s += " (read-only)"
	}
	return s
}

// publishChange publishes $LATEST as a version; a new function's first is version 1.
func publishChange(name string, isNew bool) Change {
	text := "a new version to publish"
	if isNew {
		text = "version 1 to publish"
	}
	return Change{Function: name, Kind: Publish, Text: text,
		apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
			v, err := a.PublishVersion(ctx, name, &lambda.PublishVersionInput{})
			if err != nil {
				return "", fmt.Errorf("publishing a version: %w", err)
			}
			return "version " + v.Version + " published", nil
		}}
}

// reservedChanges sets or removes the reserved concurrency when it differs from the block's.
func reservedChanges(fn *config.Function, cur *int) []Change {
	name := fn.Name
	switch want := fn.ReservedConcurrency; {
	case want != nil && (cur == nil || *cur != *want):
		n, text := *want, fmt.Sprintf("reserved_concurrency %s -> %d", reservedText(cur), *want)
		return []Change{{Function: name, Kind: Reserved, Text: text,
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.PutFunctionConcurrency(ctx, name, n); err != nil {
					return "", fmt.Errorf("reserving concurrency: %w", err)
				}
				return text, nil
			}}}
	case want == nil && cur != nil:
		text := fmt.Sprintf("reserved_concurrency %d -> none", *cur)
		return []Change{{Function: name, Kind: Reserved, Text: text,
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.DeleteFunctionConcurrency(ctx, name); err != nil {
					return "", fmt.Errorf("removing the reserved concurrency: %w", err)
				}
				return text, nil
			}}}
	}
	return nil
}

func reservedText(n *int) string {
	if n == nil {
		return "none"
	}
	return strconv.Itoa(*n)
}

// normalImageConfig reads nil and empty alike.
func normalImageConfig(ic *lambda.ImageConfig) lambda.ImageConfig {
	if ic == nil {
		return lambda.ImageConfig{}
	}
	n := *ic
	if len(n.EntryPoint) == 0 {
		n.EntryPoint = nil
	}
	if len(n.Command) == 0 {
		n.Command = nil
	}
	return n
}

func imageConfigText(ic *lambda.ImageConfig) string {
	n := normalImageConfig(ic)
	if n.EntryPoint == nil && n.Command == nil && n.WorkingDirectory == "" {
		return "none"
	}
	return fmt.Sprintf("{entry_point %q, command %q, working_directory %q}", n.EntryPoint, n.Command, n.WorkingDirectory)
}
