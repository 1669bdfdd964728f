package lambda

import (
	"fmt"
	"strings"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// Asynchronous invocation settings: the event invoke configuration operations (2019-09-25) and
// a function's DeadLetterConfig. The gateway keeps destinations as "function:NAME",
// "queue:NAME", "stream:NAME" or "<plugin>:<target>" (structs.ValidDestination); the API names
// them by ARN.

// DeadLetterConfig is a function's dead-letter target for asynchronous invocations: an SQS
// queue's ARN (a queue of the agent's NATS) or a Kinesis stream's; TargetArn "" removes it.
type DeadLetterConfig struct {
	TargetArn string `json:"TargetArn,omitempty"` //nolint:revive // Lambda's field name
}

// Destination names where an outcome goes, by ARN.
type Destination struct {
	Destination string `json:"Destination,omitempty"`
}

// DestinationConfig holds the destinations of successful and failed asynchronous invocations.
// In a request, an absent one is not set (Put) or kept (Update), and an empty Destination
// removes it; an answer always has both, {} when unset, as Lambda's.
type DestinationConfig struct {
	OnSuccess *Destination `json:"OnSuccess,omitempty"`
	OnFailure *Destination `json:"OnFailure,omitempty"`
}

// EventInvokeConfigInput is the body of PutFunctionEventInvokeConfig (what is absent is
// removed) and UpdateFunctionEventInvokeConfig (what is absent is kept).
type EventInvokeConfigInput struct {
	MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        *DestinationConfig `json:"DestinationConfig,omitempty"`
}

// FunctionEventInvokeConfig is the answer of the event invoke configuration operations.
type FunctionEventInvokeConfig struct {
	// FunctionArn is qualified: ":$LATEST" for the unqualified function, as Lambda answers.
	FunctionArn string `json:"FunctionArn"` //nolint:revive // Lambda's field name
	// LastModified is Unix seconds with a fraction (the SDKs read an epoch-seconds timestamp).
	LastModified             float64            `json:"LastModified"`
	MaximumRetryAttempts     *int               `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int               `json:"MaximumEventAgeInSeconds,omitempty"`
	DestinationConfig        *DestinationConfig `json:"DestinationConfig"`
}

// ListFunctionEventInvokeConfigsOutput is a page of ListFunctionEventInvokeConfigs.
type ListFunctionEventInvokeConfigsOutput struct {
	FunctionEventInvokeConfigs []FunctionEventInvokeConfig `json:"FunctionEventInvokeConfigs"`
	NextMarker                 *string                     `json:"NextMarker,omitempty"`
}

// DestinationARN is the ARN a destination is answered with: a function's ARN, or
// arn:lambdagw:<kind>:<region>::<name> (queue, stream or a plugin's name) as event source
// mappings name the agent's queues and streams and the plugins' sources.
func DestinationARN(region, dest string) string {
	kind, name, ok := strings.Cut(dest, ":")
	switch {
	case !ok:
		return dest
	case kind == "function":
		return FunctionARN(region, name, "")
	}
	return "arn:lambdagw:" + kind + ":" + region + "::" + name
}

// ParseDestinationARN maps a destination ARN to "function:NAME" (a function's ARN, unqualified),
// "queue:NAME" (an SQS queue's ARN) or "stream:NAME" (a Kinesis stream's): the agent's queues
// and streams of those names; and arn:lambdagw:<kind>:<region>::<name> to "<kind>:<name>" (a
// queue, a stream, or a plugin's target). Regions and accounts are not checked, as nowhere
// else in the gateway; whether the destination is valid is structs' to say.
func ParseDestinationARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[0] == "arn" {
		switch {
		case parts[2] == "lambda" && strings.HasPrefix(parts[5], "function:"):
			name, q, err := ParseFunctionName(arn)
			if err == nil && q == "" {
				return "function:" + name, nil
			}
		case parts[1] == "lambdagw" && parts[2] != "" && parts[2] != structs.DestinationFunction && parts[5] != "":
			return parts[2] + ":" + parts[5], nil
		case parts[2] == "sqs" && parts[5] != "":
			return "queue:" + parts[5], nil
		case parts[2] == "kinesis" && strings.HasPrefix(parts[5], "stream/") && len(parts[5]) > len("stream/"):
			return "stream:" + strings.TrimPrefix(parts[5], "stream/"), nil
		}
	}
	return "", fmt.Errorf("%q is not the ARN of a function (unqualified), an SQS queue, a Kinesis stream or arn:lambdagw:<plugin>:<region>::<target>", arn)
}

// EventInvokeConfigFrom describes a stored configuration as Lambda does.
func EventInvokeConfigFrom(c *structs.EventInvokeConfig, region string) FunctionEventInvokeConfig {
	out := FunctionEventInvokeConfig{
		FunctionArn:          FunctionARN(region, c.Function, c.Qualifier),
		LastModified:         float64(c.LastModified.UnixMilli()) / 1000,
		MaximumRetryAttempts: c.MaximumRetryAttempts,
		DestinationConfig:    &DestinationConfig{OnSuccess: &Destination{}, OnFailure: &Destination{}},
	}
	if c.MaximumEventAge != 0 {
		s := int(c.MaximumEventAge / time.Second)
		out.MaximumEventAgeInSeconds = &s
	}
	if c.OnSuccess != "" {
		out.DestinationConfig.OnSuccess.Destination = GivenARN(region, c.OnSuccess, c.OnSuccessARN)
	}
	if c.OnFailure != "" {
		out.DestinationConfig.OnFailure.Destination = GivenARN(region, c.OnFailure, c.OnFailureARN)
	}
	return out
}

// GivenARN is the ARN of destination dest: given, the ARN it was set with, when that still
// names it; else the one DestinationARN makes.
func GivenARN(region, dest, given string) string {
	if given != "" {
		if d, err := ParseDestinationARN(given); err == nil && d == dest {
			return given
		}
	}
	return DestinationARN(region, dest)
}

// EventInvokeConfigInputFrom is the PutFunctionEventInvokeConfig body that sets c, whole.
func EventInvokeConfigInputFrom(c *structs.EventInvokeConfig, region string) *EventInvokeConfigInput {
	in := &EventInvokeConfigInput{MaximumRetryAttempts: c.MaximumRetryAttempts}
	if c.MaximumEventAge != 0 {
		s := int(c.MaximumEventAge / time.Second)
		in.MaximumEventAgeInSeconds = &s
	}
	if c.OnSuccess != "" || c.OnFailure != "" {
		in.DestinationConfig = &DestinationConfig{}
		if c.OnSuccess != "" {
			in.DestinationConfig.OnSuccess = &Destination{Destination: DestinationARN(region, c.OnSuccess)}
		}
		if c.OnFailure != "" {
			in.DestinationConfig.OnFailure = &Destination{Destination: DestinationARN(region, c.OnFailure)}
		}
	}
	return in
}

// Structs reads an answer back as the stored configuration (its function and qualifier from
// FunctionArn, its destinations from their ARNs).
func (c *FunctionEventInvokeConfig) Structs() (*structs.EventInvokeConfig, error) {
	name, q, err := ParseFunctionName(c.FunctionArn)
	if err != nil {
		return nil, fmt.Errorf("reading FunctionArn %q: %w", c.FunctionArn, err)
	}
	out := &structs.EventInvokeConfig{Function: name, Qualifier: q, MaximumRetryAttempts: c.MaximumRetryAttempts,
		LastModified: time.UnixMilli(int64(c.LastModified * 1000)).UTC()}
	if out.Qualifier == "" {
		out.Qualifier = structs.LatestVersion
	}
	if c.MaximumEventAgeInSeconds != nil {
		out.MaximumEventAge = time.Duration(*c.MaximumEventAgeInSeconds) * time.Second
	}
	if dc := c.DestinationConfig; dc != nil {
		for _, d := range []struct {
			from *Destination
			to   *string
		}{{dc.OnSuccess, &out.OnSuccess}, {dc.OnFailure, &out.OnFailure}} {
			if d.from == nil || d.from.Destination == "" {
				continue
			}
			if *d.to, err = ParseDestinationARN(d.from.Destination); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
