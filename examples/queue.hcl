# A queue trigger: `make run` applies it with the other examples. Send it messages with
#   bin/gateway queue send orders '{"order": 1}'
# and watch them with `bin/gateway logs -f worker`. A message whose body says "fail" is
# delivered again twice, then put on the queue orders-dlq.
function "worker" {
  runtime     = "provided.al2023"
  code        = "./functions/worker/build"
  description = "Processes the orders queue, with aws-lambda-go"
  timeout     = "10s"

  trigger "orders" {
    plugin                     = "queue"     # bin/gateway-trigger-queue, which -dev runs
    source                     = "orders"
    batch_size                 = 10
    batch_window               = "1s"
    report_batch_item_failures = true
    maximum_retry_attempts     = 2
    on_failure {
      destination = "queue:orders-dlq"
    }
  }
}
