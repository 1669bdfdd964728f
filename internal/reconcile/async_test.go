package reconcile_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/reconcile"
	"github.com/lambdagw/gateway/internal/structs"
)

func async(qualifier string, retries *int, age time.Duration, success, failure string) *config.AsyncConfig {
	return &config.AsyncConfig{EventInvokeConfig: structs.EventInvokeConfig{Function: "fn", Qualifier: qualifier,
		MaximumRetryAttempts: retries, MaximumEventAge: age, OnSuccess: success, OnFailure: failure}}
}

// TestAsync: async blocks become event invoke configurations, created after the versions and
// aliases they name, updated with only what differs in the plan (each written whole), and
// deleted when no block declares them, before the alias they were on; dead_letter_target is
// part of the function's configuration.
func TestAsync(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, pkg := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	one, zero := 1, 0
	fn.Publish, fn.DeadLetterTarget = true, "queue:dlq"
	fn.Aliases = []*config.Alias{{Name: "live", Version: "1"}}
	fn.Async = []*config.AsyncConfig{
		async("$LATEST", &one, time.Hour, "queue:done", "function:sink"),
		async("1", nil, 0, "", ""),
		async("live", &zero, 0, "", "stream:failed"),
	}
	want := []step{
		{reconcile.Create, "to create (" + reconcile.Size(pkg.Size) + " zip to upload)"},
		{reconcile.Publish, "version 1 to publish"},
		{reconcile.Alias, "alias live to create (-> 1)"},
		{reconcile.Async, "async $LATEST to create (maximum_retry_attempts 1, maximum_event_age 1h0m0s, on_success queue:done, on_failure function:sink)"},
		{reconcile.Async, "async 1 to create (defaults)"},
		{reconcile.Async, "async live to create (maximum_retry_attempts 0, on_failure stream:failed)"},
	}
	if got := steps(plan(t, r, fn)); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%v\nwant\n%v", got, want)
	}
	done, _ := apply(t, r, fn)
	if len(done) != 6 || done[3] != "async $LATEST created (maximum_retry_attempts 1, maximum_event_age 1h0m0s, on_success queue:done, on_failure function:sink)" {
		t.Errorf("apply said %q", done)
	}
	wantWrites := []string{"POST /2015-03-31/functions", "POST /2015-03-31/functions/fn/versions", "POST /2015-03-31/functions/fn/aliases",
		"PUT /2019-09-25/functions/fn/event-invoke-config?Qualifier=%24LATEST", "PUT /2019-09-25/functions/fn/event-invoke-config?Qualifier=1",
		"PUT /2019-09-25/functions/fn/event-invoke-config?Qualifier=live"}
	if w := g.take(); !reflect.DeepEqual(w, wantWrites) {
		t.Errorf("writes:\n%q\nwant\n%q", w, wantWrites)
	}
	if dc := g.fns["fn"].DeadLetterConfig; dc == nil || dc.TargetArn != "arn:lambdagw:queue:us-east-1::dlq" {
		t.Errorf("the function's DeadLetterConfig: %+v", dc)
	}
	latest := g.asyncs["fn"]["$LATEST"]
	if latest.DestinationConfig.OnSuccess.Destination != "arn:lambdagw:queue:us-east-1::done" ||
		latest.DestinationConfig.OnFailure.Destination != "arn:aws:lambda:us-east-1:000000000000:function:sink" ||
		*latest.MaximumEventAgeInSeconds != 3600 || *latest.MaximumRetryAttempts != 1 {
		t.Errorf("$LATEST's configuration on the agent: %+v %+v", latest, latest.DestinationConfig)
	}
	converged(t, r, g, fn)

	// One setting changes, one configuration goes with its alias, the dead-letter target goes.
	fn.Publish, fn.DeadLetterTarget = false, ""
	fn.Aliases = nil
	fn.Async = []*config.AsyncConfig{async("$LATEST", &one, 2*time.Hour, "queue:done", ""), async("1", nil, 0, "", "")}
	want = []step{
		{reconcile.UpdateConfig, "configuration to update (dead_letter_target queue:dlq -> none)"},
		{reconcile.Async, "async $LATEST to update (maximum_event_age 1h0m0s -> 2h0m0s, on_failure function:sink -> none)"},
		{reconcile.Async, "async live to delete"},
		{reconcile.Alias, "alias live to delete"},
	}
	if got := steps(plan(t, r, fn)); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan:\n%v\nwant\n%v", got, want)
	}
	done, _ = apply(t, r, fn)
	if want := []string{"configuration updated (dead_letter_target queue:dlq -> none)",
		"async $LATEST updated (maximum_event_age 1h0m0s -> 2h0m0s, on_failure function:sink -> none)",
		"async live deleted", "alias live deleted"}; !reflect.DeepEqual(done, want) {
		t.Errorf("apply said %q, want %q", done, want)
	}
	if body := g.configBodies[len(g.configBodies)-1]; body != `{"DeadLetterConfig":{}}` {
		t.Errorf("the configuration update removing the dead-letter target: %s", body)
	}
	if w := g.take(); !reflect.DeepEqual(w, []string{"PUT /2015-03-31/functions/fn/configuration",
		"PUT /2019-09-25/functions/fn/event-invoke-config?Qualifier=%24LATEST", "DELETE /2019-09-25/functions/fn/event-invoke-config?Qualifier=live",
		"DELETE /2015-03-31/functions/fn/aliases/live"}) {
		t.Errorf("writes: %q", w)
	}
	if c := g.asyncs["fn"]["$LATEST"]; c.DestinationConfig.OnFailure.Destination != "" || *c.MaximumEventAgeInSeconds != 7200 {
		t.Errorf("the replaced configuration kept what the block dropped: %+v", c.DestinationConfig)
	}
	converged(t, r, g, fn)

	// No async blocks: every configuration goes.
	fn.Async = nil
	if got := reconcile.Lines(plan(t, r, fn)); !reflect.DeepEqual(got, []string{"async $LATEST to delete", "async 1 to delete"}) {
		t.Errorf("plan without async blocks: %q", got)
	}
	apply(t, r, fn)
	g.take()
	converged(t, r, g, fn)
}
