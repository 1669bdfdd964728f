package structs

import (
	"fmt"
	"strings"
	"time"
)

// Lambda's bounds and defaults for asynchronous invocation.
const (
	DefaultAsyncRetries = 2
	MaxAsyncRetries     = 2
	MinEventAge         = 60 * time.Second
	MaxEventAge         = 6 * time.Hour
	// MaxEventPayloadBytes is the largest payload of an Event invocation (Lambda's 1 MB).
	MaxEventPayloadBytes = 1 << 20
)

// EventInvokeConfig is the asynchronous invocation configuration of a function, or of one of its
// qualifiers (Lambda's PutFunctionEventInvokeConfig): how often an event that fails is tried
// again, how long an event may wait, and where its outcome goes.
type EventInvokeConfig struct {
	Function string `json:"function"`
	// Qualifier is "$LATEST", a published version or an alias.
	Qualifier string `json:"qualifier"`
	// MaximumRetryAttempts is 0 to 2; nil is Lambda's default, 2.
	MaximumRetryAttempts *int `json:"maximum_retry_attempts,omitempty"`
	// MaximumEventAge is 60 s to 6 h; 0 is Lambda's default, 6 h.
	MaximumEventAge time.Duration `json:"maximum_event_age,omitempty"`
	// OnSuccess and OnFailure are destinations (ValidDestination).
	OnSuccess string `json:"on_success,omitempty"`
	OnFailure string `json:"on_failure,omitempty"`
	// OnSuccessARN and OnFailureARN are the destinations' ARNs as the API was given them (an
	// SQS queue's, say), answered back as they came: tools that compare what they wrote with
	// what they read (Terraform) see no change.
	OnSuccessARN string    `json:"on_success_arn,omitempty"`
	OnFailureARN string    `json:"on_failure_arn,omitempty"`
	LastModified time.Time `json:"last_modified"`
}

// Retries is how many times a failed event is tried again.
func (c *EventInvokeConfig) Retries() int {
	if c == nil || c.MaximumRetryAttempts == nil {
		return DefaultAsyncRetries
	}
	return *c.MaximumRetryAttempts
}

// EventAge is how long an event may wait to run.
func (c *EventInvokeConfig) EventAge() time.Duration {
	if c == nil || c.MaximumEventAge == 0 {
		return MaxEventAge
	}
	return c.MaximumEventAge
}

// Check lists what is wrong with the configuration, by Lambda API field, in a fixed order.
func (c *EventInvokeConfig) Check() []FieldError {
	var errs []FieldError
	add := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
	}
	badDestination := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Summary: "Invalid destination", Message: fmt.Sprintf(format, a...)})
	}
	if q := c.Qualifier; q != "" && q != LatestVersion && !versionNumber(q) && !ValidAlias(q) {
		add("Qualifier", "%q: use \"$LATEST\", a published version's number or an alias", q)
	}
	if n := c.MaximumRetryAttempts; n != nil && (*n < 0 || *n > MaxAsyncRetries) {
		add("MaximumRetryAttempts", "%d is out of range: it must be between 0 and %d", *n, MaxAsyncRetries)
	}
	if a := c.MaximumEventAge; a != 0 {
		errs = append(errs, ValidateEventAge(a)...)
	}
	for _, d := range []struct{ field, dest string }{
		{"DestinationConfig.OnSuccess.Destination", c.OnSuccess}, {"DestinationConfig.OnFailure.Destination", c.OnFailure},
	} {
		switch {
		case d.dest == "":
		case !ValidDestination(d.dest):
			badDestination(d.field, "%q: use %s", d.dest, DestinationForms)
		case c.Function != "" && d.dest == "function:"+c.Function:
			// Each outcome would invoke the function again, without end.
			badDestination(d.field, "%q: a function cannot be its own destination", d.dest)
		}
	}
	return errs
}

// ValidateEventAge checks a maximum event age that is set (0, the default in a stored
// configuration, is out of range when given).
func ValidateEventAge(a time.Duration) []FieldError {
	if a < MinEventAge || a > MaxEventAge || a%time.Second != 0 {
		return []FieldError{{Field: "MaximumEventAgeInSeconds", Message: fmt.Sprintf("%s is out of range: it must be whole seconds between %d and %d",
			a, int(MinEventAge.Seconds()), int(MaxEventAge.Seconds()))}}
	}
	return nil
}

// Copy returns a deep copy.
func (c *EventInvokeConfig) Copy() *EventInvokeConfig {
	if c == nil {
		return nil
	}
	out := *c
	if c.MaximumRetryAttempts != nil {
		n := *c.MaximumRetryAttempts
		out.MaximumRetryAttempts = &n
	}
	return &out
}

// Destinations of asynchronous invocations, dead-lettered events and triggers' on-failure
// records: a function ("function:NAME", invoked asynchronously), a queue or a stream of the
// agent's NATS ("queue:NAME", "stream:NAME"), or a target of a trigger plugin that accepts
// records ("<plugin>:<target>", the plugin block's name: a Redis stream, a Kafka topic).
const (
	DestinationFunction = "function"
	DestinationQueue    = "queue"
	DestinationStream   = "stream"
)

// DestinationForms are the ways a destination is written, for errors.
const DestinationForms = `"function:NAME", "queue:NAME", "stream:NAME" or "<plugin>:<target>" (a plugin block's name)`

// maxPluginTarget is the longest target of a plugin destination.
const maxPluginTarget = 256

// ValidDestination says whether d names a destination.
func ValidDestination(d string) bool {
	kind, name, ok := strings.Cut(d, ":")
	if !ok || !ValidName(kind) || kind == "arn" { // an ARN is the API's form, never a plugin's name
		return false
	}
	switch kind {
	case DestinationFunction, DestinationQueue, DestinationStream:
		return ValidName(name)
	}
	return validPluginTarget(name)
}

// validPluginTarget: 1 to 256 printable ASCII characters without spaces; what more the target
// must be is the plugin's to say when it is handed a record.
func validPluginTarget(s string) bool {
	if s == "" || len(s) > maxPluginTarget {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// ValidDeadLetterTarget says whether d names a function's dead-letter target: a queue or a
// stream, or a plugin's target (as Lambda's dead-letter queue is an SQS queue or an SNS topic,
// never a function).
func ValidDeadLetterTarget(d string) bool {
	kind, _, _ := strings.Cut(d, ":")
	return ValidDestination(d) && kind != DestinationFunction
}
