// Package testbuild builds the test function (internal/testfixtures/testfunction) for tests: a real
// aws-lambda-go runtime, as a static binary named bootstrap in a folder of its own.
package testbuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Build writes <dir>/bootstrap and makes dir readable by everyone (the runtime runs unprivileged,
// as in Lambda). It returns dir.
func Build(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "bootstrap"), "./internal/testfixtures/testfunction")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test function: %v\n%s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}
