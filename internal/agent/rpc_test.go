package agent

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/lambdagw/gateway/cluster"
	"github.com/lambdagw/gateway/gateway"
)

// TestRouterRoutesBeforeTheRouter: until the router exists, its node RPC routes answer
// unavailable (so a peer runs a forwarded call itself rather than failing it); then they serve.
func TestRouterRoutesBeforeTheRouter(t *testing.T) {
	var ref atomic.Pointer[gateway.Router]
	served := false
	h := whenReady(&ref, func(*gateway.Router, http.ResponseWriter, *http.Request) { served = true })
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest("POST", "/v1/rpc/invoke", nil))
	if re := cluster.ReadRPCError(rec.Result()); rec.Code != http.StatusServiceUnavailable || re.Kind != cluster.KindUnavailable || served {
		t.Fatalf("before the router: %d %+v, served %v", rec.Code, re, served)
	}
	ref.Store(&gateway.Router{})
	h(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/rpc/invoke", nil))
	if !served {
		t.Error("the route did not reach the router once it was set")
	}
}
