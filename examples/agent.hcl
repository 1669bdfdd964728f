# A single node with the built-in trigger plugins: gateway agent -config examples/agent.hcl
# (run from the repository's root after `make build`).
#
# Each plugin block names the SHA-256 of its binary (paths are relative to this file), and the
# agent starts nothing else. The checksums below are those of one build; after rebuilding,
# `make build` writes the current lines to bin/plugins.hcl, and
# `bin/gateway plugin checksum bin/gateway-trigger-queue` prints one. A binary that does not match shows as "failed ... refused" in `gateway plugins`.

node_name = "gw1"
data_dir  = "/tmp/gateway-example"

http {
  address = "127.0.0.1:9500"
}

cluster {
  address   = "127.0.0.1:9501"
  bootstrap = true
}

# Queues and streams live in NATS JetStream, run inside the agent (data in data_dir/jetstream).
# It admits the agent, its plugins and clients holding the NKey of data_dir/nats-client.nk.
# For several nodes, point them all at one NATS cluster instead: url = "nats://nats.internal:4222".
nats {
  listen = "127.0.0.1:4222"
}

plugin "queue" {
  path     = "../bin/gateway-trigger-queue"
  checksum = "sha256:fc0402fbeb0a6732af65f40f0e851c86ceaea041c8cdb7e111d8e0475b0242d3"
}
plugin "stream" {
  path     = "../bin/gateway-trigger-stream"
  checksum = "sha256:01d9f96c9acb485664d0c854bc64fc492ab43fd02a6698f57d59b228f7755063"
}
plugin "s3" {
  path     = "../bin/gateway-trigger-s3"
  checksum = "sha256:d52103838fd81a3a64c71963d95d6ca2bc18efba027a82f9f3514e5b7a0d2449"
  config {
    webhook_listen = "127.0.0.1:9510"   # where the object store posts its bucket notifications
  }
}
