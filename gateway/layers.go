package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// LayerStore reads layer versions locally and writes them through Raft (the cluster node).
type LayerStore interface {
	LayerVersion(name string, v int64) (*structs.LayerVersion, bool)
	LayerVersions(name string) []*structs.LayerVersion
	PublishLayerVersion(ctx context.Context, l *structs.LayerVersion) (*structs.LayerVersion, error)
	DeleteLayerVersion(ctx context.Context, name string, v int64) error
	PutLayerPolicy(ctx context.Context, name string, v int64, add *structs.LayerStatement, removeSid, expectRevision, revision string) (*structs.LayerVersion, error)
}

// errNoLayer is Lambda's answer for a layer version that does not exist.
func errNoLayer() error {
	return lambda.ResourceNotFound("The resource you requested does not exist.")
}

// layerName is the name a LayerName parameter gives: the name itself, or the layer's ARN
// (arn:aws:lambda:REGION:ACCOUNT:layer:NAME), as Lambda takes it.
func layerName(s string) (string, error) {
	name := s
	if parts := strings.Split(s, ":"); len(parts) == 7 && parts[0] == "arn" && parts[5] == "layer" {
		name = parts[6]
	}
	if !structs.ValidLayerName(name) {
		return "", lambda.InvalidParameter("LayerName %q: a layer name has 1 to %d letters, digits, '-' or '_' (or is the layer's ARN)", s, structs.MaxLayerNameLen)
	}
	return name, nil
}

// PublishLayerVersion stores a layer's zip and publishes it as the layer's next version.
func (g *Gateway) PublishLayerVersion(ctx context.Context, name string, in *lambda.PublishLayerVersionInput) (*lambda.LayerVersionOutput, error) {
	name, err := layerName(name)
	if err != nil {
		return nil, err
	}
	if err := in.Content.Unsupported("Content."); err != nil {
		return nil, err
	}
	l := &structs.LayerVersion{Name: name, Description: in.Description, CompatibleRuntimes: in.CompatibleRuntimes,
		CompatibleArchitectures: in.CompatibleArchitectures, LicenseInfo: in.LicenseInfo, CreatedDate: time.Now().UTC()}
	if err := lambda.InvalidFields(l.Validate()); err != nil {
		return nil, err
	}
	if len(in.Content.ZipFile) == 0 && in.Content.GatewayCodeSha256 == "" {
		return nil, lambda.InvalidParameter("Content.ZipFile is required")
	}
	code, err := g.code(ctx, in.Content.ZipFile, in.Content.GatewayCodeSha256)
	if err != nil {
		return nil, err
	}
	if code.unzipped > structs.MaxUnzippedCodeBytes {
		return nil, lambda.InvalidParameter("the layer unzips to %d bytes (%.1f MB), over the limit of %d MB", code.unzipped, float64(code.unzipped)/(1<<20), structs.MaxUnzippedCodeBytes>>20)
	}
	l.CodeSha256, l.CodeSize, l.UnzippedSize = code.sha, code.size, code.unzipped
	stored, err := g.cfg.Store.PublishLayerVersion(ctx, l)
	if err != nil {
		return nil, g.storeError(name, err)
	}
	return lambda.LayerVersionFrom(stored, g.cfg.Region), nil
}

// layerKey reads a LayerName (a name or the layer's ARN) and a VersionNumber.
func layerKey(name, version string) (string, int64, error) {
	name, err := layerName(name)
	if err != nil {
		return "", 0, err
	}
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil || v < 1 {
		return "", 0, lambda.InvalidParameter("VersionNumber %q is not a layer version number", version)
	}
	return name, v, nil
}

// layerVersion finds a layer version by name and number.
func (g *Gateway) layerVersion(name, version string) (*structs.LayerVersion, error) {
	name, v, err := layerKey(name, version)
	if err != nil {
		return nil, err
	}
	l, ok := g.cfg.Store.LayerVersion(name, v)
	if !ok {
		return nil, errNoLayer()
	}
	return l, nil
}

// GetLayerVersion describes a layer version.
func (g *Gateway) GetLayerVersion(name, version string) (*lambda.LayerVersionOutput, error) {
	l, err := g.layerVersion(name, version)
	if err != nil {
		return nil, err
	}
	return lambda.LayerVersionFrom(l, g.cfg.Region), nil
}

// GetLayerVersionByArn describes the layer version an ARN names.
func (g *Gateway) GetLayerVersionByArn(arn string) (*lambda.LayerVersionOutput, error) {
	l, err := g.layerByARN(arn)
	if err != nil {
		return nil, err
	}
	return lambda.LayerVersionFrom(l, g.cfg.Region), nil
}

func (g *Gateway) layerByARN(arn string) (*structs.LayerVersion, error) {
	region, name, v, err := lambda.ParseLayerVersionARN(arn)
	if err != nil {
		return nil, err
	}
	if region != g.cfg.Region {
		return nil, lambda.InvalidParameter("%s: the layer is in region %s; this gateway's region is %s", arn, region, g.cfg.Region)
	}
	l, ok := g.cfg.Store.LayerVersion(name, v)
	if !ok {
		return nil, errNoLayer()
	}
	return l, nil
}

// matches reports whether a layer version suits the ListLayers and ListLayerVersions filters.
func layerMatches(l *structs.LayerVersion, runtime, arch string) bool {
	return (runtime == "" || slices.Contains(l.CompatibleRuntimes, runtime)) &&
		(arch == "" || slices.Contains(l.CompatibleArchitectures, arch))
}

func pageSize(maxItems int) int {
	if maxItems <= 0 || maxItems > 50 {
		return 50
	}
	return maxItems
}

// ListLayers lists the layers with the latest version of each that matches the filters, by
// name; marker is the last name of the previous page.
func (g *Gateway) ListLayers(runtime, arch, marker string, maxItems int) *lambda.ListLayersOutput {
	maxItems = pageSize(maxItems)
	out := &lambda.ListLayersOutput{Layers: []lambda.LayersListItem{}}
	latest := map[string]*structs.LayerVersion{}
	var names []string
	for _, l := range g.cfg.Store.LayerVersions("") {
		if !layerMatches(l, runtime, arch) {
			continue
		}
		if _, seen := latest[l.Name]; !seen {
			names = append(names, l.Name)
		}
		latest[l.Name] = l // oldest first: the last one seen is the latest
	}
	for _, name := range names {
		if marker != "" && name <= markerName(marker) {
			continue
		}
		if len(out.Layers) == maxItems {
			next := encodeMarker(out.Layers[len(out.Layers)-1].LayerName)
			out.NextMarker = &next
			break
		}
		item := lambda.LayerVersionItem(latest[name], g.cfg.Region)
		out.Layers = append(out.Layers, lambda.LayersListItem{LayerName: name,
			LayerArn: lambda.LayerARN(g.cfg.Region, name, 0), LatestMatchingVersion: &item})
	}
	return out
}

// ListLayerVersions lists a layer's versions that match the filters, newest first; marker is
// the last version of the previous page.
func (g *Gateway) ListLayerVersions(name, runtime, arch, marker string, maxItems int) (*lambda.ListLayerVersionsOutput, error) {
	name, err := layerName(name)
	if err != nil {
		return nil, err
	}
	maxItems = pageSize(maxItems)
	after := int64(0)
	if marker != "" {
		after, _ = strconv.ParseInt(markerName(marker), 10, 64)
	}
	out := &lambda.ListLayerVersionsOutput{LayerVersions: []lambda.LayerVersionsListItem{}}
	vs := g.cfg.Store.LayerVersions(name)
	for i := len(vs) - 1; i >= 0; i-- {
		l := vs[i]
		if (after > 0 && l.Version >= after) || !layerMatches(l, runtime, arch) {
			continue
		}
		if len(out.LayerVersions) == maxItems {
			next := encodeMarker(strconv.FormatInt(out.LayerVersions[len(out.LayerVersions)-1].Version, 10))
			out.NextMarker = &next
			break
		}
		out.LayerVersions = append(out.LayerVersions, lambda.LayerVersionItem(l, g.cfg.Region))
	}
	return out, nil
}

// DeleteLayerVersion deletes a layer version; deleting one that does not exist succeeds, as in
// Lambda. Functions that use it keep running it.
func (g *Gateway) DeleteLayerVersion(ctx context.Context, name, version string) error {
	name, v, err := layerKey(name, version)
	if err != nil {
		return err
	}
	err = g.cfg.Store.DeleteLayerVersion(ctx, name, v)
	if se := g.cfg.StoreErrors; err == nil || (se.NotFound != nil && errors.Is(err, se.NotFound)) {
		return nil
	}
	return g.storeError(name, err)
}

var layerStatementIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,100}$`)
var accountRE = regexp.MustCompile(`^\d{12}$`)
var orgIDRE = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)

// AddLayerVersionPermission adds a statement to a layer version's policy. The gateway keeps it
// for the tools that read it back: every layer is usable by every function of the gateway.
func (g *Gateway) AddLayerVersionPermission(ctx context.Context, name, version, revision string, in *lambda.AddLayerVersionPermissionInput) (*lambda.AddLayerVersionPermissionOutput, error) {
	l, err := g.layerVersion(name, version)
	if err != nil {
		return nil, err
	}
	switch {
	case !layerStatementIDRE.MatchString(in.StatementId):
		return nil, lambda.InvalidParameter("StatementId %q: 1 to 100 letters, digits, '-' and '_'", in.StatementId)
	case in.Action != "lambda:GetLayerVersion":
		return nil, lambda.InvalidParameter("Action %q: a layer's permission grants lambda:GetLayerVersion", in.Action)
	case in.Principal != "*" && !accountRE.MatchString(in.Principal):
		return nil, lambda.InvalidParameter("Principal %q: an account id (12 digits) or *", in.Principal)
	case in.OrganizationId != "" && !orgIDRE.MatchString(in.OrganizationId):
		return nil, lambda.InvalidParameter("OrganizationId %q is not an organization id (o-...)", in.OrganizationId)
	case in.OrganizationId != "" && in.Principal != "*":
		return nil, lambda.InvalidParameter("OrganizationId goes with Principal *")
	}
	principal := any("*")
	if in.Principal != "*" {
		principal = map[string]string{"AWS": "arn:aws:iam::" + in.Principal + ":root"}
	}
	stmt := map[string]any{"Sid": in.StatementId, "Effect": "Allow", "Principal": principal, "Action": in.Action,
		"Resource": lambda.LayerARN(g.cfg.Region, l.Name, l.Version)}
	if in.OrganizationId != "" {
		stmt["Condition"] = map[string]map[string]string{"StringEquals": {"aws:PrincipalOrgID": in.OrganizationId}}
	}
	raw, err := json.Marshal(stmt)
	if err != nil {
		return nil, err
	}
	stored, err := g.cfg.Store.PutLayerPolicy(ctx, l.Name, l.Version, &structs.LayerStatement{Sid: in.StatementId, Statement: raw}, "", revision, uuid.NewString())
	if err != nil {
		return nil, g.layerPolicyError(in.StatementId, err)
	}
	return &lambda.AddLayerVersionPermissionOutput{Statement: string(raw), RevisionId: stored.PolicyRevision}, nil
}

func (g *Gateway) layerPolicyError(sid string, err error) error {
	se := g.cfg.StoreErrors
	switch {
	case se.Exists != nil && errors.Is(err, se.Exists):
		return lambda.ResourceConflict("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", sid)
	case se.Conflict != nil && errors.Is(err, se.Conflict):
		return lambda.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetLayerVersionPolicy API to retrieve the latest Revision Id")
	case se.NotFound != nil && errors.Is(err, se.NotFound):
		return errNoLayer()
	}
	return g.storeError("", err)
}

// GetLayerVersionPolicy returns a layer version's policy as JSON.
func (g *Gateway) GetLayerVersionPolicy(name, version string) (*lambda.GetLayerVersionPolicyOutput, error) {
	l, err := g.layerVersion(name, version)
	if err != nil {
		return nil, err
	}
	if len(l.Policy) == 0 {
		return nil, lambda.ResourceNotFound("No policy is associated with the given resource.")
	}
	stmts := make([]json.RawMessage, 0, len(l.Policy))
	for _, st := range l.Policy {
		stmts = append(stmts, st.Statement)
	}
	raw, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": "default", "Statement": stmts})
	if err != nil {
		return nil, err
	}
	return &lambda.GetLayerVersionPolicyOutput{Policy: string(raw), RevisionId: l.PolicyRevision}, nil
}

// RemoveLayerVersionPermission removes a statement from a layer version's policy.
func (g *Gateway) RemoveLayerVersionPermission(ctx context.Context, name, version, sid, revision string) error {
	l, err := g.layerVersion(name, version)
	if err != nil {
		return err
	}
	if _, err := g.cfg.Store.PutLayerPolicy(ctx, l.Name, l.Version, nil, sid, revision, uuid.NewString()); err != nil {
		return g.layerPolicyError(sid, err)
	}
	return nil
}

// setLayers resolves a function's layer version ARNs and pins the function to their content;
// nil or empty removes its layers.
func (g *Gateway) setLayers(fn *structs.Function, arns []string) error {
	fn.Layers = nil
	for _, arn := range arns {
		region, name, v, err := lambda.ParseLayerVersionARN(arn)
		if err != nil {
			return err
		}
		l, ok := g.cfg.Store.LayerVersion(name, v)
		if !ok || region != g.cfg.Region {
			return lambda.InvalidParameter("Layer version %s does not exist.", arn)
		}
		fn.Layers = append(fn.Layers, structs.FunctionLayer{Name: l.Name, Version: l.Version,
			CodeSha256: l.CodeSha256, CodeSize: l.CodeSize, UnzippedSize: l.UnzippedSize})
	}
	return lambda.InvalidFields(fn.ValidateLayers())
}
