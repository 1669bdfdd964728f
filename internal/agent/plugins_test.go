package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientNKey: the client key file is made once (mode 0600) and read back as the same key at
// the next start; a damaged one is an error that says how to replace it.
func TestClientNKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), natsClientSeedFile)
	first, err := clientNKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the key file: %v %v, want mode 0600", st, err)
	}
	again, err := clientNKey(path)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := first.PublicKey()
	p2, _ := again.PublicKey()
	if p1 != p2 || !strings.HasPrefix(p1, "U") {
		t.Fatalf("the key changed between starts: %s, then %s", p1, p2)
	}
	if err := os.WriteFile(path, []byte("not a seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := clientNKey(path); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("a damaged key file: %v", err)
	}
}
