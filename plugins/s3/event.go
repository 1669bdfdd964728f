package main

// Lambda's S3 event as this plugin delivers it, the notifications it reads from S3-compatible
// stores, and the on-failure record of an event given up on.

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"time"

	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// Fixed parts of the S3 event.
const (
	eventVersion    = "2.1"
	eventSource     = "aws:s3"
	s3SchemaVersion = "1.0"
	eventTimeFormat = "2006-01-02T15:04:05.000Z"
	// eventPut is the event a polled new or changed object is delivered as.
	eventPut = "ObjectCreated:Put"
	// eventDelete is the event a polled object that is gone is delivered as.
	eventDelete = "ObjectRemoved:Delete"
)

// Key encodings of the notifications a store sends (config webhook_key_encoding).
const (
	keyAuto = "auto" // versitygw's records raw, the others URL-encoded
	keyURL  = "url"  // URL-encoded as Amazon S3 does ('+' for a space)
	keyRaw  = "raw"  // the key as it is
)

// s3Event is Lambda's S3 event: the records of one invocation.
type s3Event struct {
	Records []json.RawMessage `json:"Records"`
}

// s3Record is one record of Lambda's S3 event, with the fields Amazon S3 sends.
type s3Record struct {
	EventVersion      string            `json:"eventVersion"`
	EventSource       string            `json:"eventSource"`
	AWSRegion         string            `json:"awsRegion"`
	EventTime         string            `json:"eventTime"`
	EventName         string            `json:"eventName"`
	UserIdentity      principal         `json:"userIdentity"`
	RequestParameters requestParameters `json:"requestParameters"`
	ResponseElements  map[string]string `json:"responseElements"`
	S3                s3Entity          `json:"s3"`
}

type principal struct {
	PrincipalID string `json:"principalId"`
}

type requestParameters struct {
	SourceIPAddress string `json:"sourceIPAddress"`
}

type s3Entity struct {
	SchemaVersion   string   `json:"s3SchemaVersion"`
	ConfigurationID string   `json:"configurationId"`
	Bucket          s3Bucket `json:"bucket"`
	Object          s3Object `json:"object"`
}

type s3Bucket struct {
	Name          string    `json:"name"`
	OwnerIdentity principal `json:"ownerIdentity"`
	ARN           string    `json:"arn"`
}

// s3Object: size and eTag are left out of removal events, as Amazon S3 does.
type s3Object struct {
	Key       string `json:"key"`
	Size      *int64 `json:"size,omitempty"`
	ETag      string `json:"eTag,omitempty"`
	VersionID string `json:"versionId,omitempty"`
	Sequencer string `json:"sequencer"`
}

// notification is one event on an object, whatever store reported it or whether it was polled.
type notification struct {
	Bucket    string
	Key       string // decoded
	EventName string // normalised: "ObjectCreated:Put", no "s3:" prefix
	Time      time.Time
	Region    string // "" for the plugin's region
	Principal string
	Owner     string
	SourceIP  string
	Response  map[string]string
	Size      *int64
	ETag      string // without quotes
	VersionID string
	Sequencer string
}

// record is n as a record of mapping name's event, in region when the store gave none.
func (n notification) record(configurationID, region string) s3Record {
	if n.Region != "" {
		region = n.Region
	}
	resp := n.Response
	if resp == nil {
		resp = map[string]string{"x-amz-request-id": "", "x-amz-id-2": ""}
	}
	obj := s3Object{Key: encodeKey(n.Key), VersionID: n.VersionID, Sequencer: n.Sequencer}
	if !strings.HasPrefix(n.EventName, "ObjectRemoved:") {
		obj.Size, obj.ETag = n.Size, n.ETag
		if obj.Size == nil && strings.HasPrefix(n.EventName, "ObjectCreated:") {
			obj.Size = new(int64)
		}
	}
	return s3Record{
		EventVersion:      eventVersion,
		EventSource:       eventSource,
		AWSRegion:         region,
		EventTime:         n.Time.UTC().Format(eventTimeFormat),
		EventName:         n.EventName,
		UserIdentity:      principal{n.Principal},
		RequestParameters: requestParameters{n.SourceIP},
		ResponseElements:  resp,
		S3: s3Entity{SchemaVersion: s3SchemaVersion, ConfigurationID: configurationID,
			Bucket: s3Bucket{Name: n.Bucket, OwnerIdentity: principal{n.Owner}, ARN: "arn:aws:s3:::" + n.Bucket},
			Object: obj},
	}
}

// encodeKey URL-encodes an object key as Amazon S3 does in its events: form encoding ('+' for
// a space), with '/' left as it is.
func encodeKey(k string) string {
	return strings.ReplaceAll(url.QueryEscape(k), "%2F", "/")
}

// normaliseEventName drops the "s3:" prefix some stores (and the notification configuration)
// use, and names versitygw's multi-object delete as Amazon S3 does.
func normaliseEventName(name string) string {
	name = strings.TrimPrefix(name, "s3:")
	if name == "ObjectRemoved:DeleteObjects" {
		return eventDelete
	}
	return name
}

// unquoteETag drops the quotes an S3 API gives an ETag with; events have none.
func unquoteETag(s string) string {
	return strings.Trim(s, `"`)
}

// pollSequencer is a polled object's sequencer: its modification time then a hash of its key,
// in hex, so that it grows with the object's versions and differs between keys.
func pollSequencer(key string, modified time.Time) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return fmt.Sprintf("%016X%08X", modified.UnixNano(), h.Sum32())
}

// inNotification is a notification document as stores POST it: Amazon S3's event (also what
// MinIO, Ceph and others send) or versitygw's, which differs in spelling.
type inNotification struct {
	Records []json.RawMessage `json:"Records"`
	Event   string            `json:"Event"` // "s3:TestEvent" in test events
}

type inRecord struct {
	EventName         string          `json:"eventName"`
	EventTime         string          `json:"eventTime"`
	AWSRegion         string          `json:"awsRegion"`
	UserIdentity      json.RawMessage `json:"userIdentity"`
	RequestParameters struct {
		SourceIPAddress string `json:"sourceIPAddress"`
	} `json:"requestParameters"`
	ResponseElements map[string]string `json:"responseElements"`
	S3               struct {
		Bucket struct {
			Name          string          `json:"name"`
			OwnerIdentity json.RawMessage `json:"ownerIdentity"`
		} `json:"bucket"`
		Object struct {
			Key       string  `json:"key"`
			Size      *int64  `json:"size"`
			ETag      *string `json:"eTag"`
			VersionID *string `json:"versionId"`
			Sequencer string  `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

// errTestEvent: the document is a store's test event, to be answered and forgotten.
var errTestEvent = errors.New("a test event")

// parseNotifications reads a notification document. Keys are decoded by encoding (keyAuto:
// raw for versitygw's records, which spell userIdentity's field "PrincipalId", URL-encoded for
// the others). now stands in for an event time that cannot be read.
func parseNotifications(body []byte, encoding string, now time.Time) ([]notification, error) {
	var doc inNotification
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("the notification is not JSON: %w", err)
	}
	if len(doc.Records) == 0 {
		if strings.HasSuffix(doc.Event, "TestEvent") {
			return nil, errTestEvent
		}
		return nil, errors.New("the notification has no Records")
	}
	out := make([]notification, 0, len(doc.Records))
	for i, raw := range doc.Records {
		var r inRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if r.S3.Bucket.Name == "" || r.S3.Object.Key == "" || r.EventName == "" {
			return nil, fmt.Errorf("record %d has no bucket, key or event name", i)
		}
		who, versity := principalOf(r.UserIdentity)
		key := r.S3.Object.Key
		if encoding == keyURL || (encoding == keyAuto && !versity) {
			k, err := url.QueryUnescape(key)
			if err != nil {
				return nil, fmt.Errorf("record %d: key %q is not URL-encoded: %w", i, key, err)
			}
			key = k
		}
		owner, _ := principalOf(r.S3.Bucket.OwnerIdentity)
		n := notification{Bucket: r.S3.Bucket.Name, Key: key, EventName: normaliseEventName(r.EventName),
			Time: parseEventTime(r.EventTime, now), Region: r.AWSRegion, Principal: who, Owner: owner,
			SourceIP: r.RequestParameters.SourceIPAddress, Response: r.ResponseElements, Size: r.S3.Object.Size,
			Sequencer: r.S3.Object.Sequencer}
		if r.S3.Object.ETag != nil {
			n.ETag = unquoteETag(*r.S3.Object.ETag)
		}
		if r.S3.Object.VersionID != nil {
			n.VersionID = *r.S3.Object.VersionID
		}
		out = append(out, n)
	}
	return out, nil
}

// principalOf reads {"principalId": ...}; versity says whether it was spelled "PrincipalId",
// as versitygw does.
func principalOf(raw json.RawMessage) (id string, versity bool) {
	var m map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return "", false
	}
	if v, ok := m["PrincipalId"].(string); ok {
		return v, true
	}
	v, _ := m["principalId"].(string)
	return v, false
}

func parseEventTime(s string, fallback time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	return fallback
}

// invocationRecord is what goes to a mapping's on-failure destination for records given up on:
// Lambda's asynchronous invocation record, with the event the function was (or would have been)
// invoked with as requestPayload.
type invocationRecord struct {
	Version         string                  `json:"version"`
	Timestamp       string                  `json:"timestamp"`
	RequestContext  trigger.RequestContext  `json:"requestContext"`
	RequestPayload  json.RawMessage         `json:"requestPayload"`
	ResponseContext trigger.ResponseContext `json:"responseContext"`
	ResponsePayload json.RawMessage         `json:"responsePayload,omitempty"`
}

// eventFilter is a mapping's filter: event names (Amazon S3's notification configuration
// names: "s3:ObjectCreated:*", "s3:ObjectRemoved:Delete", ...) and key prefix and suffix.
type eventFilter struct {
	events []string // normalised; a trailing "*" matches any name of the category
	prefix string
	suffix string
}

// parseEvents reads a comma-separated list of event names.
func parseEvents(list string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		n := strings.TrimPrefix(e, "s3:")
		cat, name, ok := strings.Cut(n, ":")
		if !ok || cat == "" || name == "" || strings.ContainsAny(n, " /") || (strings.Contains(name, "*") && name != "*") {
			return nil, fmt.Errorf("%q is no S3 event name (like s3:ObjectCreated:* or s3:ObjectRemoved:Delete)", e)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no event names")
	}
	return out, nil
}

func (f eventFilter) matchesEvent(name string) bool {
	for _, e := range f.events {
		if e == name || (strings.HasSuffix(e, ":*") && strings.HasPrefix(name, strings.TrimSuffix(e, "*"))) {
			return true
		}
	}
	return false
}

func (f eventFilter) matchesKey(key string) bool {
	return strings.HasPrefix(key, f.prefix) && strings.HasSuffix(key, f.suffix)
}

func (f eventFilter) matches(n notification) bool {
	return f.matchesEvent(n.EventName) && f.matchesKey(n.Key)
}
