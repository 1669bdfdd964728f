# A single node: gateway agent -config examples/agent/agent.hcl (from the repository's root).
#
# With the built-in trigger plugins: `make build` writes bin/agent.hcl, this file followed by
# bin/plugins.hcl (one plugin block per binary it built, naming the binary's SHA-256, which
# changes with every build); run that one: gateway agent -config bin/agent.hcl. The agent starts
# only the binaries its plugin blocks name by checksum; `gateway plugin checksum FILE` prints a
# block's checksum line. Paths here are absolute, as the file is also read from bin/.
#
# This folder holds the agent file apart from the function files of examples/, so that
# `gateway apply examples` gets only function files.

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
