package reconcile_test

import (
	"reflect"
	"testing"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/reconcile"
	"github.com/lambdagw/gateway/internal/structs"
)

// TestFileSystems: a function's file_system block is part of its configuration: created with
// it in the gateway's ARN, changed and removed by a configuration update that says so, and left
// alone once the agent has it.
func TestFileSystems(t *testing.T) {
	g := newFakeAgent()
	r := reconcile.New(g.start(t), reconcile.Options{})
	code, pkg := codeDir(t, "#!/bin/sh\n")
	fn := function("fn", code)
	fn.FileSystems = []structs.FileSystemConfig{{FileSystem: "shared", AccessPoint: "team-a", LocalMountPath: "/mnt/data"}}
	if got := steps(plan(t, r, fn)); !reflect.DeepEqual(got, []step{{reconcile.Create, "to create (" + reconcile.Size(pkg.Size) + " zip to upload)"}}) {
		t.Fatalf("plan: %v", got)
	}
	apply(t, r, fn)
	want := []lambda.FileSystemConfig{{Arn: "arn:lambdagw:file-system:us-east-1::shared/team-a", LocalMountPath: "/mnt/data"}}
	if got := g.fns["fn"].FileSystemConfigs; !reflect.DeepEqual(got, want) {
		t.Fatalf("created with %+v", got)
	}
	g.take()
	converged(t, r, g, fn)

	fn.FileSystems[0].ReadOnly = true
	want1 := []step{{reconcile.UpdateConfig, "configuration to update (file_system shared/team-a at /mnt/data -> shared/team-a at /mnt/data (read-only))"}}
	if got := steps(plan(t, r, fn)); !reflect.DeepEqual(got, want1) {
		t.Fatalf("plan: %v", got)
	}
	apply(t, r, fn)
	if body := g.configBodies[len(g.configBodies)-1]; body != `{"FileSystemConfigs":[{"Arn":"arn:lambdagw:file-system:us-east-1::shared/team-a","LocalMountPath":"/mnt/data","GatewayReadOnly":true}]}` {
		t.Errorf("update body %s", body)
	}
	g.take()
	converged(t, r, g, fn)

	fn.FileSystems = nil
	if got := steps(plan(t, r, fn)); len(got) != 1 || got[0].text != "configuration to update (file_system shared/team-a at /mnt/data (read-only) -> none)" {
		t.Fatalf("plan: %v", got)
	}
	apply(t, r, fn)
	if body := g.configBodies[len(g.configBodies)-1]; body != `{"FileSystemConfigs":[]}` {
		t.Errorf("the update removing the file system: %s", body)
	}
	g.take()
	converged(t, r, g, fn)
}
