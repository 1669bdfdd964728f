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
  # tls {                          # mutual TLS between the nodes: certificates of one CA
  #   ca   = "certs/ca.pem"
  #   cert = "certs/gw1.pem"
  #   key  = "certs/gw1-key.pem"
  # }
}

sandbox {
  driver           = "libcontainer"
  max_environments = 100
}
