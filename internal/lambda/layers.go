package lambda

import (
	"strconv"

	"github.com/lambdagw/gateway/internal/structs"
)

// LayerARN is arn:aws:lambda:<region>:<account>:layer:<name>, and with its version when
// version > 0.
func LayerARN(region, name string, version int64) string {
	arn := "arn:aws:lambda:" + region + ":" + DefaultAccount + ":layer:" + name
	if version > 0 {
		arn += ":" + strconv.FormatInt(version, 10)
	}
	return arn
}

// ParseLayerVersionARN splits a layer version's ARN into the region, the layer's name and the
// version; an ARN of another account is refused (the gateway has one).
func ParseLayerVersionARN(arn string) (region, name string, version int64, err error) {
	a, perr := structs.ParseLayerVersionARN(arn)
	if perr != nil {
		return "", "", 0, InvalidParameter("%v", perr)
	}
	if a.Account != DefaultAccount {
		return "", "", 0, InvalidParameter("%q: layers of account %s are not on this gateway (its account is %s)", arn, a.Account, DefaultAccount)
	}
	return a.Region, a.Name, a.Version, nil
}

// LayerContentInput is the zip of PublishLayerVersion.
type LayerContentInput struct {
	ZipFile []byte `json:"ZipFile,omitempty"`
	// GatewayCodeSha256 names a zip the node holds instead of ZipFile (see FunctionCode).
	GatewayCodeSha256 string `json:"GatewayCodeSha256,omitempty"`
	UnsupportedCode
}

// PublishLayerVersionInput is the body of PublishLayerVersion
// (POST /2018-10-31/layers/{name}/versions).
type PublishLayerVersionInput struct {
	Content                 LayerContentInput `json:"Content"`
	Description             string            `json:"Description,omitempty"`
	CompatibleRuntimes      []string          `json:"CompatibleRuntimes,omitempty"`
	CompatibleArchitectures []string          `json:"CompatibleArchitectures,omitempty"`
	LicenseInfo             string            `json:"LicenseInfo,omitempty"`
}

// LayerContentOutput describes a layer version's zip.
type LayerContentOutput struct {
	Location   string `json:"Location"`
	CodeSha256 string `json:"CodeSha256"`
	CodeSize   int64  `json:"CodeSize"`
}

// LayerVersionOutput is the answer of PublishLayerVersion, GetLayerVersion and
// GetLayerVersionByArn: a listed version with its content and its layer's ARN.
type LayerVersionOutput struct {
	Content  *LayerContentOutput `json:"Content"`
	LayerArn string              `json:"LayerArn"`
	LayerVersionsListItem
}

// LayerVersionsListItem is a layer version in ListLayerVersions and ListLayers.
type LayerVersionsListItem struct {
	LayerVersionArn         string   `json:"LayerVersionArn"`
	Version                 int64    `json:"Version"`
	Description             string   `json:"Description"`
	CreatedDate             string   `json:"CreatedDate"`
	CompatibleRuntimes      []string `json:"CompatibleRuntimes,omitempty"`
	CompatibleArchitectures []string `json:"CompatibleArchitectures,omitempty"`
	LicenseInfo             string   `json:"LicenseInfo,omitempty"`
}

// LayersListItem is a layer in ListLayers, with its latest version that matches the filters.
type LayersListItem struct {
	LayerName             string                 `json:"LayerName"`
	LayerArn              string                 `json:"LayerArn"`
	LatestMatchingVersion *LayerVersionsListItem `json:"LatestMatchingVersion"`
}

// ListLayersOutput is the answer of ListLayers.
type ListLayersOutput struct {
	Layers     []LayersListItem `json:"Layers"`
	NextMarker *string          `json:"NextMarker,omitempty"`
}

// ListLayerVersionsOutput is the answer of ListLayerVersions, newest first.
type ListLayerVersionsOutput struct {
	LayerVersions []LayerVersionsListItem `json:"LayerVersions"`
	NextMarker    *string                 `json:"NextMarker,omitempty"`
}

// AddLayerVersionPermissionInput is the body of AddLayerVersionPermission.
type AddLayerVersionPermissionInput struct {
	StatementId    string `json:"StatementId"` //nolint:revive // Lambda's field name
	Action         string `json:"Action"`
	Principal      string `json:"Principal"`
	OrganizationId string `json:"OrganizationId,omitempty"` //nolint:revive // Lambda's field name
}

// AddLayerVersionPermissionOutput is the answer of AddLayerVersionPermission.
type AddLayerVersionPermissionOutput struct {
	Statement  string `json:"Statement"`
	RevisionId string `json:"RevisionId"` //nolint:revive // Lambda's field name
}

// GetLayerVersionPolicyOutput is the answer of GetLayerVersionPolicy.
type GetLayerVersionPolicyOutput struct {
	Policy     string `json:"Policy"`
	RevisionId string `json:"RevisionId"` //nolint:revive // Lambda's field name
}

// FunctionLayer is a layer in a function's configuration.
type FunctionLayer struct {
	Arn      string `json:"Arn"`
	CodeSize int64  `json:"CodeSize"`
}

// LayerVersionFrom describes a stored layer version as Lambda does.
func LayerVersionFrom(l *structs.LayerVersion, region string) *LayerVersionOutput {
	return &LayerVersionOutput{
		Content: &LayerContentOutput{Location: "gateway://code/" + l.CodeSha256,
			CodeSha256: Base64Sha256(l.CodeSha256), CodeSize: l.CodeSize},
		LayerArn:              LayerARN(region, l.Name, 0),
		LayerVersionsListItem: LayerVersionItem(l, region),
	}
}

// LayerVersionItem is a stored layer version as the list operations describe it.
func LayerVersionItem(l *structs.LayerVersion, region string) LayerVersionsListItem {
	return LayerVersionsListItem{LayerVersionArn: LayerARN(region, l.Name, l.Version), Version: l.Version,
		Description: l.Description, CreatedDate: l.CreatedDate.UTC().Format(LastModifiedFormat),
		CompatibleRuntimes: l.CompatibleRuntimes, CompatibleArchitectures: l.CompatibleArchitectures, LicenseInfo: l.LicenseInfo}
}
