# Node 3 of a three-node cluster on one machine (examples/cluster/run.sh starts all three).
# On real machines give each node its own address and keep the ports.
node_name = "gw3"
data_dir  = "/tmp/lambdagw-cluster/gw3"

http {
  address = "127.0.0.1:9530"
}

cluster {
  address          = "127.0.0.1:9531"
  bootstrap_expect = 3
  join             = ["127.0.0.1:9511", "127.0.0.1:9521", "127.0.0.1:9531"]
  # tls {                          # mutual TLS between the nodes: certificates of one CA
  #   ca   = "certs/ca.pem"
  #   cert = "certs/gw3.pem"
  #   key  = "certs/gw3-key.pem"
  # }
}

sandbox {
  driver           = "libcontainer"
  max_environments = 100
}
