// Command worker is an ordinary AWS Lambda function for an SQS event source, written with
// aws-lambda-go: it runs on the gateway unchanged behind a queue trigger. It logs each message
// and reports the ones whose body contains "fail" as batch item failures, so the trigger
// delivers them again (and, past its retries, to its on-failure queue) while the others are
// done. Build it as a static binary named bootstrap (runtime provided.al2023):
//
//	CGO_ENABLED=0 go build -o examples/functions/worker/build/bootstrap ./examples/functions/worker
package main

import (
	"context"
	"log"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var out events.SQSEventResponse
	for _, m := range ev.Records {
		if strings.Contains(m.Body, "fail") {
			log.Printf("message %s failed (delivery %s): %s", m.MessageId, m.Attributes["ApproximateReceiveCount"], m.Body)
			out.BatchItemFailures = append(out.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			continue
		}
		log.Printf("message %s done: %s", m.MessageId, m.Body)
	}
	return out, nil
}

func main() { lambda.Start(handle) }
