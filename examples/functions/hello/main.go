// Command hello is an ordinary AWS Lambda function written with aws-lambda-go: it runs on the
// gateway unchanged. Invoked directly, it takes {"name":"you"} and answers {"message":"Hello, you!"}
// (GREETING replaces Hello; the name defaults to world). Through its function URL (a buffered url
// block) it answers the same JSON with HTTP 200, the name taken from the query string (?name=you)
// or else from a JSON body. Build it as a static binary named bootstrap (runtime provided.al2023):
//
//	CGO_ENABLED=0 go build -o examples/functions/hello/build/bootstrap ./examples/functions/hello
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// Request is the event the function expects when invoked directly.
type Request struct {
	Name string `json:"name"`
}

// Response is what it answers.
type Response struct {
	Message string `json:"message"`
}

// handle tells a function URL request (it has requestContext.http.method) from a direct invocation.
func handle(ctx context.Context, event json.RawMessage) (any, error) {
	var u events.LambdaFunctionURLRequest
	if json.Unmarshal(event, &u) == nil && u.RequestContext.HTTP.Method != "" {
		return handleURL(u), nil
	}
	var req Request
	if err := json.Unmarshal(event, &req); err != nil {
		return nil, err
	}
	return greet(req.Name), nil
}

func handleURL(req events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	name := req.QueryStringParameters["name"]
	if name == "" && req.Body != "" {
		body := []byte(req.Body)
		if req.IsBase64Encoded {
			var err error
			if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
				return reply(http.StatusBadRequest, map[string]string{"error": "the body is not valid base64"})
			}
		}
		var r Request
		if err := json.Unmarshal(body, &r); err != nil {
			return reply(http.StatusBadRequest, map[string]string{"error": `the body is not JSON such as {"name":"you"}`})
		}
		name = r.Name
	}
	return reply(http.StatusOK, greet(name))
}

func reply(status int, v any) events.LambdaFunctionURLResponse {
	body, _ := json.Marshal(v)
	return events.LambdaFunctionURLResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(body),
	}
}

func greet(name string) Response {
	if name == "" {
		name = "world"
	}
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	log.Printf("greeting %s", name)
	return Response{Message: greeting + ", " + name + "!"}
}

func main() {
	lambda.Start(handle)
}
