package config

import (
	"fmt"
	"net/url"

	"github.com/hashicorp/hcl/v2"
)

// Tracing is the agent's tracing block: spans of invocations' phases exported over OTLP/HTTP.
// Without the block nothing is traced (the default).
type Tracing struct {
	// OTLPEndpoint is the collector's OTLP/HTTP URL (http:// or https://); without a path,
	// spans go to /v1/traces under it.
	OTLPEndpoint string
	// Insecure skips the verification of an https collector's certificate.
	Insecure bool
	// Headers are sent with every export (a collector's API key).
	Headers map[string]string
	// SampleRatio is the fraction of traces recorded that the caller did not sample (0..1).
	SampleRatio float64
	// ServiceName is the spans' service.name.
	ServiceName string
}

type tracingBlock struct {
	OTLPEndpoint string             `hcl:"otlp_endpoint"`
	Insecure     *bool              `hcl:"insecure,optional"`
	Headers      *map[string]string `hcl:"headers,optional"`
	SampleRatio  *float64           `hcl:"sample_ratio,optional"`
	ServiceName  *string            `hcl:"service_name,optional"`
	Body         hcl.Body           `hcl:",body"`
}

// decodeTracing validates the tracing block.
func decodeTracing(b *tracingBlock) (*Tracing, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	t := &Tracing{OTLPEndpoint: b.OTLPEndpoint, SampleRatio: 1, ServiceName: "lambdagw"}
	if u, err := url.Parse(b.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		diags = append(diags, attrDiag(b.Body, "otlp_endpoint", "Invalid otlp_endpoint",
			fmt.Sprintf("%q is not an http(s) URL of an OTLP/HTTP collector, such as http://collector:4318.", b.OTLPEndpoint)))
	}
	if b.Insecure != nil {
		t.Insecure = *b.Insecure
	}
	if b.Headers != nil {
		t.Headers = *b.Headers
	}
	if b.SampleRatio != nil {
		if r := *b.SampleRatio; r < 0 || r > 1 || r != r {
			diags = append(diags, attrDiag(b.Body, "sample_ratio", "Invalid sample_ratio",
				fmt.Sprintf("%g is not a fraction: sample_ratio is from 0 (none) to 1 (every trace).", r)))
		}
		t.SampleRatio = *b.SampleRatio
	}
	if b.ServiceName != nil {
		if *b.ServiceName == "" {
			diags = append(diags, attrDiag(b.Body, "service_name", "Invalid service_name", "service_name must not be empty."))
		}
		t.ServiceName = *b.ServiceName
	}
	return t, diags
}
