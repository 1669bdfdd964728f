package structs

// Lease is a node's share of a function's reserved concurrency in a cluster: the node may run
// up to Slots invocations of the function at once until Expires (Unix nanoseconds, the
// proposer's clock). Other nodes get those slots back only once the lease expired and the
// longest invocation admitted under it could have ended (Expires plus the function's timeout),
// so a node cut off from the cluster, which can no longer renew, never overlaps with the rest.
type Lease struct {
	Function string `json:"function"`
	Node     string `json:"node"`
	Slots    int    `json:"slots"`
	Expires  int64  `json:"expires"`
}
