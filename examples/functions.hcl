# The example functions `make run` applies. `gateway apply -address http://127.0.0.1:9500 examples/functions.hcl`
function "hello" {
  runtime     = "provided.al2023"
  code        = "./functions/hello/build"
  description = "Says hello, with aws-lambda-go"
  memory_mb   = 128
  timeout     = "5s"
  environment = { GREETING = "Hello" }
}
