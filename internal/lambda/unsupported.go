package lambda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Lambda's function requests carry settings this gateway does not implement. Decoding into the
// supported fields alone would drop them silently: a function asked for with a VPC
// would be created without, and only fail later, far from the cause. So the requests decode
// them too, and Unsupported refuses a real request for one. Their empty and default values pass,
// since tools send them as a matter of course: Terraform's AWS provider removes a setting by
// sending it empty (KMSKeyArn "", ImageConfig {}) and sends
// PackageType "Zip" and TracingConfig PassThrough.

// TracingConfig is Lambda's X-Ray mode; only PassThrough (the gateway passes trace headers on).
type TracingConfig struct {
	Mode string `json:"Mode,omitempty"`
}

// SnapStart is Lambda's snapshot of initialised environments; only ApplyOn None.
type SnapStart struct {
	ApplyOn string `json:"ApplyOn,omitempty"`
}

// ImageConfig overrides a container image's ENTRYPOINT, CMD and WORKDIR (PackageType Image).
type ImageConfig struct {
	Command          []string `json:"Command,omitempty"`
	EntryPoint       []string `json:"EntryPoint,omitempty"`
	WorkingDirectory string   `json:"WorkingDirectory,omitempty"`
}

// LoggingConfig is Lambda's log settings: the format (Text or JSON) and, with JSON, the levels
// kept; LogGroup is kept and answered (each node keeps the function's log).
type LoggingConfig struct {
	LogFormat           string `json:"LogFormat,omitempty"`
	LogGroup            string `json:"LogGroup,omitempty"`
	ApplicationLogLevel string `json:"ApplicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"SystemLogLevel,omitempty"`
}

// UnsupportedSettings are the settings of CreateFunction and UpdateFunctionConfiguration the
// gateway does not implement, decoded only to refuse them (see Unsupported).
type UnsupportedSettings struct {
	KMSKeyArn     string         `json:"KMSKeyArn,omitempty"`
	TracingConfig *TracingConfig `json:"TracingConfig,omitempty"`
	SnapStart     *SnapStart     `json:"SnapStart,omitempty"`
	// Newer Lambda settings, refused whatever they hold but null or {}.
	CapacityProviderConfig json.RawMessage `json:"CapacityProviderConfig,omitempty"`
	DurableConfig          json.RawMessage `json:"DurableConfig,omitempty"`
	TenancyConfig          json.RawMessage `json:"TenancyConfig,omitempty"`
}

// UnsupportedCreateSettings are CreateFunction's own unsupported settings.
type UnsupportedCreateSettings struct {
	Architectures []string          `json:"Architectures,omitempty"`
	Tags          map[string]string `json:"Tags,omitempty"`
	PublishTo     string            `json:"PublishTo,omitempty"`
}

// UnsupportedCode are the ways to give code the gateway does not take: from S3, encrypted with a
// customer's KMS key (FunctionCode and UpdateFunctionCode).
type UnsupportedCode struct {
	S3Bucket        string `json:"S3Bucket,omitempty"`
	S3Key           string `json:"S3Key,omitempty"`
	S3ObjectVersion string `json:"S3ObjectVersion,omitempty"`
	SourceKMSKeyArn string `json:"SourceKMSKeyArn,omitempty"`
}

// UnsupportedMappingSettings are the settings of CreateEventSourceMapping and
// UpdateEventSourceMapping the triggers do not implement, decoded only to refuse them.
// Terraform's aws_lambda_event_source_mapping sends each only when it is set.
type UnsupportedMappingSettings struct {
	FilterCriteria *struct {
		Filters []json.RawMessage `json:"Filters,omitempty"`
	} `json:"FilterCriteria,omitempty"`
	ParallelizationFactor      *int              `json:"ParallelizationFactor,omitempty"`
	TumblingWindowInSeconds    *int              `json:"TumblingWindowInSeconds,omitempty"`
	Topics                     []string          `json:"Topics,omitempty"`
	Queues                     []string          `json:"Queues,omitempty"`
	SourceAccessConfigurations []json.RawMessage `json:"SourceAccessConfigurations,omitempty"`
	KMSKeyArn                  string            `json:"KMSKeyArn,omitempty"`
	Tags                       map[string]string `json:"Tags,omitempty"`
	// Settings of event sources the triggers do not read (Kafka, MQ, DocumentDB), and newer
	// ones, refused whatever they hold but null or {}.
	ScalingConfig                       json.RawMessage `json:"ScalingConfig,omitempty"`
	SelfManagedEventSource              json.RawMessage `json:"SelfManagedEventSource,omitempty"`
	SelfManagedKafkaEventSourceConfig   json.RawMessage `json:"SelfManagedKafkaEventSourceConfig,omitempty"`
	AmazonManagedKafkaEventSourceConfig json.RawMessage `json:"AmazonManagedKafkaEventSourceConfig,omitempty"`
	DocumentDBEventSourceConfig         json.RawMessage `json:"DocumentDBEventSourceConfig,omitempty"`
	MetricsConfig                       json.RawMessage `json:"MetricsConfig,omitempty"`
	ProvisionedPollerConfig             json.RawMessage `json:"ProvisionedPollerConfig,omitempty"`
}

// Unsupported refuses a mapping that asks for a setting the triggers do not implement.
func (u *UnsupportedMappingSettings) Unsupported() error {
	raw := map[string]json.RawMessage{
		"ScalingConfig": u.ScalingConfig, "SelfManagedEventSource": u.SelfManagedEventSource,
		"SelfManagedKafkaEventSourceConfig": u.SelfManagedKafkaEventSourceConfig, "AmazonManagedKafkaEventSourceConfig": u.AmazonManagedKafkaEventSourceConfig,
		"DocumentDBEventSourceConfig": u.DocumentDBEventSourceConfig, "MetricsConfig": u.MetricsConfig, "ProvisionedPollerConfig": u.ProvisionedPollerConfig,
	}
	switch {
	case u.FilterCriteria != nil && len(u.FilterCriteria.Filters) > 0:
		return unsupported("FilterCriteria", "every record reaches the function; filter in its code")
	case u.ParallelizationFactor != nil && *u.ParallelizationFactor != 1:
		return unsupported("ParallelizationFactor", "a stream's shards are read one batch at a time each (1)")
	case u.TumblingWindowInSeconds != nil && *u.TumblingWindowInSeconds != 0:
		return unsupported("TumblingWindowInSeconds", "there are no tumbling windows")
	case len(u.Topics) > 0 || len(u.Queues) > 0 || len(u.SourceAccessConfigurations) > 0:
		return unsupported("Topics/Queues/SourceAccessConfigurations", "the triggers read the agent's queues, streams and buckets, not Kafka or MQ")
	case u.KMSKeyArn != "":
		return unsupported("KMSKeyArn", "there is no KMS")
	case len(u.Tags) > 0:
		return unsupported("Tags", "event source mappings have no tags")
	}
	for _, name := range []string{"ScalingConfig", "SelfManagedEventSource", "SelfManagedKafkaEventSourceConfig",
		"AmazonManagedKafkaEventSourceConfig", "DocumentDBEventSourceConfig", "MetricsConfig", "ProvisionedPollerConfig"} {
		if rawSet(raw[name]) {
			return unsupported(name, "not implemented for the gateway's triggers")
		}
	}
	return nil
}

// DefaultArchitecture is the only architecture functions report (and may ask for).
const DefaultArchitecture = "x86_64"

// unsupported builds the refusal naming field and why.
func unsupported(field, why string) error {
	return InvalidParameter("%s is not supported by this gateway: %s", field, why)
}

// rawSet reports whether a setting the gateway does not know the shape of holds anything.
func rawSet(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	return len(r) > 0 && !bytes.Equal(r, []byte("null")) && !bytes.Equal(r, []byte("{}"))
}

// Unsupported refuses a request for a setting the gateway does not implement; function is the
// function's name (its default log group passes).
func (u *UnsupportedSettings) Unsupported(function string) error {
	switch {
	case u.KMSKeyArn != "":
		return unsupported("KMSKeyArn", "there is no KMS; environment variables are stored in the cluster's state")
	case u.TracingConfig != nil && u.TracingConfig.Mode != "" && u.TracingConfig.Mode != "PassThrough":
		return unsupported("TracingConfig.Mode "+strconv.Quote(u.TracingConfig.Mode), "there is no X-Ray; only PassThrough")
	case u.SnapStart != nil && u.SnapStart.ApplyOn != "" && u.SnapStart.ApplyOn != "None":
		return unsupported("SnapStart", "only ApplyOn None")
	case rawSet(u.CapacityProviderConfig):
		return unsupported("CapacityProviderConfig", "functions run on the cluster's nodes")
	case rawSet(u.DurableConfig):
		return unsupported("DurableConfig", "durable functions are not implemented")
	case rawSet(u.TenancyConfig):
		return unsupported("TenancyConfig", "tenant isolation is not implemented")
	}
	return nil
}

// Unsupported refuses CreateFunction's settings the gateway does not implement.
func (u *UnsupportedCreateSettings) Unsupported() error {
	switch {
	case !defaultArchitectures(u.Architectures):
		return unsupported(fmt.Sprintf("Architectures %q", u.Architectures), "functions run as "+DefaultArchitecture)
	case len(u.Tags) > 0:
		return unsupported("Tags", "functions have no tags yet")
	case u.PublishTo != "":
		return unsupported("PublishTo", "use Publish")
	}
	return nil
}

// Unsupported refuses code the gateway cannot take.
func (c *UnsupportedCode) Unsupported(prefix string) error {
	switch {
	case c.S3Bucket != "" || c.S3Key != "" || c.S3ObjectVersion != "":
		return unsupported(prefix+"S3Bucket/S3Key", "upload the zip itself (ZipFile)")
	case c.SourceKMSKeyArn != "":
		return unsupported(prefix+"SourceKMSKeyArn", "there is no KMS")
	}
	return nil
}

func defaultArchitectures(a []string) bool {
	return len(a) == 0 || (len(a) == 1 && a[0] == DefaultArchitecture)
}
