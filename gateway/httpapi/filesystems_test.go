package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lambdagw/gateway/internal/structs"
)

// TestFileSystemConfigs: the AWS SDK's FileSystemConfigs name the node's file systems by an EFS
// access point's ARN or the gateway's, are answered with the ARN given (no drift for Terraform),
// and are replaced and removed by UpdateFunctionConfiguration; a file system the node does not
// declare, or a mount outside /mnt, is refused as InvalidParameterValueException naming it.
func TestFileSystemConfigs(t *testing.T) {
	sdk, url := newStack(t, stackOptions{fileSystems: []structs.NodeFileSystem{
		{Name: "shared", AccessPoints: []string{"team-a"}}, {Name: "scratch"}}})
	ctx := context.Background()
	efs := "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/team-a"
	_, err := sdk.CreateFunction(ctx, &awslambda.CreateFunctionInput{
		FunctionName: aws.String("fs"), Runtime: types.RuntimeProvidedal2023, Role: aws.String("arn:aws:iam::123456789012:role/x"),
		Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: zipped},
		FileSystemConfigs: []types.FileSystemConfig{{Arn: aws.String(efs), LocalMountPath: aws.String("/mnt/efs")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := sdk.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("fs")})
	if err != nil {
		t.Fatal(err)
	}
	if fc := got.Configuration.FileSystemConfigs; len(fc) != 1 || aws.ToString(fc[0].Arn) != efs || aws.ToString(fc[0].LocalMountPath) != "/mnt/efs" {
		t.Fatalf("GetFunction's FileSystemConfigs: %+v", fc)
	}
	// The gateway's own ARN, read-only (its own field), through the raw API.
	status, typ, body := call(t, "PUT", url+"/2015-03-31/functions/fs/configuration",
		`{"FileSystemConfigs": [{"Arn": "arn:lambdagw:file-system:us-east-1::scratch", "LocalMountPath": "/mnt/scratch/data", "GatewayReadOnly": true}]}`)
	if status != 200 || !strings.Contains(body, `"FileSystemConfigs":[{"Arn":"arn:lambdagw:file-system:us-east-1::scratch","LocalMountPath":"/mnt/scratch/data","GatewayReadOnly":true}]`) {
		t.Fatalf("update to the gateway's ARN: %d %s %s", status, typ, body)
	}
	// Left alone by an update that does not name it.
	if _, body := update(t, url, `{"Description": "d"}`); !strings.Contains(body, `"LocalMountPath":"/mnt/scratch/data"`) {
		t.Fatalf("an update without FileSystemConfigs changed them: %s", body)
	}
	refused := map[string]struct{ body, want string }{
		"undeclared":        {`{"FileSystemConfigs": [{"Arn": "arn:lambdagw:file-system:us-east-1::other", "LocalMountPath": "/mnt/x"}]}`, `file system \"other\" is not declared on this node (its file systems: shared, shared/team-a, scratch)`},
		"undeclared ap":     {`{"FileSystemConfigs": [{"Arn": "arn:lambdagw:file-system:us-east-1::shared/team-b", "LocalMountPath": "/mnt/x"}]}`, `file system \"shared\" has no access point \"team-b\"`},
		"undeclared efs":    {`{"FileSystemConfigs": [{"Arn": "arn:aws:elasticfilesystem:us-east-1:1:access-point/fsap-1", "LocalMountPath": "/mnt/x"}]}`, `declares no access point \"fsap-1\"`},
		"outside mnt":       {`{"FileSystemConfigs": [{"Arn": "arn:lambdagw:file-system:us-east-1::scratch", "LocalMountPath": "/etc"}]}`, `\"/etc\" is outside /mnt`},
		"mnt itself":        {`{"FileSystemConfigs": [{"Arn": "arn:lambdagw:file-system:us-east-1::scratch", "LocalMountPath": "/mnt"}]}`, "is not a folder under /mnt"},
		"escape":            {`{"FileSystemConfigs": [{"Arn": "arn:lambdagw:file-system:us-east-1::scratch", "LocalMountPath": "/mnt/../etc"}]}`, `has \"..\"`},
		"two":               {`{"FileSystemConfigs": [{"Arn": "arn:lambdagw:file-system:us-east-1::scratch", "LocalMountPath": "/mnt/a"}, {"Arn": "arn:lambdagw:file-system:us-east-1::shared", "LocalMountPath": "/mnt/b"}]}`, "a function mounts at most 1"},
		"not a file system": {`{"FileSystemConfigs": [{"Arn": "arn:aws:sqs:us-east-1:1:q", "LocalMountPath": "/mnt/x"}]}`, "is not the ARN of a file system"},
	}
	for name, c := range refused {
		t.Run(name, func(t *testing.T) {
			status, typ, body := call(t, "PUT", url+"/2015-03-31/functions/fs/configuration", c.body)
			if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s %s; want 400 InvalidParameterValueException with %s", status, typ, body, c.want)
			}
		})
	}
	if _, body := update(t, url, `{"FileSystemConfigs": []}`); strings.Contains(body, "FileSystemConfigs") {
		t.Fatalf("[] did not remove the file system: %s", body)
	}
	status, typ, body = call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "nofs", map[string]any{
		"FileSystemConfigs": []any{map[string]any{"Arn": "arn:lambdagw:file-system:us-east-1::missing", "LocalMountPath": "/mnt/m"}}}))
	if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, `file system \"missing\" is not declared`) {
		t.Fatalf("create with an undeclared file system: %d %s %s", status, typ, body)
	}
	if status, _, _ := call(t, "GET", url+"/2015-03-31/functions/nofs", ""); status != 404 {
		t.Fatalf("a refused create made the function (%d)", status)
	}
}

// update sends an UpdateFunctionConfiguration body, failing the test unless it is taken.
func update(t *testing.T, url, body string) (int, string) {
	t.Helper()
	status, typ, out := call(t, "PUT", url+"/2015-03-31/functions/fs/configuration", body)
	if status != 200 {
		t.Fatalf("update %s: %d %s %s", body, status, typ, out)
	}
	return status, out
}
