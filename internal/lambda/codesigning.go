package lambda

import (
	"strings"

	"github.com/lambdagw/gateway/internal/structs"
)

// Code signing (2020-04-22 and 2020-06-30): code signing configurations, their attachment to
// functions, and the errors of a deploy whose code does not verify. Lambda names a publisher by
// the ARN of an AWS Signer signing profile version; the gateway's publishers are the agents'
// signing_publisher blocks, named by arn:aws:signer:<region>:<account>:/signing-profiles/<name>
// (a version after the name is allowed and kept).

// CodeSigningConfigNotFound is CodeSigningConfigNotFoundException (404).
func CodeSigningConfigNotFound(format string, a ...any) *Error {
	return newErr(404, "CodeSigningConfigNotFoundException", format, a...)
}

// CodeVerificationFailed is CodeVerificationFailedException (400): code no allowed publisher
// signed (or none at all, an expired certificate, a revoked key) under an Enforce policy.
func CodeVerificationFailed(format string, a ...any) *Error {
	return newErr(400, "CodeVerificationFailedException", format, a...)
}

// InvalidCodeSignature is InvalidCodeSignatureException (400): the signature failed the
// integrity check (refused whatever the policy, as Lambda does).
func InvalidCodeSignature(format string, a ...any) *Error {
	return newErr(400, "InvalidCodeSignatureException", format, a...)
}

// AllowedPublishers names a configuration's publishers by ARN.
type AllowedPublishers struct {
	SigningProfileVersionArns []string `json:"SigningProfileVersionArns"` //nolint:revive // Lambda's field name
}

// CodeSigningPolicies says what a deploy of code no allowed publisher signed does.
type CodeSigningPolicies struct {
	UntrustedArtifactOnDeployment string `json:"UntrustedArtifactOnDeployment,omitempty"`
}

// CodeSigningConfigInput is the body of CreateCodeSigningConfig and UpdateCodeSigningConfig
// (which changes what is set). GatewayName, the gateway's own, names the configuration of a
// function file's code_signing_config block (apply sets it): its ID is derived from the name.
type CodeSigningConfigInput struct {
	AllowedPublishers   *AllowedPublishers   `json:"AllowedPublishers,omitempty"`
	CodeSigningPolicies *CodeSigningPolicies `json:"CodeSigningPolicies,omitempty"`
	Description         *string              `json:"Description,omitempty"`
	Tags                map[string]string    `json:"Tags,omitempty"`
	GatewayName         string               `json:"GatewayName,omitempty"`
}

// CodeSigningConfig is Lambda's description of a configuration.
type CodeSigningConfig struct {
	AllowedPublishers    AllowedPublishers   `json:"AllowedPublishers"`
	CodeSigningConfigArn string              `json:"CodeSigningConfigArn"` //nolint:revive // Lambda's field name
	CodeSigningConfigId  string              `json:"CodeSigningConfigId"`  //nolint:revive
	CodeSigningPolicies  CodeSigningPolicies `json:"CodeSigningPolicies"`
	Description          string              `json:"Description"`
	LastModified         string              `json:"LastModified"`
	// GatewayName is the function file's name of the configuration, when it has one.
	GatewayName string `json:"GatewayName,omitempty"`
}

// CodeSigningConfigOutput wraps a configuration, as Create, Get and Update answer it.
type CodeSigningConfigOutput struct {
	CodeSigningConfig CodeSigningConfig `json:"CodeSigningConfig"`
}

// ListCodeSigningConfigsOutput is a page of ListCodeSigningConfigs.
type ListCodeSigningConfigsOutput struct {
	CodeSigningConfigs []CodeSigningConfig `json:"CodeSigningConfigs"`
	NextMarker         *string             `json:"NextMarker,omitempty"`
}

// ListFunctionsByCodeSigningConfigOutput is a page of ListFunctionsByCodeSigningConfig.
type ListFunctionsByCodeSigningConfigOutput struct {
	FunctionArns []string `json:"FunctionArns"` //nolint:revive // Lambda's field name
	NextMarker   *string  `json:"NextMarker,omitempty"`
}

// FunctionCodeSigningConfig is the body and answer of PutFunctionCodeSigningConfig and the
// answer of GetFunctionCodeSigningConfig ("" when the function has none).
type FunctionCodeSigningConfig struct {
	CodeSigningConfigArn string `json:"CodeSigningConfigArn"` //nolint:revive // Lambda's field name
	FunctionName         string `json:"FunctionName,omitempty"`
}

// CodeSigningConfigARN is arn:aws:lambda:<region>:<account>:code-signing-config:<id>.
func CodeSigningConfigARN(region, id string) string {
	return "arn:aws:lambda:" + region + ":" + DefaultAccount + ":code-signing-config:" + id
}

// ParseCodeSigningConfigARN returns the ID a configuration's ARN names (an ID alone is taken
// too); InvalidParameterValueException when it names none.
func ParseCodeSigningConfigARN(s string) (string, error) {
	id := s
	if strings.HasPrefix(s, "arn:") {
		parts := strings.Split(s, ":")
		if len(parts) != 7 || parts[2] != "lambda" || parts[5] != "code-signing-config" {
			return "", InvalidParameter("%q is not the ARN of a code signing configuration (arn:aws:lambda:<region>:<account>:code-signing-config:csc-...)", s)
		}
		id = parts[6]
	}
	if !structs.ValidCodeSigningConfigID(id) {
		return "", InvalidParameter("%q does not name a code signing configuration (csc- and 17 lower-case letters and digits)", s)
	}
	return id, nil
}

// SigningProfileARN is the ARN a publisher is named by: arn:aws:signer:<region>:<account>:/signing-profiles/<name>.
func SigningProfileARN(region, publisher string) string {
	return "arn:aws:signer:" + region + ":" + DefaultAccount + ":/signing-profiles/" + publisher
}

// ParseSigningProfileARN returns the publisher an AWS Signer signing profile (version) ARN
// names: its profile's name. Regions and accounts are not checked, as nowhere else in the
// gateway.
func ParseSigningProfileARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "signer" {
		return "", InvalidParameter("%q is not a signing profile's ARN (arn:aws:signer:<region>:<account>:/signing-profiles/<publisher>)", arn)
	}
	rest, ok := strings.CutPrefix(parts[5], "/signing-profiles/")
	name, _, _ := strings.Cut(rest, "/")
	if !ok || !structs.ValidName(name) {
		return "", InvalidParameter("%q does not name a publisher (arn:aws:signer:<region>:<account>:/signing-profiles/<publisher>[/<version>])", arn)
	}
	return name, nil
}

// CodeSigningConfigFrom describes a stored configuration: its publishers by the ARNs it was
// given, or by the gateway's form.
func CodeSigningConfigFrom(c *structs.CodeSigningConfig, region string) CodeSigningConfig {
	arns := make([]string, len(c.AllowedPublishers))
	for i := range c.AllowedPublishers {
		arns[i] = GivenPublisherARN(c, region, i)
	}
	return CodeSigningConfig{
		AllowedPublishers: AllowedPublishers{SigningProfileVersionArns: arns}, CodeSigningConfigArn: CodeSigningConfigARN(region, c.ID),
		CodeSigningConfigId: c.ID, CodeSigningPolicies: CodeSigningPolicies{UntrustedArtifactOnDeployment: c.UntrustedArtifactOnDeployment},
		Description: c.Description, LastModified: c.LastModified.UTC().Format(LastModifiedFormat), GatewayName: c.Name,
	}
}

// GivenPublisherARN is the ARN of a configuration's i-th publisher: as the API gave it, else the
// gateway's form.
func GivenPublisherARN(c *structs.CodeSigningConfig, region string, i int) string {
	if i < len(c.AllowedPublisherARNs) && c.AllowedPublisherARNs[i] != "" {
		return c.AllowedPublisherARNs[i]
	}
	return SigningProfileARN(region, c.AllowedPublishers[i])
}

// PublisherARN is the ARN of publisher p of configuration c (SigningProfileVersionArn).
func PublisherARN(c *structs.CodeSigningConfig, region, p string) string {
	if c != nil {
		for i, name := range c.AllowedPublishers {
			if name == p {
				return GivenPublisherARN(c, region, i)
			}
		}
	}
	return SigningProfileARN(region, p)
}
