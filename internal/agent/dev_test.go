package agent

import (
	"strings"
	"testing"

	"github.com/lambdagw/gateway/config"
)

// TestDevRefusesAnOpenAPIBeyondLoopback: -dev serves without keys only on loopback addresses;
// the refusal names the address and both ways out.
func TestDevRefusesAnOpenAPIBeyondLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9500": true, "127.0.0.2:9500": true, "[::1]:9500": true, "localhost:9500": true,
		"0.0.0.0:9500": false, ":9500": false, "[::]:9500": false, "192.0.2.10:9500": false, "not a host port": false,
	} {
		cfg := config.DevAgent(t.TempDir())
		cfg.HTTP.Address = addr
		err := checkDevAddress(cfg)
		if ok != (err == nil) {
			t.Errorf("%s: %v, want ok %v", addr, err, ok)
			continue
		}
		if err != nil && (!strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "access_key") || !strings.Contains(err.Error(), "127.0.0.1")) {
			t.Errorf("%s: the error does not name the address and both fixes: %v", addr, err)
		}
		cfg.AccessKeys = []config.AccessKey{{Name: "ops", ID: "AKIADEVTEST000000001", Secret: "s", Policy: config.PolicyAdmin}}
		if err := checkDevAddress(cfg); err != nil {
			t.Errorf("%s with an access key: %v", addr, err)
		}
	}
}
