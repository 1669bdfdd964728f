package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestEncodeKeyAsS3Does(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"photos/my cat+1.jpg", "photos/my+cat%2B1.jpg"},
		{"a/b/c.txt", "a/b/c.txt"},
		{"über & co?.png", "%C3%BCber+%26+co%3F.png"},
	} {
		if got := encodeKey(tc.key); got != tc.want {
			t.Errorf("encodeKey(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// A versitygw notification as it POSTs them (v1.8.0): its own spelling, raw keys, "s3:" names.
const versityNotification = `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1",
"eventTime":"2026-12-02T16:40:38Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"PrincipalId":"testkey"},
"requestParameters":{"sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-request-id":"","x-amz-id-2":""},
"s3":{"s3SchemaVersion":"1.0","configurationId":"webhook-global","bucket":{"name":"bkt","ownerIdentity":{"PrincipalId":"testkey"},
"arn":"arn:aws:s3:::/bkt/photos/my cat+1.jpg"},"object":{"key":"photos/my cat+1.jpg","size":5,
"eTag":"\"5d41402abc4b2a76b9719d911017c592\"","versionId":null,"sequencer":"1"}},
"glacierEventData":{"restoreEventData":{"lifecycleRestorationExpiryTime":"","lifecycleRestoreStorageClass":""}}}]}`

// An Amazon S3 notification (the shape of AWS's documentation).
const amazonNotification = `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1",
"eventTime":"2026-01-02T03:04:05.678Z","eventName":"ObjectRemoved:Delete","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},
"requestParameters":{"sourceIPAddress":"10.0.0.1"},"responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8"},
"s3":{"s3SchemaVersion":"1.0","configurationId":"cfg","bucket":{"name":"bkt","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},
"arn":"arn:aws:s3:::bkt"},"object":{"key":"photos/my+cat%2B1.jpg","sequencer":"0055AED6DCD90281E5"}}}]}`

func TestParseNotifications(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	v, err := parseNotifications([]byte(versityNotification), keyAuto, now)
	if err != nil || len(v) != 1 {
		t.Fatalf("versitygw: %v %v", v, err)
	}
	a, err := parseNotifications([]byte(amazonNotification), keyAuto, now)
	if err != nil || len(a) != 1 {
		t.Fatalf("amazon: %v %v", a, err)
	}
	for name, n := range map[string]notification{"versitygw": v[0], "amazon": a[0]} {
		if n.Key != "photos/my cat+1.jpg" || n.Bucket != "bkt" {
			t.Errorf("%s: key %q bucket %q", name, n.Key, n.Bucket)
		}
	}
	if v[0].EventName != "ObjectCreated:Put" || v[0].ETag != "5d41402abc4b2a76b9719d911017c592" || *v[0].Size != 5 ||
		v[0].Principal != "testkey" || v[0].Owner != "testkey" || v[0].Sequencer != "1" {
		t.Errorf("versitygw: %+v", v[0])
	}
	if a[0].EventName != "ObjectRemoved:Delete" || a[0].Principal != "AWS:AIDAEXAMPLE" || a[0].Owner != "A3NL1KOZZKExample" ||
		!a[0].Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)) || a[0].Region != "eu-west-1" {
		t.Errorf("amazon: %+v", a[0])
	}
	// Forced encodings.
	if r, _ := parseNotifications([]byte(versityNotification), keyURL, now); r[0].Key != "photos/my cat 1.jpg" {
		t.Errorf("url encoding of a raw key: %q", r[0].Key)
	}
	if r, _ := parseNotifications([]byte(amazonNotification), keyRaw, now); r[0].Key != "photos/my+cat%2B1.jpg" {
		t.Errorf("raw encoding of an encoded key: %q", r[0].Key)
	}
	if _, err := parseNotifications([]byte(`{"Service":"S3","Event":"s3:TestEvent","Bucket":"b"}`), keyAuto, now); err != errTestEvent {
		t.Errorf("test event: %v", err)
	}
	for _, bad := range []string{`nope`, `{}`, `{"Records":[{"eventName":"ObjectCreated:Put"}]}`} {
		if _, err := parseNotifications([]byte(bad), keyAuto, now); err == nil || err == errTestEvent {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestRecordShape: the record a notification becomes reads back as aws-lambda-go's S3 event with
// every field, and a removal has no size nor eTag.
func TestRecordShape(t *testing.T) {
	n, err := parseNotifications([]byte(versityNotification), keyAuto, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(n[0].record("my-trigger", "us-west-2"))
	if err != nil {
		t.Fatal(err)
	}
	var r events.S3EventRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	want := events.S3EventRecord{EventVersion: "2.1", EventSource: "aws:s3", AWSRegion: "us-east-1",
		EventTime: time.Date(2026, 12, 2, 16, 40, 38, 0, time.UTC), EventName: "ObjectCreated:Put",
		PrincipalID: events.S3UserIdentity{PrincipalID: "testkey"}, RequestParameters: events.S3RequestParameters{SourceIPAddress: "127.0.0.1"},
		ResponseElements: map[string]string{"x-amz-request-id": "", "x-amz-id-2": ""},
		S3: events.S3Entity{SchemaVersion: "1.0", ConfigurationID: "my-trigger",
			Bucket: events.S3Bucket{Name: "bkt", OwnerIdentity: events.S3UserIdentity{PrincipalID: "testkey"}, Arn: "arn:aws:s3:::bkt"},
			Object: events.S3Object{Key: "photos/my+cat%2B1.jpg", URLDecodedKey: "photos/my cat+1.jpg", Size: 5,
				ETag: "5d41402abc4b2a76b9719d911017c592", Sequencer: "1"}}}
	if !jsonEqual(t, r, want) {
		t.Errorf("record\n%s\nwant\n%s", mustJSON(t, r), mustJSON(t, want))
	}

	a, _ := parseNotifications([]byte(amazonNotification), keyAuto, time.Now())
	var raw struct {
		S3 struct {
			Object map[string]any `json:"object"`
		} `json:"s3"`
	}
	b, _ = json.Marshal(a[0].record("x", "us-west-2"))
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	obj := raw.S3.Object
	if _, ok := obj["size"]; ok {
		t.Errorf("a removal has a size: %s", b)
	}
	if _, ok := obj["eTag"]; ok {
		t.Errorf("a removal has an eTag: %s", b)
	}
	if obj["key"] != "photos/my+cat%2B1.jpg" || obj["sequencer"] != "0055AED6DCD90281E5" {
		t.Errorf("removal object %v", obj)
	}
}

func TestEventFilter(t *testing.T) {
	evs, err := parseEvents("s3:ObjectCreated:*, ObjectRemoved:Delete")
	if err != nil {
		t.Fatal(err)
	}
	f := eventFilter{events: evs, prefix: "in/", suffix: ".jpg"}
	for _, tc := range []struct {
		name, key string
		want      bool
	}{
		{"ObjectCreated:Put", "in/a.jpg", true},
		{"ObjectCreated:CompleteMultipartUpload", "in/a.jpg", true},
		{"ObjectRemoved:Delete", "in/a.jpg", true},
		{"ObjectRemoved:DeleteMarkerCreated", "in/a.jpg", false},
		{"ObjectTagging:Put", "in/a.jpg", false},
		{"ObjectCreated:Put", "out/a.jpg", false},
		{"ObjectCreated:Put", "in/a.png", false},
	} {
		if got := f.matches(notification{EventName: tc.name, Key: tc.key}); got != tc.want {
			t.Errorf("%s %s: %v", tc.name, tc.key, got)
		}
	}
	for _, bad := range []string{"", "ObjectCreated", "s3:Object Created:*", "ObjectCreated:Pu*"} {
		if _, err := parseEvents(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	return mustJSON(t, a) == mustJSON(t, b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
