package main

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lambdagw/gateway/plugins/sdk/trigger"
)

// Fixed parts of the SQS event.
const (
	eventSource = "aws:sqs"
	accountID   = "000000000000"
	senderID    = "gateway"
	msgIDHeader = "Nats-Msg-Id"
)

// queueARN is the SQS ARN the events give for queue.
func queueARN(region, queue string) string {
	return "arn:aws:sqs:" + region + ":" + accountID + ":" + queue
}

// messageID is a message's SQS messageId: its Nats-Msg-Id header (the publisher's id), or its
// sequence in the queue's stream.
func messageID(m jetstream.Msg, meta *jetstream.MsgMetadata) string {
	if id := m.Headers().Get(msgIDHeader); id != "" {
		return id
	}
	return strconv.FormatUint(meta.Sequence.Stream, 10)
}

// sqsMessage is m as a record of Lambda's SQS event. firstReceive is when the message was first
// handed out, as far as this plugin knows.
func sqsMessage(m jetstream.Msg, meta *jetstream.MsgMetadata, arn, region string, firstReceive time.Time) events.SQSMessage {
	attrs := map[string]events.SQSMessageAttribute{}
	for k, vs := range m.Headers() {
		if len(vs) == 0 || strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		v := vs[0]
		attrs[k] = events.SQSMessageAttribute{StringValue: &v, StringListValues: []string{}, BinaryListValues: [][]byte{},
			DataType: "String"}
	}
	sum := md5.Sum(m.Data())
	handle := fmt.Sprintf("%s/%s/%d/%d", meta.Stream, meta.Consumer, meta.Sequence.Stream, meta.NumDelivered)
	return events.SQSMessage{
		MessageId:              messageID(m, meta),
		ReceiptHandle:          base64.StdEncoding.EncodeToString([]byte(handle)),
		Body:                   string(m.Data()),
		Md5OfBody:              hex.EncodeToString(sum[:]),
		Md5OfMessageAttributes: md5OfMessageAttributes(attrs),
		Attributes: map[string]string{
			"ApproximateReceiveCount":          strconv.FormatUint(meta.NumDelivered, 10),
			"SentTimestamp":                    strconv.FormatInt(meta.Timestamp.UnixMilli(), 10),
			"SenderId":                         senderID,
			"ApproximateFirstReceiveTimestamp": strconv.FormatInt(firstReceive.UnixMilli(), 10),
		},
		MessageAttributes: attrs,
		EventSourceARN:    arn,
		EventSource:       eventSource,
		AWSRegion:         region,
	}
}

// md5OfMessageAttributes is SQS's MD5OfMessageAttributes of string attributes ("" for none):
// the MD5 of, for each attribute in name order, the length-prefixed (4 bytes, big endian) name
// and data type, the transport type 1 (string), and the length-prefixed value.
func md5OfMessageAttributes(attrs map[string]events.SQSMessageAttribute) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	put := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, n := range names {
		a := attrs[n]
		put(n)
		put(a.DataType)
		h.Write([]byte{1})
		if a.StringValue != nil {
			put(*a.StringValue)
		} else {
			put("")
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// failureRecord is what goes to a mapping's on-failure destination for a message given up on:
// the shape of Lambda's on-failure invocation record for event source mappings, with the SQS
// message (as a one-record SQS event) in payload.
type failureRecord struct {
	RequestContext  trigger.RequestContext  `json:"requestContext"`
	ResponseContext trigger.ResponseContext `json:"responseContext"`
	Version         string                  `json:"version"`
	Timestamp       string                  `json:"timestamp"`
	SQSBatchInfo    sqsBatchInfo            `json:"SQSBatchInfo"`
	Payload         events.SQSEvent         `json:"payload"`
}

type sqsBatchInfo struct {
	QueueARN                string `json:"queueArn"`
	MessageID               string `json:"messageId"`
	BatchSize               int    `json:"batchSize"`
	ApproximateReceiveCount int    `json:"approximateReceiveCount"`
	SentTimestamp           string `json:"sentTimestamp"`
}
