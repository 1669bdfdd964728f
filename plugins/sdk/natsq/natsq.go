// Package natsq is the convention for a named work queue on NATS JetStream, shared by the agent
// (which publishes to queues: on-failure destinations, `queue:NAME`) and the queue trigger plugin
// (which consumes them with SQS semantics).
//
// A queue NAME is the JetStream stream QUEUE_<NAME> with the one subject queue.<NAME>, work-queue
// retention (a message is removed once a consumer acks or terminates it) and file storage. Its
// messages are kept until consumed: the queue has no retention period of its own. NAME is what
// an SQS queue name may be: 1 to 80 letters, digits, '-' and '_'.
//
// Event source mappings consume a queue through its one durable consumer, ConsumerName(queue).
// A work-queue stream allows one consumer per subject, so a queue feeds one mapping at a time;
// whoever deletes a mapping for good deletes its consumer, or the queue stays bound to it.
package natsq

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Prefixes of a queue's stream and subject, and of a mapping's consumer.
const (
	StreamPrefix   = "QUEUE_"
	SubjectPrefix  = "queue."
	ConsumerPrefix = "esm-"
)

// ErrInvalidName means a queue name is not one.
var ErrInvalidName = errors.New("invalid queue name")

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// Validate says whether name is a valid queue name.
func Validate(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w %q: use 1 to 80 letters, digits, '-' and '_'", ErrInvalidName, name)
	}
	return nil
}

// StreamName is the JetStream stream of queue name.
func StreamName(name string) string { return StreamPrefix + name }

// Subject is the subject messages are published to for queue name.
func Subject(name string) string { return SubjectPrefix + name }

// ConsumerName is the durable consumer triggers read queue name through. Every mapping of a
// queue shares it (as several Lambda mappings of one SQS queue share its messages), so a
// trigger deleted and created again, or moved to another node, takes up where the last left
// off, and no consumer is left behind to block the queue.
func ConsumerName(queue string) string {
	return ConsumerPrefix + strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			return r
		}
		return '_'
	}, queue)
}

// StreamConfig is the configuration of queue name's stream.
func StreamConfig(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName(name),
		Description: "work queue " + name,
		Subjects:    []string{Subject(name)},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
	}
}

// Ensure returns queue name's stream, creating it if it does not exist. An existing stream is
// left as it is.
func Ensure(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	if err := Validate(name); err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, StreamName(name))
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("looking up queue %s: %w", name, err)
	}
	s, err = js.CreateStream(ctx, StreamConfig(name))
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Someone else created it meanwhile.
		s, err = js.Stream(ctx, StreamName(name))
	}
	if err != nil {
		return nil, fmt.Errorf("creating queue %s: %w", name, err)
	}
	return s, nil
}

// Publish puts a message on queue name (creating the queue if needed) and waits for JetStream's
// acknowledgement that it is stored. Headers become the message's headers (its SQS message
// attributes); a Nats-Msg-Id header deduplicates it within the stream's duplicate window and
// becomes its SQS messageId.
func Publish(ctx context.Context, js jetstream.JetStream, name string, body []byte, headers map[string]string) error {
	if err := Validate(name); err != nil {
		return err
	}
	msg := &nats.Msg{Subject: Subject(name), Data: body}
	if len(headers) > 0 {
		msg.Header = nats.Header{}
		for k, v := range headers {
			msg.Header.Set(k, v)
		}
	}
	// The queue usually exists: publish first, without the client's retries on "no responders".
	_, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(StreamName(name)), jetstream.WithRetryAttempts(0))
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		// No stream takes the subject yet: create the queue and publish again.
		if _, err := Ensure(ctx, js, name); err != nil {
			return err
		}
		_, err = js.PublishMsg(ctx, msg, jetstream.WithExpectStream(StreamName(name)))
	}
	if err != nil {
		return fmt.Errorf("publishing to queue %s: %w", name, err)
	}
	return nil
}
