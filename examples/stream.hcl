# The streaming example, applied by `make run` with functions.hcl. It lives in a file of its own:
# the integration tests copy functions.hcl elsewhere, where this relative code path would not resolve.
function "stream" {
  runtime     = "provided.al2023"
  code        = "./functions/stream/build"
  description = "Streams lines through a function URL, with aws-lambda-go"
  memory_mb   = 128
  timeout     = "60s" # ?n=100&ms=5000 would take longer: the function then stops early and says so

  # curl -N 'http://stream.lambda-url.localhost:9500/?n=5&ms=500'
  url {
    auth_type   = "NONE"
    invoke_mode = "RESPONSE_STREAM"
  }
}
