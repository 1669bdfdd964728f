package main

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// Constants of the Kinesis event.
const (
	accountID         = "000000000000"
	eventSource       = "aws:kinesis"
	eventName         = "aws:kinesis:record"
	eventVersion      = "1.0"
	schemaVersion     = "1.0"
	invokeIdentityARN = "arn:aws:iam::" + accountID + ":role/gateway"
)

// streamARN is the Kinesis ARN the events give for stream.
func streamARN(region, stream string) string {
	return "arn:aws:kinesis:" + region + ":" + accountID + ":stream/" + stream
}

// seqString is a record's Kinesis sequence number: its stream sequence in decimal.
func seqString(seq uint64) string { return strconv.FormatUint(seq, 10) }

// kinesisRecord is r as a record of Lambda's Kinesis event, from shard shardID.
func kinesisRecord(r *record, shardID, arn, region string) events.KinesisEventRecord {
	seq := seqString(r.seq)
	data := r.data
	if data == nil {
		data = []byte{} // "data": "", not null
	}
	return events.KinesisEventRecord{
		AwsRegion:         region,
		EventID:           shardID + ":" + seq,
		EventName:         eventName,
		EventSource:       eventSource,
		EventSourceArn:    arn,
		EventVersion:      eventVersion,
		InvokeIdentityArn: invokeIdentityARN,
		Kinesis: events.KinesisRecord{
			// Kinesis gives arrival times in seconds with milliseconds.
			ApproximateArrivalTimestamp: events.SecondsEpochTime{Time: time.UnixMilli(r.arrived.UnixMilli())},
			Data:                        data,
			PartitionKey:                r.key,
			SequenceNumber:              seq,
			KinesisSchemaVersion:        schemaVersion,
		},
	}
}

// event is the Kinesis event of recs and its item ids (their sequence numbers, in order).
func (w *shard) event(recs []*record) ([]byte, []string, error) {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, len(recs))}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ev.Records[i] = kinesisRecord(r, w.id, w.mp.arn, w.mp.region)
		ids[i] = ev.Records[i].Kinesis.SequenceNumber
	}
	body, err := json.Marshal(ev)
	return body, ids, err
}

// failureRecord is what goes to a mapping's on-failure destination for records given up on:
// Lambda's on-failure invocation record for Kinesis, which names the records (their shard and
// sequence range) rather than carrying them; they stay in the stream for its retention.
type failureRecord struct {
	RequestContext   trigger.RequestContext  `json:"requestContext"`
	ResponseContext  trigger.ResponseContext `json:"responseContext"`
	Version          string                  `json:"version"`
	Timestamp        string                  `json:"timestamp"`
	KinesisBatchInfo kinesisBatchInfo        `json:"KinesisBatchInfo"`
}

type kinesisBatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

// sendFailure sends the on-failure record of recs (records of b, in order) given up on for
// cond. With no on-failure destination it logs them instead.
func (w *shard) sendFailure(ctx context.Context, b *batch, recs []*record, cond string) error {
	first, last := recs[0], recs[len(recs)-1]
	logger := w.logger.With("condition", cond, "first", first.seq, "last", last.seq, "size", len(recs),
		"attempts", b.attempts)
	if w.mp.m.OnFailureDestination == "" {
		logger.Warn("dropping records given up on: the mapping has no on-failure destination")
		return nil
	}
	rc := trigger.ResponseContext{ExecutedVersion: trigger.ExecutedVersion(w.mp.m)}
	if b.resp != nil {
		rc = *b.resp
	}
	rec := failureRecord{
		RequestContext:  trigger.NewRequestContext(w.mp.m, cond, b.invokes),
		ResponseContext: rc,
		Version:         "1.0",
		Timestamp:       time.Now().UTC().Format(trigger.TimestampLayout),
		KinesisBatchInfo: kinesisBatchInfo{
			ShardID:                         w.id,
			StartSequenceNumber:             seqString(first.seq),
			EndSequenceNumber:               seqString(last.seq),
			ApproximateArrivalOfFirstRecord: first.arrived.UTC().Format(trigger.TimestampLayout),
			ApproximateArrivalOfLastRecord:  last.arrived.UTC().Format(trigger.TimestampLayout),
			BatchSize:                       len(recs),
			StreamARN:                       w.mp.arn,
		},
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := w.mp.host.SendOnFailure(ctx, w.mp.m.UUID, body); err != nil {
		return err
	}
	logger.Info("records sent to the on-failure destination", "destination", w.mp.m.OnFailureDestination)
	return nil
}
