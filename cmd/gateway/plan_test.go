package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/internal/lambda"
)

// current is the agent's view of a function equal to block().
func current() lambda.FunctionConfiguration {
	ms := int64(100)
	return lambda.FunctionConfiguration{
		FunctionName: "fn", Runtime: "provided.al2023", Handler: "bootstrap", Description: "d", MemorySize: 128, Timeout: 3,
		EphemeralStorage: &lambda.EphemeralStorage{Size: 512},
		Environment:      &lambda.Environment{Variables: map[string]string{"A": "1", "B": "2"}},
		GatewayOptions:   &lambda.GatewayOptions{FreezeDelayMs: &ms},
	}
}

// TestFunctionsListsTriggers: gateway functions shows each function's triggers, "-" for none.
func TestFunctionsListsTriggers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/2015-03-31/functions/":
			_, _ = w.Write([]byte(`{"Functions":[{"FunctionName":"idle","Runtime":"provided.al2023"},{"FunctionName":"worker","Runtime":"provided.al2023"}]}`))
		case "/v1/triggers":
			_, _ = w.Write([]byte(`{"Triggers":[{"function":"worker","name":"orders","plugin":"queue","source":"orders","qualifier":"live","enabled":true},` +
				`{"function":"worker","name":"audit","plugin":"stream","source":"events","enabled":false}]}`))
		default:
			_, _ = w.Write([]byte(`{"FunctionUrlConfigs":[]}`))
		}
	}))
	t.Cleanup(srv.Close)
	ui := cli.NewMockUi()
	if code := (&functionsCommand{ui: ui}).Run([]string{"-address", srv.URL}); code != 0 {
		t.Fatalf("exit %d: %s", code, ui.ErrorWriter.String())
	}
	lines := strings.Split(strings.TrimSpace(ui.OutputWriter.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "TRIGGERS") || !strings.HasSuffix(lines[1], "-") ||
		!strings.HasSuffix(lines[2], "orders (queue: orders -> live), audit (stream: events, disabled)") {
		t.Fatalf("listing:\n%s", ui.OutputWriter.String())
	}
}
