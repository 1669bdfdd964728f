package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/redis/go-redis/v9"

	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// Fixed parts of the event, which has the shape of Lambda's Kinesis event.
const (
	eventSource       = "redis:streams"
	eventName         = "redis:streams:record"
	eventVersion      = "1.0"
	schemaVersion     = "1.0"
	invokeIdentityARN = "arn:aws:iam::000000000000:role/gateway"
	// The entry fields that become a record's partition key and data.
	keyField  = "key"
	dataField = "data"
)

// streamARN is the eventSourceARN the events give for stream on the server at address.
func streamARN(address, stream string) string {
	return "redis://" + address + "/" + stream
}

// entryTime is when an entry was added, from its ID ("<milliseconds>-<sequence>"); the zero
// time for an ID that does not say.
func entryTime(id string) time.Time {
	msPart, _, _ := strings.Cut(id, "-")
	ms, err := strconv.ParseInt(msPart, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// fieldString is an entry field's value as a string (go-redis gives strings for RESP2 and RESP3
// alike; anything else is printed).
func fieldString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// kinesisRecord is the entry msg of stream as a record of a Kinesis event: its partition key is
// the entry's "key" field (or its ID), its data the "data" field, or all its fields as a JSON
// object when it has no "data" field.
func kinesisRecord(msg redis.XMessage, stream, arn, region string) events.KinesisEventRecord {
	key := msg.ID
	if k, ok := msg.Values[keyField]; ok {
		key = fieldString(k)
	}
	var data []byte
	if d, ok := msg.Values[dataField]; ok {
		data = []byte(fieldString(d))
	} else {
		fields := make(map[string]string, len(msg.Values))
		for k, v := range msg.Values {
			fields[k] = fieldString(v)
		}
		data, _ = json.Marshal(fields) // strings only: cannot fail
	}
	return events.KinesisEventRecord{
		AwsRegion:         region,
		EventID:           stream + ":" + msg.ID,
		EventName:         eventName,
		EventSource:       eventSource,
		EventSourceArn:    arn,
		EventVersion:      eventVersion,
		InvokeIdentityArn: invokeIdentityARN,
		Kinesis: events.KinesisRecord{
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: entryTime(msg.ID)},
			Data:                        data,
			PartitionKey:                key,
			SequenceNumber:              msg.ID,
			KinesisSchemaVersion:        schemaVersion,
		},
	}
}

// kinesisEvent is the event of msgs and its item IDs (the entry IDs, in order).
func kinesisEvent(msgs []redis.XMessage, stream, arn, region string) ([]byte, []string, error) {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, len(msgs))}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ev.Records[i] = kinesisRecord(m, stream, arn, region)
		ids[i] = m.ID
	}
	body, err := json.Marshal(ev)
	return body, ids, err
}

// failureRecord is what goes to a mapping's on-failure destination for entries given up on: the
// shape of Lambda's on-failure invocation record for Kinesis, which names the records rather
// than carrying them (they stay in the stream until it is trimmed; XRANGE reads them).
type failureRecord struct {
	RequestContext  trigger.RequestContext  `json:"requestContext"`
	ResponseContext trigger.ResponseContext `json:"responseContext"`
	Version         string                  `json:"version"`
	Timestamp       string                  `json:"timestamp"`
	StreamBatchInfo streamBatchInfo         `json:"RedisStreamBatchInfo"`
}

type streamBatchInfo struct {
	StreamARN                       string   `json:"streamArn"`
	Stream                          string   `json:"stream"`
	Group                           string   `json:"group"`
	StartSequenceNumber             string   `json:"startSequenceNumber"`
	EndSequenceNumber               string   `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string   `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string   `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int      `json:"batchSize"`
	EntryIDs                        []string `json:"entryIds"`
}

// newFailureRecord is the on-failure record of the entries ids (not empty), given up on for cond
// after invokes invocations.
func newFailureRecord(ids []string, cond string, invokes int, resp trigger.ResponseContext, functionARN, arn, stream, group string) failureRecord {
	ids = append([]string(nil), ids...)
	sort.Slice(ids, func(i, j int) bool { return lessID(ids[i], ids[j]) })
	first, last := ids[0], ids[len(ids)-1]
	return failureRecord{
		RequestContext: trigger.RequestContext{RequestID: trigger.NewRequestID(), FunctionARN: functionARN, Condition: cond,
			ApproximateInvokeCount: max(invokes, 0)},
		ResponseContext: resp,
		Version:         "1.0",
		Timestamp:       time.Now().UTC().Format(trigger.TimestampLayout),
		StreamBatchInfo: streamBatchInfo{
			StreamARN:                       arn,
			Stream:                          stream,
			Group:                           group,
			StartSequenceNumber:             first,
			EndSequenceNumber:               last,
			ApproximateArrivalOfFirstRecord: entryTime(first).UTC().Format(trigger.TimestampLayout),
			ApproximateArrivalOfLastRecord:  entryTime(last).UTC().Format(trigger.TimestampLayout),
			BatchSize:                       len(ids),
			EntryIDs:                        ids,
		},
	}
}

// lessID orders stream entry IDs ("<ms>-<seq>") as Redis does.
func lessID(a, b string) bool {
	am, as := splitID(a)
	bm, bs := splitID(b)
	if am != bm {
		return am < bm
	}
	return as < bs
}

func splitID(id string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	s, _ := strconv.ParseUint(seq, 10, 64)
	return m, s
}
