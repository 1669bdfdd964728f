// Command stream demonstrates response streaming through a function URL with
// invoke_mode = "RESPONSE_STREAM", written with aws-lambda-go: the handler returns an
// events.LambdaFunctionURLStreamingResponse at once, its Body the read end of a pipe that a
// goroutine writes one line at a time, so `curl -N` shows each line as it is written instead of
// all of them at the end. Query parameters: n, the number of lines (default 5, at most 100), and
// ms, the pause between them in milliseconds (default 500, at most 5000). When the function's
// timeout would cut the stream short, it says so in a last line and ends. Build it as a static
// binary named bootstrap (runtime provided.al2023):
//
//	CGO_ENABLED=0 go build -o examples/functions/stream/build/bootstrap ./examples/functions/stream
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, req events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error) {
	n := intParam(req.QueryStringParameters, "n", 5, 1, 100)
	pause := time.Duration(intParam(req.QueryStringParameters, "ms", 500, 0, 5000)) * time.Millisecond
	log.Printf("streaming %d lines, %v apart", n, pause)
	pr, pw := io.Pipe()
	// aws-lambda-go sends what the pipe yields as it comes, then closes the reader, which stops
	// this goroutine should the client have gone away. An error ends the stream as a function error.
	go func() { pw.CloseWithError(write(ctx, pw, n, pause)) }()
	return &events.LambdaFunctionURLStreamingResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Example": "stream"},
		Body:       pr,
	}, nil
}

// write writes n lines, pause apart, each a chunk of the response.
func write(ctx context.Context, w io.Writer, n int, pause time.Duration) error {
	for i := 1; i <= n; i++ {
		if i > 1 {
			if deadline, ok := ctx.Deadline(); ok && time.Now().Add(pause+250*time.Millisecond).After(deadline) {
				_, err := fmt.Fprintf(w, "stopping after %d of %d lines: the function's timeout is near\n", i-1, n)
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
		if _, err := fmt.Fprintf(w, "chunk %d of %d at %s\n", i, n, time.Now().Format("15:04:05.000")); err != nil {
			return err
		}
	}
	return nil
}

// intParam reads a query parameter: def when absent or not a number, else clamped to [lo, hi].
func intParam(q map[string]string, name string, def, lo, hi int) int {
	v, err := strconv.Atoi(q[name])
	if err != nil {
		return def
	}
	return max(lo, min(v, hi))
}

func main() {
	lambda.Start(handle)
}
