# Node 1 of a three-node cluster on one machine (examples/cluster/run.sh starts all three).
# On real machines give each node its own address and keep the ports.
node_name = "gw1"
data_dir  = "/tmp/lambdagw-cluster/gw1"

http {
  address = "127.0.0.1:9510"
}

cluster {
  address          = "127.0.0.1:9511"
  bootstrap_expect = 3
  join             = ["127.0.0.1:9511", "127.0.0.1:9521", "127.0.0.1:9531"]
  # Mutual TLS between the nodes, with certificates of one CA (run.sh makes them with
  # `gateway tls ca create` and `gateway tls cert create -node`). Required once nodes have
  # access_key blocks; without it anyone who reaches the cluster port can change functions.
  tls {
    ca   = "certs/gateway-agent-ca.pem"
    cert = "certs/gateway-node-0.pem"
    key  = "certs/gateway-node-0-key.pem"
  }
}

sandbox {
  driver           = "libcontainer"
  max_environments = 100
}
