package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/plugins/sdk"
)

func TestSleepEndsWithItsContext(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep with a live context said it was cancelled")
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	start := time.Now()
	if Sleep(ctx, time.Minute) {
		t.Error("Sleep with a cancelled context said it slept")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Sleep returned %s after its context ended", d)
	}
}

func TestRecordParts(t *testing.T) {
	m := sdk.Mapping{UUID: "u", FunctionARN: "arn:aws:lambda:us-east-1:000000000000:function:fn"}
	if v := ExecutedVersion(m); v != "$LATEST" {
		t.Errorf("ExecutedVersion without a qualifier = %q", v)
	}
	m.Qualifier = "live"
	if v := ExecutedVersion(m); v != "live" {
		t.Errorf("ExecutedVersion = %q", v)
	}
	rc := NewRequestContext(m, ConditionRetries, 3)
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuidRE.MatchString(rc.RequestID) {
		t.Errorf("request ID %q is no version 4 UUID", rc.RequestID)
	}
	if NewRequestContext(m, ConditionRetries, 3).RequestID == rc.RequestID {
		t.Error("two request contexts share a request ID")
	}
	rc.RequestID = "r"
	// The field names are Lambda's: destinations and their readers parse them.
	got, _ := json.Marshal(struct {
		RequestContext  RequestContext  `json:"requestContext"`
		ResponseContext ResponseContext `json:"responseContext"`
	}{rc, ResponseContext{StatusCode: 200, ExecutedVersion: "live"}})
	want := `{"requestContext":{"requestId":"r","functionArn":"arn:aws:lambda:us-east-1:000000000000:function:fn",` +
		`"condition":"RetryAttemptsExhausted","approximateInvokeCount":3},"responseContext":{"statusCode":200,"executedVersion":"live"}}`
	if string(got) != want {
		t.Errorf("records as\n%s\nwant\n%s", got, want)
	}
}

// runner is the smallest Runner built on Base: its set-up fails until fails reaches zero.
type runner struct {
	Base
	m     sdk.Mapping
	fails atomic.Int32
	check error
	ran   chan bool // what Run got as ok
}

func (r *runner) Start(setupCtx, parent context.Context) {
	Start(&r.Base, r.m, setupCtx, parent, Setup[string]{
		Logger: hclog.NewNullLogger(),
		Check:  func() error { return r.check },
		SetUp:  r.setUp,
		Run: func(ctx context.Context, p string, ok bool) {
			r.ran <- ok
			if !ok {
				if p, ok = SetUpAgain(ctx, &r.Base, hclog.NewNullLogger(), time.Second, r.setUp); !ok {
					return
				}
			}
			if p != "ready" {
				r.SetStatus(sdk.StateError, "set up as "+p)
			}
			<-ctx.Done()
		},
	})
}

func (r *runner) setUp(context.Context) (string, error) {
	if r.fails.Add(-1) >= 0 {
		return "", errors.New("backend down")
	}
	return "ready", nil
}

var _ sdk.Runner = (*runner)(nil)

func newRunner(enabled bool, fails int32) *runner {
	r := &runner{m: sdk.Mapping{UUID: "m1", Enabled: enabled}, ran: make(chan bool, 1)}
	r.fails.Store(fails)
	return r
}

func TestStartReportsTheFirstAttemptAndRetries(t *testing.T) {
	r := newRunner(true, 1)
	r.Start(context.Background(), context.Background())
	if st := r.Status(); st != (sdk.MappingStatus{UUID: "m1", State: sdk.StateError, Message: "backend down"}) {
		t.Errorf("after a failed first set-up: %+v", st)
	}
	if ok := <-r.ran; ok {
		t.Error("Run was told the failed set-up succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Status().State != sdk.StateOK {
		if time.Now().After(deadline) {
			t.Fatalf("the runner never set up again: %+v", r.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Stop()
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the runner's work")
	}
	r.Wait()
}

func TestStartOK(t *testing.T) {
	r := newRunner(true, 0)
	r.Start(context.Background(), context.Background())
	if st := r.Status(); st.State != sdk.StateOK || st.Message != "" {
		t.Errorf("status %+v", st)
	}
	if ok := <-r.ran; !ok {
		t.Error("Run was told the set-up failed")
	}
	r.Stop()
	r.Wait()
}

func TestStartRunsNothingForADisabledOrRefusedMapping(t *testing.T) {
	disabled := newRunner(false, 0)
	refused := newRunner(true, 0)
	refused.check = errors.New("batch size 0 is out of range")
	for name, tc := range map[string]struct {
		r    *runner
		want sdk.MappingStatus
	}{
		"disabled": {disabled, sdk.MappingStatus{UUID: "m1", State: sdk.StateOK, Message: "disabled"}},
		"refused":  {refused, sdk.MappingStatus{UUID: "m1", State: sdk.StateError, Message: "batch size 0 is out of range"}},
	} {
		t.Run(name, func(t *testing.T) {
			tc.r.Start(context.Background(), context.Background())
			if st := tc.r.Status(); st != tc.want {
				t.Errorf("status %+v, want %+v", st, tc.want)
			}
			select {
			case <-tc.r.Done():
			default:
				t.Error("the runner's work did not end at once")
			}
			if len(tc.r.ran) != 0 {
				t.Error("Run was called")
			}
			tc.r.Stop() // harmless
			tc.r.Wait()
		})
	}
}

func TestParentEndsTheWork(t *testing.T) {
	r := newRunner(true, 1000) // never sets up: SetUpAgain must give up with the parent
	parent, cancel := context.WithCancel(context.Background())
	r.Start(context.Background(), parent)
	cancel()
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the runner outlived its parent context")
	}
}

func TestMappingSetWithBase(t *testing.T) {
	var set sdk.MappingSet[*runner]
	ms := []sdk.Mapping{{UUID: "a", Enabled: true}, {UUID: "b"}}
	st, err := set.Set(context.Background(), context.Background(), ms, time.Second, func(m sdk.Mapping) *runner {
		r := newRunner(m.Enabled, 0)
		r.m = m
		return r
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.MappingStatus{{UUID: "a", State: sdk.StateOK}, {UUID: "b", State: sdk.StateOK, Message: "disabled"}}
	if len(st) != 2 || st[0] != want[0] || st[1] != want[1] {
		t.Errorf("statuses %+v, want %+v", st, want)
	}
	a, _ := set.Runner("a")
	set.StopAll()
	select {
	case <-a.Done():
	default:
		t.Error("StopAll returned before the runner's work ended")
	}
}

func TestFailedItems(t *testing.T) {
	batch := []int{1, 2, 3}
	id := func(i int) string { return string(rune('0' + i)) }
	for name, tc := range map[string]struct {
		failedIDs []string
		want      map[string]bool
		unknown   string
		ok        bool
	}{
		"none":      {nil, map[string]bool{}, "", true},
		"some":      {[]string{"1", "3"}, map[string]bool{"1": true, "3": true}, "", true},
		"not in it": {[]string{"1", "7"}, nil, "7", false},
		"empty":     {[]string{""}, nil, "", false},
	} {
		t.Run(name, func(t *testing.T) {
			failed, unknown, ok := FailedItems(tc.failedIDs, batch, id)
			if ok != tc.ok || unknown != tc.unknown || len(failed) != len(tc.want) {
				t.Fatalf("FailedItems = %v, %q, %v; want %v, %q, %v", failed, unknown, ok, tc.want, tc.unknown, tc.ok)
			}
			for k := range tc.want {
				if !failed[k] {
					t.Errorf("%s is not among the failed", k)
				}
			}
		})
	}
}

// TestNothingToSetUp: with no SetUp, the mapping is OK at once and runs; SetErr reports its state.
func TestNothingToSetUp(t *testing.T) {
	var b Base
	ran := make(chan bool, 1)
	Start(&b, sdk.Mapping{UUID: "s", Enabled: true}, context.Background(), context.Background(), Setup[int]{
		Logger: hclog.NewNullLogger(),
		Run: func(ctx context.Context, _ int, ok bool) {
			ran <- ok
			<-ctx.Done()
		},
	})
	if ok := <-ran; !ok {
		t.Error("Run was told a set-up failed")
	}
	if st := b.Status(); st != (sdk.MappingStatus{UUID: "s", State: sdk.StateOK}) {
		t.Errorf("status %+v", st)
	}
	b.SetErr(errors.New("listing the bucket: access denied"))
	if st := b.Status(); st.State != sdk.StateError || st.Message != "listing the bucket: access denied" {
		t.Errorf("after SetErr: %+v", st)
	}
	b.SetErr(nil)
	if st := b.Status(); st.State != sdk.StateOK || st.Message != "" {
		t.Errorf("after SetErr(nil): %+v", st)
	}
	b.Stop()
	b.Wait()
}

func TestHeartbeatBeatsUntilStopped(t *testing.T) {
	var beats atomic.Int32
	stop := Heartbeat(context.Background(), 5*time.Millisecond, func(context.Context) { beats.Add(1) })
	deadline := time.Now().Add(5 * time.Second)
	for beats.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d beats in 5s", beats.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	n := beats.Load()
	time.Sleep(30 * time.Millisecond)
	if m := beats.Load(); m != n {
		t.Errorf("%d beats after stop", m-n)
	}
}
