// Command hello is an ordinary AWS Lambda function written with aws-lambda-go: it runs on the
// gateway unchanged. Build it as a static binary named bootstrap (runtime provided.al2023):
//
//	CGO_ENABLED=0 go build -o examples/functions/hello/build/bootstrap ./examples/functions/hello
package main

import (
	"context"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// Request is the event the function expects.
type Request struct {
	Name string `json:"name"`
}

// Response is what it answers.
type Response struct {
	Message string `json:"message"`
}

func handle(ctx context.Context, req Request) (Response, error) {
	name := req.Name
	if name == "" {
		name = "world"
	}
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	log.Printf("greeting %s", name)
	return Response{Message: greeting + ", " + name + "!"}, nil
}

func main() {
	lambda.Start(handle)
}
