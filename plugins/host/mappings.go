package host

import (
	"context"
	"reflect"
	"time"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
	"github.com/lambdagw/gateway/plugins/sdk"
)

// MappingSource is the replicated state as the host reads triggers from it.
type MappingSource interface {
	Triggers(fn string) []*structs.Trigger
	Watch() <-chan struct{}
}

// reassignEvery is how often the assignment of mappings to nodes is checked even without a
// change of the state: who is live changes without one.
const reassignEvery = time.Second

// RunMappings gives each trigger plugin the enabled triggers naming it that this node runs
// (owns decides, by the trigger's UUID: in a cluster each mapping runs on one live node), as
// the replicated state and the live nodes change, until ctx ends.
func (h *Host) RunMappings(ctx context.Context, src MappingSource, owns func(uuid string) bool, region string) {
	last := map[string][]sdk.Mapping{}
	for {
		ch := src.Watch()
		want := map[string][]sdk.Mapping{}
		for _, t := range src.Triggers("") {
			if !t.Enabled || (owns != nil && !owns(t.UUID)) {
				continue
			}
			want[t.Plugin] = append(want[t.Plugin], toMapping(t, region))
		}
		for _, name := range h.order {
			if _, pushed := last[name]; pushed && reflect.DeepEqual(last[name], want[name]) {
				continue
			}
			h.SetMappings(name, want[name])
			last[name] = want[name]
		}
		for name, ms := range want {
			if _, ok := h.procs[name]; !ok && len(ms) != len(last[name]) {
				h.logger.Warn("triggers name a plugin this agent does not run", "plugin", name, "triggers", len(ms))
				last[name] = ms
			}
		}
		select {
		case <-ch:
		case <-time.After(reassignEvery):
		case <-ctx.Done():
			return
		}
	}
}

func toMapping(t *structs.Trigger, region string) sdk.Mapping {
	return sdk.Mapping{UUID: t.UUID, Name: t.Name, Function: t.Function, Qualifier: t.Qualifier,
		FunctionARN: lambda.FunctionARN(region, t.Function, t.Qualifier), Source: t.Source, BatchSize: t.BatchSize,
		BatchWindow: t.BatchWindow, StartingPosition: t.StartingPosition, StartingPositionTimestamp: t.StartingPositionTimestamp,
		MaximumRetryAttempts: t.MaximumRetryAttempts, MaximumRecordAge: t.MaximumRecordAge,
		BisectBatchOnFunctionError: t.BisectBatchOnFunctionError, ReportBatchItemFailures: t.ReportBatchItemFailures,
		OnFailureDestination: t.OnFailure, Enabled: t.Enabled, Options: t.Options}
}
