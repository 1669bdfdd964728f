package agent

import (
	"testing"

	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/internal/metrics"
)

// The gateway names its throttles' reasons and the metrics count them under their own
// constants (neither imports the other): they must be the same words, or a throttle would be
// counted under another reason.
func TestThrottleReasonsAgree(t *testing.T) {
	for gw, met := range map[string]string{
		gateway.ThrottleReserved:     metrics.ThrottleReserved,
		gateway.ThrottleConcurrency:  metrics.ThrottleConcurrency,
		gateway.ThrottleCapacity:     metrics.ThrottleCapacity,
		gateway.ThrottleAsyncBacklog: metrics.ThrottleAsyncBacklog,
	} {
		if gw != met {
			t.Errorf("gateway's throttle reason %q is counted as %q", gw, met)
		}
	}
}
