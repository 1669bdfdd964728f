# The example functions `make run` applies. `gateway apply -address http://127.0.0.1:9500 examples`
# (every *.hcl file there: this one, stream.hcl, apart because the integration tests apply this file alone, and queue.hcl).
function "hello" {
  runtime     = "provided.al2023"
  code        = "./functions/hello/build"
  description = "Says hello, with aws-lambda-go"
  memory_mb   = 128
  timeout     = "5s"
  environment = { GREETING = "Hello" }

  # http://hello.lambda-url.localhost:9500/?name=you
  url {
    auth_type = "NONE"
    cors {
      allow_origins = ["*"]
      allow_methods = ["GET", "POST"]
    }
  }
}
