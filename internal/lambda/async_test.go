package lambda

import (
	"strings"
	"testing"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// TestDestinationARNs: the ARNs a destination is given by map to the agent's functions, queues,
// streams and plugins' targets, and the ARNs answered read back as the same destination.
func TestDestinationARNs(t *testing.T) {
	ok := map[string]string{
		"arn:aws:lambda:us-east-1:000000000000:function:sink":  "function:sink",
		"arn:aws:lambda:eu-west-1:123456789012:function:sink":  "function:sink",
		"arn:aws:sqs:us-east-1:123456789012:dlq":               "queue:dlq",
		"arn:lambdagw:queue:us-east-1::dlq":                    "queue:dlq",
		"arn:aws:kinesis:us-east-1:123456789012:stream/clicks": "stream:clicks",
		"arn:lambdagw:stream:us-east-1::clicks":                "stream:clicks",
		"arn:lambdagw:redis:us-east-1::audit:eu":               "redis:audit:eu",
	}
	for arn, want := range ok {
		got, err := ParseDestinationARN(arn)
		if err != nil || got != want {
			t.Errorf("ParseDestinationARN(%q) = %q, %v; want %q", arn, got, err, want)
		}
		if back, err := ParseDestinationARN(DestinationARN("eu-west-1", want)); err != nil || back != want {
			t.Errorf("%s answered as %s reads back as %q, %v", want, DestinationARN("eu-west-1", want), back, err)
		}
	}
	for _, arn := range []string{"", "dlq", "queue:dlq", "arn:aws:sns:us-east-1:1:topic", "arn:aws:events:us-east-1:1:event-bus/default",
		"arn:aws:lambda:us-east-1:1:function:sink:live", "arn:aws:kinesis:us-east-1:1:stream/", "arn:lambdagw:redis:us-east-1::",
		"arn:lambdagw:function:us-east-1::sink",
		"arn:aws:s3:::bucket"} {
		if got, err := ParseDestinationARN(arn); err == nil {
			t.Errorf("ParseDestinationARN(%q) = %q, want an error", arn, got)
		}
	}
}

// TestEventInvokeConfigShapes: a stored configuration answers in Lambda's shape (qualified
// FunctionArn, epoch seconds, both destinations) and reads back the same; the input that sets it
// carries only what is set.
func TestEventInvokeConfigShapes(t *testing.T) {
	one := 1
	c := &structs.EventInvokeConfig{Function: "fn", Qualifier: "$LATEST", MaximumRetryAttempts: &one, MaximumEventAge: time.Hour,
		OnFailure: "queue:dlq", LastModified: time.UnixMilli(1700000000123).UTC()}
	out := EventInvokeConfigFrom(c, "us-east-1")
	if out.FunctionArn != "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST" || out.LastModified != 1700000000.123 ||
		*out.MaximumEventAgeInSeconds != 3600 || out.DestinationConfig.OnSuccess == nil || out.DestinationConfig.OnSuccess.Destination != "" ||
		out.DestinationConfig.OnFailure.Destination != "arn:lambdagw:queue:us-east-1::dlq" {
		t.Errorf("answer %+v", out)
	}
	back, err := out.Structs()
	if err != nil || back.Function != "fn" || back.Qualifier != "$LATEST" || back.Retries() != 1 || back.MaximumEventAge != time.Hour ||
		back.OnFailure != "queue:dlq" || back.OnSuccess != "" || !back.LastModified.Equal(c.LastModified) {
		t.Errorf("read back as %+v, %v", back, err)
	}
	in := EventInvokeConfigInputFrom(&structs.EventInvokeConfig{Function: "fn", Qualifier: "live", OnSuccess: "function:other"}, "us-east-1")
	if in.MaximumRetryAttempts != nil || in.MaximumEventAgeInSeconds != nil || in.DestinationConfig.OnFailure != nil ||
		in.DestinationConfig.OnSuccess.Destination != "arn:aws:lambda:us-east-1:000000000000:function:other" {
		t.Errorf("input %+v %+v", in, in.DestinationConfig)
	}
	if in := EventInvokeConfigInputFrom(&structs.EventInvokeConfig{Function: "fn"}, "us-east-1"); in.DestinationConfig != nil {
		t.Errorf("an empty configuration's input has destinations: %+v", in.DestinationConfig)
	}
}

// FuzzDestinationARN: whatever ARN the API is given, what it parses to is a destination the
// gateway's rules accept or is refused later by them, never a different kind than the ARN names;
// and every valid destination's ARN reads back as itself.
func FuzzDestinationARN(f *testing.F) {
	for _, s := range []string{"arn:aws:sqs:us-east-1:1:dlq", "arn:lambdagw:redis:us-east-1::a:b", "arn:lambdagw:function:r::x",
		"arn:aws:lambda:r:1:function:f", "arn:aws:kinesis:r:1:stream/s", "function:f", "redis:audit/eu"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDestinationARN(s); err == nil {
			kind, _, ok := strings.Cut(d, ":")
			if !ok || kind == "" {
				t.Fatalf("%q parsed to %q, which names no kind", s, d)
			}
			if kind == structs.DestinationFunction && !strings.Contains(s, ":function:") {
				t.Fatalf("%q parsed to a function destination %q", s, d)
			}
		}
		if structs.ValidDestination(s) {
			if back, err := ParseDestinationARN(DestinationARN("eu-west-1", s)); err != nil || back != s {
				t.Fatalf("%q answered as %q reads back as %q, %v", s, DestinationARN("eu-west-1", s), back, err)
			}
		}
	})
}
