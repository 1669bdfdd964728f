package integration

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// queueMsg is a message of gateway queue receive -json.
type queueMsg struct {
	Sequence        uint64
	MessageId, Body string
}

// TestStreamPutAndQueueReceive: gateway stream put (POST /v1/streams/{stream}/records) feeds a
// stream trigger, which gets each record with its partition key, in order per key; gateway
// queue receive shows a queue's messages without consuming them until -delete; both need the
// admin policy.
func TestStreamPutAndQueueReceive(t *testing.T) {
	needRoot(t)
	natsHCL, _ := natsBlock(t)
	a := newAgent(t, agentOptions{node: "cliq", top: pluginBlock(t, "stream", pluginBins["stream"], "") + natsHCL, keys: []testKey{
		{"ops", authAdminID, authAdminSecret, "admin"},
		{"app", authInvokeID, authInvokeSecret, "invoke"},
	}})
	a.waitHealthy()
	hcl := fmt.Sprintf(`
function "clicks" {
  runtime = "provided.al2023"
  code    = %q
  timeout = "10s"
  trigger "clicks" {
    plugin            = "stream"
    source            = "clicks"
    starting_position = "TRIM_HORIZON"
  }
}
`, fnDir)
	if out, errOut, code := a.cli("apply", writeFunctions(t, hcl)); code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errOut)
	}
	put := regexp.MustCompile(`^put \d+ bytes on stream clicks: shardId-\d{12}, sequence number \d+\n$`)
	want := map[string]string{} // data -> partition key
	for i := 0; i < 6; i++ {
		key, data := fmt.Sprintf("user%d", i%2), fmt.Sprintf("click-%d", i)
		out, errOut, code := a.cli("stream", "put", "-partition-key", key, "clicks", data)
		if code != 0 || !put.MatchString(out) {
			t.Fatalf("stream put: exit %d, %q %s", code, out, errOut)
		}
		want[data] = key
	}
	got := func() map[string]string {
		out := map[string]string{}
		for _, m := range kinesisLine.FindAllStringSubmatch(a.functionLogs("clicks"), -1) {
			out[m[3]] = m[1]
		}
		return out
	}
	waitFor(t, "the function got every record put", 60*time.Second, func() bool { return len(got()) == len(want) })
	for data, key := range got() {
		if want[data] != key {
			t.Errorf("record %s came with partition key %q, want %q", data, key, want[data])
		}
	}
	last := map[string]string{}
	for _, m := range kinesisLine.FindAllStringSubmatch(a.functionLogs("clicks"), -1) {
		if prev := last[m[1]]; prev > m[3] {
			t.Errorf("key %s: %s after %s", m[1], m[3], prev)
		}
		last[m[1]] = m[3]
	}
	if _, errOut, code := a.cli("stream", "put", "clicks", "x"); code != 1 || !strings.Contains(errOut, "needs -partition-key") {
		t.Errorf("stream put without a key: exit %d, %s", code, errOut)
	}

	// A queue no trigger reads: receive shows its messages and leaves them there.
	for _, body := range []string{"first", "second", "third"} {
		if out, errOut, code := a.cli("queue", "send", "jobs", body); code != 0 {
			t.Fatalf("queue send: %d %s %s", code, out, errOut)
		}
	}
	receive := func(args ...string) []queueMsg {
		t.Helper()
		out, errOut, code := a.cli(append([]string{"queue", "receive", "-json"}, args...)...)
		var msgs []queueMsg
		if code != 0 || json.Unmarshal([]byte(out), &msgs) != nil {
			t.Fatalf("queue receive %v: exit %d, %s %s", args, code, out, errOut)
		}
		return msgs
	}
	bodies := func(msgs []queueMsg) string {
		var b []string
		for _, m := range msgs {
			b = append(b, m.Body)
		}
		return strings.Join(b, ",")
	}
	for i := 0; i < 2; i++ {
		if got := bodies(receive("-n", "2", "jobs")); got != "first,second" {
			t.Fatalf("receive -n 2 (pass %d): %q", i, got)
		}
	}
	out, _, code := a.cli("queue", "receive", "jobs")
	if code != 0 || !strings.Contains(out, "first\n") || !strings.Contains(out, "third\n") || !strings.Contains(out, "(sequence 3, sent ") {
		t.Fatalf("queue receive: exit %d:\n%s", code, out)
	}
	if _, errOut, code := a.cli("queue", "receive", "-delete", "-n", "2", "jobs"); code != 0 || !strings.Contains(errOut, "deleted 2 message(s) from queue jobs") {
		t.Fatalf("receive -delete: exit %d, %s", code, errOut)
	}
	if msgs := receive("jobs"); bodies(msgs) != "third" || msgs[0].Sequence != 3 || msgs[0].MessageId != "3" {
		t.Fatalf("after -delete: %+v", msgs)
	}
	if _, errOut, code := a.cli("queue", "receive", "nothing-sent"); code != 1 || !strings.Contains(errOut, "ResourceNotFoundException") {
		t.Errorf("receive from a queue never sent to: exit %d, %s", code, errOut)
	}

	// The invoke policy may neither read queues nor put records.
	key := "-access-key-id=" + authInvokeID
	secret := "-secret-access-key=" + authInvokeSecret
	for _, args := range [][]string{
		{"queue", "receive", key, secret, "jobs"},
		{"queue", "receive", key, secret, "-delete", "jobs"},
		{"stream", "put", key, secret, "-partition-key", "k", "clicks", "x"},
	} {
		if _, errOut, code := a.cli(args...); code != 1 || !strings.Contains(errOut, "AccessDenied") {
			t.Errorf("gateway %v with an invoke key: exit %d, %s", args[:2], code, errOut)
		}
	}
	if msgs := receive("jobs"); bodies(msgs) != "third" {
		t.Fatalf("after the invoke key's attempts: %+v", msgs)
	}
	a.stop()
	checkNothingLeft(t, a)
}
