// Package lambda holds the AWS Lambda wire types the gateway speaks (REST JSON of the 2015-03-31
// API) and its error shape, shared by the HTTP API and the Go client so they never drift apart.
package lambda

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"strings"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// DefaultAccount is the account id in ARNs; an on-prem gateway has no AWS account.
const DefaultAccount = structs.AccountID

// Error is a Lambda service error: the HTTP status, the exception name the SDKs map to a typed
// error (X-Amzn-ErrorType), and the message.
type Error struct {
	Status  int
	Type    string
	Message string
	Reason  string // TooManyRequestsException's reason
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// ErrorType names err as Lambda would: a Lambda error's type, ServiceException for any other,
// "" for none (spans and metrics label failures with it).
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	var le *Error
	if errors.As(err, &le) {
		return le.Type
	}
	return "ServiceException"
}

func newErr(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// Constructors for the exceptions the gateway answers with.
func ResourceNotFound(format string, a ...any) *Error {
	return newErr(404, "ResourceNotFoundException", format, a...)
}
func InvalidRequestContent(format string, a ...any) *Error {
	return newErr(400, "InvalidRequestContentException", format, a...)
}
func RequestTooLarge(format string, a ...any) *Error {
	return newErr(413, "RequestTooLargeException", format, a...)
}
func InvalidParameter(format string, a ...any) *Error {
	return newErr(400, "InvalidParameterValueException", format, a...)
}

// InvalidFields maps the rules structs' validators found broken to one
// InvalidParameterValueException ("MemorySize: ...", or "2 validation errors detected: ...; ..."
// as Lambda counts them); nil when there are none (an error, so a nil *Error never leaks).
func InvalidFields(errs []structs.FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	if len(errs) == 1 {
		return InvalidParameter("%s", errs[0].Error())
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return InvalidParameter("%d validation errors detected: %s", len(errs), strings.Join(msgs, "; "))
}
func ResourceConflict(format string, a ...any) *Error {
	return newErr(409, "ResourceConflictException", format, a...)
}
func PreconditionFailed(format string, a ...any) *Error {
	return newErr(412, "PreconditionFailedException", format, a...)
}
func ServiceError(format string, a ...any) *Error {
	return newErr(500, "ServiceException", format, a...)
}
func UnknownOperation(format string, a ...any) *Error {
	return newErr(404, "UnknownOperationException", format, a...)
}

// TooManyRequests is the throttle: reason is ReservedFunctionConcurrentInvocationLimitExceeded or
// ConcurrentInvocationLimitExceeded.
func TooManyRequests(reason, format string, a ...any) *Error {
	e := newErr(429, "TooManyRequestsException", format, a...)
	e.Reason = reason
	return e
}

// WriteError writes err in Lambda's error shape. Errors that are not *Error become a
// ServiceException whose message hides the internal cause (the caller logs it).
func WriteError(w http.ResponseWriter, requestID string, err error) {
	var le *Error
	if !errors.As(err, &le) {
		le = ServiceError("internal error (request %s)", requestID)
	}
	body := map[string]string{"Type": "User", "message": le.Message}
	if le.Status >= 500 {
		body["Type"] = "Service"
	}
	if le.Reason != "" {
		body["Reason"] = le.Reason
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-ErrorType", le.Type)
	if requestID != "" {
		h.Set("X-Amzn-RequestId", requestID)
	}
	if le.Status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(le.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// ReadError decodes a Lambda error response (for clients).
func ReadError(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, Type: resp.Header.Get("X-Amzn-ErrorType")}
	if i := strings.IndexByte(e.Type, ':'); i >= 0 {
		e.Type = e.Type[:i]
	}
	var m struct {
		Message  string `json:"message"`
		MessageU string `json:"Message"`
		Reason   string `json:"Reason"`
		Type     string `json:"__type"`
	}
	_ = json.Unmarshal(body, &m)
	e.Message, e.Reason = m.Message, m.Reason
	if e.Message == "" {
		e.Message = m.MessageU
	}
	if e.Type == "" {
		e.Type = m.Type
	}
	if e.Type == "" {
		e.Type = http.StatusText(resp.StatusCode)
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
	}
	return e
}

// FunctionARN is arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>].
func FunctionARN(region, name, qualifier string) string {
	arn := "arn:aws:lambda:" + region + ":" + DefaultAccount + ":function:" + name
	if qualifier != "" {
		arn += ":" + qualifier
	}
	return arn
}

// ParseFunctionName accepts a name, name:qualifier, a partial ARN (account:function:name) or a
// full ARN, as Lambda's FunctionName parameter does.
func ParseFunctionName(s string) (name, qualifier string, err error) {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 1:
		name = parts[0]
	case len(parts) == 2:
		name, qualifier = parts[0], parts[1]
	case len(parts) >= 3 && parts[0] == "arn" && len(parts) >= 7 && parts[5] == "function":
		name = parts[6]
		if len(parts) == 8 {
			qualifier = parts[7]
		} else if len(parts) > 8 {
			return "", "", InvalidParameter("invalid function ARN %q", s)
		}
	case (len(parts) == 3 || len(parts) == 4) && parts[1] == "function":
		name = parts[2]
		if len(parts) == 4 {
			qualifier = parts[3]
		}
	default:
		return "", "", InvalidParameter("invalid function name %q", s)
	}
	if name == "" || len(name) > 64 {
		return "", "", InvalidParameter("invalid function name %q", s)
	}
	return name, qualifier, nil
}

// Environment is Lambda's {"Variables": {...}}.
type Environment struct {
	Variables map[string]string `json:"Variables"`
}

// EphemeralStorage is Lambda's {"Size": MB}.
type EphemeralStorage struct {
	Size int `json:"Size"`
}

// GatewayOptions are the gateway's own function settings, beside Lambda's fields.
type GatewayOptions struct {
	// FreezeDelayMs: how long an idle environment stays thawed; nil means the agent's default.
	FreezeDelayMs *int64 `json:"FreezeDelayMs,omitempty"`
}

// FunctionConfiguration is Lambda's description of a function.
type FunctionConfiguration struct {
	FunctionName     string            `json:"FunctionName"`
	FunctionArn      string            `json:"FunctionArn"`
	Runtime          string            `json:"Runtime"`
	Role             string            `json:"Role,omitempty"`
	Handler          string            `json:"Handler,omitempty"`
	CodeSize         int64             `json:"CodeSize"`
	CodeSha256       string            `json:"CodeSha256"`
	Description      string            `json:"Description"`
	Timeout          int               `json:"Timeout"`
	MemorySize       int               `json:"MemorySize"`
	LastModified     string            `json:"LastModified"`
	Version          string            `json:"Version"`
	Environment      *Environment      `json:"Environment,omitempty"`
	EphemeralStorage *EphemeralStorage `json:"EphemeralStorage,omitempty"`
	RevisionId       string            `json:"RevisionId"`
	State            string            `json:"State"`
	LastUpdateStatus string            `json:"LastUpdateStatus"`
	PackageType      string            `json:"PackageType"`
	Architectures    []string          `json:"Architectures"`
	GatewayOptions   *GatewayOptions   `json:"GatewayOptions,omitempty"`
	// ImageConfigResponse is an image function's ImageConfig.
	ImageConfigResponse *ImageConfigResponse `json:"ImageConfigResponse,omitempty"`
	Layers              []FunctionLayer      `json:"Layers,omitempty"`
	// DeadLetterConfig names the dead-letter target by ARN, when the function has one.
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	// VpcConfig names the function's network and egress policies, when it has a network.
	VpcConfig *VpcConfigResponse `json:"VpcConfig,omitempty"`
	// FileSystemConfigs are the function's file systems, each by the ARN it was given.
	FileSystemConfigs []FileSystemConfig `json:"FileSystemConfigs,omitempty"`
	// SigningProfileVersionArn names the publisher whose signature of the code verified when it
	// was deployed under a code signing configuration.
	SigningProfileVersionArn string `json:"SigningProfileVersionArn,omitempty"` //nolint:revive // Lambda's field name
	// LoggingConfig is always answered, as Lambda does: Text to /aws/lambda/NAME by default.
	LoggingConfig *LoggingConfig `json:"LoggingConfig,omitempty"`
}

// LoggingConfigFrom is fn's logging settings as Lambda answers them: the levels with JSON only.
func LoggingConfigFrom(fn *structs.Function) *LoggingConfig {
	l := fn.Logging
	return &LoggingConfig{LogFormat: l.Format(), LogGroup: l.Group(fn.Name), ApplicationLogLevel: l.AppLevel(), SystemLogLevel: l.SystemLevel()}
}

// LoggingFrom merges the API's LoggingConfig into cur (an update changes the fields it sets; a
// switch to Text drops the levels it does not set) as the function stores it.
func LoggingFrom(in *LoggingConfig, cur *structs.LoggingConfig, function string) *structs.LoggingConfig {
	var l structs.LoggingConfig
	if cur != nil {
		l = *cur
	}
	if in.LogFormat != "" {
		l.LogFormat = in.LogFormat
		if in.LogFormat != structs.LogFormatJSON {
			l.ApplicationLogLevel, l.SystemLogLevel = "", ""
		}
	}
	if in.ApplicationLogLevel != "" {
		l.ApplicationLogLevel = in.ApplicationLogLevel
	}
	if in.SystemLogLevel != "" {
		l.SystemLogLevel = in.SystemLogLevel
	}
	if in.LogGroup != "" {
		l.LogGroup = in.LogGroup
	}
	return l.Normal(function)
}

// ImageConfigResponse wraps an image function's ImageConfig, as Lambda answers it.
type ImageConfigResponse struct {
	ImageConfig *ImageConfig `json:"ImageConfig,omitempty"`
}

func role(r string) string {
	if r == "" {
		return structs.DefaultRole
	}
	return r
}

// LastModifiedFormat is Lambda's timestamp format.
const LastModifiedFormat = "2006-01-02T15:04:05.000-0700"

// Base64Sha256 converts a hex SHA-256 to Lambda's CodeSha256 (base64 of the digest).
func Base64Sha256(hexSha string) string {
	b, err := hex.DecodeString(hexSha)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// ConfigurationFrom describes fn as Lambda does.
func ConfigurationFrom(fn *structs.Function, region string) FunctionConfiguration {
	c := FunctionConfiguration{
		FunctionName: fn.Name, FunctionArn: FunctionARN(region, fn.Name, fn.Version), Runtime: fn.Runtime,
		Role:    role(fn.Role),
		Handler: fn.Handler, CodeSize: fn.CodeSize, CodeSha256: Base64Sha256(fn.CodeSha256),
		Description: fn.Description, Timeout: int(fn.Timeout / time.Second), MemorySize: fn.MemoryMB,
		LastModified: fn.LastModified.UTC().Format(LastModifiedFormat), Version: fn.Qualifier(),
		EphemeralStorage: &EphemeralStorage{Size: fn.EphemeralStorageMB},
		RevisionId:       fn.RevisionID, State: "Active", LastUpdateStatus: "Successful",
		PackageType: "Zip", Architectures: []string{"x86_64"},
	}
	if len(fn.Environment) > 0 {
		// As Lambda: a function without variables is answered without Environment (Terraform
		// reads an empty one as a change to make).
		c.Environment = &Environment{Variables: fn.Environment}
	}
	if fn.IsImage() {
		// Lambda answers an image function with the image's digest as its code hash, no
		// runtime or handler, and the ImageConfig it was given.
		c.PackageType, c.CodeSize, c.Runtime, c.Handler = structs.PackageImage, 0, "", ""
		c.CodeSha256 = strings.TrimPrefix(fn.ImageDigest(), "sha256:")
		if ic := fn.ImageConfig; ic != nil {
			c.ImageConfigResponse = &ImageConfigResponse{ImageConfig: &ImageConfig{
				EntryPoint: ic.EntryPoint, Command: ic.Command, WorkingDirectory: ic.WorkingDirectory}}
		}
	}
	for _, l := range fn.Layers {
		c.Layers = append(c.Layers, FunctionLayer{Arn: LayerARN(region, l.Name, l.Version), CodeSize: l.CodeSize})
	}
	if fn.FreezeDelay != nil {
		ms := int64(*fn.FreezeDelay / time.Millisecond)
		c.GatewayOptions = &GatewayOptions{FreezeDelayMs: &ms}
	}
	c.VpcConfig = vpcConfigResponse(fn.Network)
	if fn.DeadLetterTarget != "" {
		c.DeadLetterConfig = &DeadLetterConfig{TargetArn: GivenARN(region, fn.DeadLetterTarget, fn.DeadLetterTargetARN)}
	}
	c.FileSystemConfigs = FileSystemConfigsFrom(fn.FileSystems, region)
	if cs := fn.CodeSignature; cs != nil && cs.Publisher != "" {
		c.SigningProfileVersionArn = SigningProfileARN(region, cs.Publisher)
	}
	c.LoggingConfig = LoggingConfigFrom(fn)
	return c
}

// PublishVersionInput is the body of PublishVersion (POST /2015-03-31/functions/{name}/versions).
type PublishVersionInput struct {
	CodeSha256  string `json:"CodeSha256,omitempty"` // base64, as FunctionConfiguration reports it
	Description string `json:"Description,omitempty"`
	RevisionId  string `json:"RevisionId,omitempty"` //nolint:revive // Lambda's field name
}

// ListVersionsOutput is the answer of ListVersionsByFunction.
type ListVersionsOutput struct {
	Versions   []FunctionConfiguration `json:"Versions"`
	NextMarker *string                 `json:"NextMarker,omitempty"`
}

// AliasInput is the body of CreateAlias (Name required) and UpdateAlias (what is set changes).
type AliasInput struct {
	Name            string                     `json:"Name,omitempty"`
	FunctionVersion string                     `json:"FunctionVersion,omitempty"`
	Description     *string                    `json:"Description,omitempty"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
	RevisionId      string                     `json:"RevisionId,omitempty"` //nolint:revive // Lambda's field name
}

// AliasRoutingConfiguration is an alias's weighted second version.
type AliasRoutingConfiguration struct {
	AdditionalVersionWeights map[string]float64 `json:"AdditionalVersionWeights,omitempty"`
}

// AliasConfiguration describes an alias.
type AliasConfiguration struct {
	AliasArn        string                     `json:"AliasArn"`
	Name            string                     `json:"Name"`
	FunctionVersion string                     `json:"FunctionVersion"`
	Description     string                     `json:"Description"`
	RoutingConfig   *AliasRoutingConfiguration `json:"RoutingConfig,omitempty"`
	RevisionId      string                     `json:"RevisionId"` //nolint:revive // Lambda's field name
}

// ListAliasesOutput is the answer of ListAliases.
type ListAliasesOutput struct {
	Aliases    []AliasConfiguration `json:"Aliases"`
	NextMarker *string              `json:"NextMarker,omitempty"`
}

// Concurrency is the body and answer of PutFunctionConcurrency and GetFunctionConcurrency.
type Concurrency struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

// ProvisionedConcurrencyInput is the body of PutProvisionedConcurrencyConfig.
type ProvisionedConcurrencyInput struct {
	ProvisionedConcurrentExecutions *int `json:"ProvisionedConcurrentExecutions"`
}

// Statuses of a provisioned concurrency configuration.
const (
	ProvisionedInProgress = "IN_PROGRESS"
	ProvisionedReady      = "READY"
	ProvisionedFailed     = "FAILED"
)

// ProvisionedConcurrencyConfig is the answer of Put/GetProvisionedConcurrencyConfig and an item
// of ListProvisionedConcurrencyConfigs (which adds FunctionArn).
type ProvisionedConcurrencyConfig struct {
	FunctionArn                              string `json:"FunctionArn,omitempty"`
	RequestedProvisionedConcurrentExecutions int    `json:"RequestedProvisionedConcurrentExecutions"`
	AvailableProvisionedConcurrentExecutions int    `json:"AvailableProvisionedConcurrentExecutions"`
	AllocatedProvisionedConcurrentExecutions int    `json:"AllocatedProvisionedConcurrentExecutions"`
	Status                                   string `json:"Status"`
	StatusReason                             string `json:"StatusReason,omitempty"`
	LastModified                             string `json:"LastModified"`
}

// ListProvisionedConcurrencyConfigsOutput is the answer of ListProvisionedConcurrencyConfigs.
type ListProvisionedConcurrencyConfigsOutput struct {
	ProvisionedConcurrencyConfigs []ProvisionedConcurrencyConfig `json:"ProvisionedConcurrencyConfigs"`
	NextMarker                    *string                        `json:"NextMarker,omitempty"`
}

// AddPermissionInput is the body of AddPermission.
type AddPermissionInput struct {
	StatementId         string `json:"StatementId"` //nolint:revive // Lambda's field names
	Action              string `json:"Action"`
	Principal           string `json:"Principal"`
	SourceArn           string `json:"SourceArn,omitempty"`
	SourceAccount       string `json:"SourceAccount,omitempty"`
	FunctionUrlAuthType string `json:"FunctionUrlAuthType,omitempty"` //nolint:revive
	PrincipalOrgID      string `json:"PrincipalOrgID,omitempty"`
	RevisionId          string `json:"RevisionId,omitempty"` //nolint:revive
}

// GetPolicyOutput is the answer of GetPolicy: the policy document as a JSON string.
type GetPolicyOutput struct {
	Policy     string `json:"Policy"`
	RevisionId string `json:"RevisionId"` //nolint:revive // Lambda's field name
}

// FunctionCode carries a zip inline (base64 in JSON, as []byte marshals), or names one the
// node already holds by its hex SHA-256 (GatewayCodeSha256, the gateway's own extension, which
// saves uploading the same code again; HEAD /v1/code/{sha256} tells whether the node has it).
type FunctionCode struct {
	ZipFile           []byte `json:"ZipFile,omitempty"`
	GatewayCodeSha256 string `json:"GatewayCodeSha256,omitempty"`
	// ImageUri is the container image of a PackageType Image function.
	ImageUri string `json:"ImageUri,omitempty"` //nolint:revive // Lambda's field name
	UnsupportedCode
}

// CreateFunctionInput is the body of CreateFunction.
type CreateFunctionInput struct {
	FunctionName     string            `json:"FunctionName"`
	Runtime          string            `json:"Runtime"`
	Role             string            `json:"Role,omitempty"`
	Handler          string            `json:"Handler,omitempty"`
	Code             FunctionCode      `json:"Code"`
	Description      string            `json:"Description,omitempty"`
	Timeout          *int              `json:"Timeout,omitempty"`
	MemorySize       *int              `json:"MemorySize,omitempty"`
	Environment      *Environment      `json:"Environment,omitempty"`
	EphemeralStorage *EphemeralStorage `json:"EphemeralStorage,omitempty"`
	Publish          bool              `json:"Publish,omitempty"`
	GatewayOptions   *GatewayOptions   `json:"GatewayOptions,omitempty"`
	// PackageType is "Zip" (the default) or "Image" (Code.ImageUri).
	PackageType string       `json:"PackageType,omitempty"`
	ImageConfig *ImageConfig `json:"ImageConfig,omitempty"`
	// Layers are layer version ARNs, merged at /opt in order.
	Layers []string `json:"Layers,omitempty"`
	// DeadLetterConfig receives the events of asynchronous invocations that failed for good.
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	// VpcConfig puts the function on one of the operator's networks.
	VpcConfig *VpcConfig `json:"VpcConfig,omitempty"`
	// FileSystemConfigs mounts a file system of the agents (at most one).
	FileSystemConfigs []FileSystemConfig `json:"FileSystemConfigs,omitempty"`
	// CodeSigningConfigArn attaches a code signing configuration: the code must verify under it.
	CodeSigningConfigArn string `json:"CodeSigningConfigArn,omitempty"` //nolint:revive // Lambda's field name
	// LoggingConfig sets the log format (Text, JSON) and levels.
	LoggingConfig *LoggingConfig `json:"LoggingConfig,omitempty"`
	UnsupportedSettings
	UnsupportedCreateSettings
}

// Unsupported refuses the settings of the request the gateway does not implement.
func (in *CreateFunctionInput) Unsupported() error {
	if err := in.UnsupportedSettings.Unsupported(in.FunctionName); err != nil {
		return err
	}
	if err := in.UnsupportedCreateSettings.Unsupported(); err != nil {
		return err
	}
	return in.Code.Unsupported("Code.")
}

// UpdateFunctionCodeInput is the body of UpdateFunctionCode.
type UpdateFunctionCodeInput struct {
	ZipFile []byte `json:"ZipFile,omitempty"`
	// ImageUri replaces an image function's image.
	ImageUri string `json:"ImageUri,omitempty"` //nolint:revive // Lambda's field name
	// GatewayCodeSha256 names code the node holds instead of ZipFile (see FunctionCode).
	GatewayCodeSha256 string `json:"GatewayCodeSha256,omitempty"`
	RevisionId        string `json:"RevisionId,omitempty"`
	Publish           bool   `json:"Publish,omitempty"`
	UnsupportedCode
	Architectures []string `json:"Architectures,omitempty"`
	DryRun        bool     `json:"DryRun,omitempty"`
	PublishTo     string   `json:"PublishTo,omitempty"`
}

// Unsupported refuses the settings of the request the gateway does not implement.
func (in *UpdateFunctionCodeInput) Unsupported() error {
	switch {
	case !defaultArchitectures(in.Architectures):
		return unsupported(fmt.Sprintf("Architectures %q", in.Architectures), "functions run as "+DefaultArchitecture)
	case in.DryRun:
		return unsupported("DryRun", "send the update itself")
	case in.PublishTo != "":
		return unsupported("PublishTo", "use Publish")
	}
	return in.UnsupportedCode.Unsupported("")
}

// UpdateFunctionConfigurationInput changes only the fields that are set.
type UpdateFunctionConfigurationInput struct {
	Runtime          *string           `json:"Runtime,omitempty"`
	Role             *string           `json:"Role,omitempty"`
	Handler          *string           `json:"Handler,omitempty"`
	Description      *string           `json:"Description,omitempty"`
	Timeout          *int              `json:"Timeout,omitempty"`
	MemorySize       *int              `json:"MemorySize,omitempty"`
	Environment      *Environment      `json:"Environment,omitempty"`
	EphemeralStorage *EphemeralStorage `json:"EphemeralStorage,omitempty"`
	RevisionId       string            `json:"RevisionId,omitempty"`
	GatewayOptions   *GatewayOptions   `json:"GatewayOptions,omitempty"`
	ImageConfig      *ImageConfig      `json:"ImageConfig,omitempty"`
	// Layers, when present, replaces the function's layers ([] removes them all).
	Layers *[]string `json:"Layers,omitempty"`
	// DeadLetterConfig, when present, replaces the dead-letter target (TargetArn "" removes it).
	DeadLetterConfig *DeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	// VpcConfig, when present, replaces the function's network (empty lists remove it).
	VpcConfig *VpcConfig `json:"VpcConfig,omitempty"`
	// FileSystemConfigs, when present, replaces the function's file systems ([] removes them).
	FileSystemConfigs *[]FileSystemConfig `json:"FileSystemConfigs,omitempty"`
	// LoggingConfig, when present, changes the fields it sets.
	LoggingConfig *LoggingConfig `json:"LoggingConfig,omitempty"`
	UnsupportedSettings
}

// CodeLocation is GetFunction's Code.
type CodeLocation struct {
	RepositoryType string `json:"RepositoryType"`
	Location       string `json:"Location,omitempty"`
	// An image function's image as deployed, and pinned to its digest.
	ImageUri         string `json:"ImageUri,omitempty"`         //nolint:revive // Lambda's field name
	ResolvedImageUri string `json:"ResolvedImageUri,omitempty"` //nolint:revive // Lambda's field name
}

// GetFunctionOutput is GetFunction's answer.
type GetFunctionOutput struct {
	Configuration FunctionConfiguration `json:"Configuration"`
	Code          CodeLocation          `json:"Code"`
}

// ListFunctionsOutput is ListFunctions' answer.
type ListFunctionsOutput struct {
	Functions  []FunctionConfiguration `json:"Functions"`
	NextMarker *string                 `json:"NextMarker,omitempty"`
}

// Cors is a function URL's CORS configuration in the API's JSON.
type Cors struct {
	AllowCredentials *bool    `json:"AllowCredentials,omitempty"`
	AllowHeaders     []string `json:"AllowHeaders,omitempty"`
	AllowMethods     []string `json:"AllowMethods,omitempty"`
	AllowOrigins     []string `json:"AllowOrigins,omitempty"`
	ExposeHeaders    []string `json:"ExposeHeaders,omitempty"`
	MaxAge           *int     `json:"MaxAge,omitempty"`
}

// Structs converts the API's CORS configuration to the stored one; unset fields (or no
// configuration at all, a nil c) are zero.
func (c *Cors) Structs() structs.CORS {
	if c == nil {
		return structs.CORS{}
	}
	out := structs.CORS{AllowHeaders: c.AllowHeaders, AllowMethods: c.AllowMethods, AllowOrigins: c.AllowOrigins, ExposeHeaders: c.ExposeHeaders}
	if c.AllowCredentials != nil {
		out.AllowCredentials = *c.AllowCredentials
	}
	if c.MaxAge != nil {
		out.MaxAge = *c.MaxAge
	}
	return out
}

// FunctionURLConfigInput is the body of CreateFunctionUrlConfig and UpdateFunctionUrlConfig
// (POST/PUT /2021-10-31/functions/{name}/url). Update changes only what is set.
type FunctionURLConfigInput struct {
	AuthType   string `json:"AuthType,omitempty"`
	Cors       *Cors  `json:"Cors,omitempty"`
	InvokeMode string `json:"InvokeMode,omitempty"`
}

// FunctionURLConfig is the answer of the function URL operations.
type FunctionURLConfig struct {
	FunctionUrl      string `json:"FunctionUrl"` //nolint:revive // Lambda's field name
	FunctionArn      string `json:"FunctionArn"` //nolint:revive // Lambda's field name
	AuthType         string `json:"AuthType"`
	Cors             *Cors  `json:"Cors,omitempty"`
	CreationTime     string `json:"CreationTime"`
	LastModifiedTime string `json:"LastModifiedTime,omitempty"`
	InvokeMode       string `json:"InvokeMode"`
}

// CorsFrom converts a stored CORS policy to the API's shape.
func CorsFrom(c *structs.CORS) *Cors {
	if c == nil {
		return nil
	}
	cred, age := c.AllowCredentials, c.MaxAge
	return &Cors{AllowCredentials: &cred, AllowHeaders: c.AllowHeaders, AllowMethods: c.AllowMethods,
		AllowOrigins: c.AllowOrigins, ExposeHeaders: c.ExposeHeaders, MaxAge: &age}
}

// FunctionURLConfigFrom describes a stored function URL; url is its address.
func FunctionURLConfigFrom(u *structs.FunctionURL, region, url string) FunctionURLConfig {
	return FunctionURLConfig{
		FunctionUrl: url, FunctionArn: FunctionARN(region, u.Function, u.Qualifier), AuthType: u.AuthType,
		Cors: CorsFrom(u.Cors), InvokeMode: u.InvokeMode,
		CreationTime:     u.CreationTime.UTC().Format("2006-01-02T15:04:05.000+0000"),
		LastModifiedTime: u.LastModified.UTC().Format("2006-01-02T15:04:05.000+0000"),
	}
}
