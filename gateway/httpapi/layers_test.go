package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// zipOf makes a zip of files; a file given as a size only is that many zero bytes (cheap to
// compress, large to unpack).
func zipOf(t *testing.T, files map[string]string, zeros map[string]int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	chunk := make([]byte, 1<<20)
	for name, n := range zeros {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		for left := n; left > 0; left -= len(chunk) {
			_, _ = w.Write(chunk[:min(left, len(chunk))])
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return fmt.Sprint(err)
}

// The layer operations through the AWS SDK for Go, and layers on functions, with every misuse
// a clear Lambda error.
func TestLayersWithTheAWSSDK(t *testing.T) {
	c := stack(t)
	ctx := context.Background()
	publish := func(name, desc string, runtimes ...types.Runtime) *awslambda.PublishLayerVersionOutput {
		t.Helper()
		out, err := c.PublishLayerVersion(ctx, &awslambda.PublishLayerVersionInput{LayerName: aws.String(name), Description: aws.String(desc),
			Content:            &types.LayerVersionContentInput{ZipFile: zipOf(t, map[string]string{"nodejs/node_modules/m/index.js": desc}, nil)},
			CompatibleRuntimes: runtimes, LicenseInfo: aws.String("MIT")})
		if err != nil {
			t.Fatalf("publishing %s: %v", name, apiErrorCode(err))
		}
		return out
	}
	v1 := publish("deps", "one", types.RuntimeNodejs20x)
	v2 := publish("deps", "two", types.RuntimeNodejs20x, types.RuntimeProvidedal2023)
	other := publish("tools", "tools")
	if v1.Version != 1 || v2.Version != 2 || aws.ToString(v2.LayerVersionArn) != "arn:aws:lambda:us-east-1:000000000000:layer:deps:2" ||
		aws.ToString(v2.LayerArn) != "arn:aws:lambda:us-east-1:000000000000:layer:deps" || v2.Content == nil || aws.ToString(v2.Content.CodeSha256) == "" ||
		v2.Content.CodeSize == 0 || aws.ToString(v2.CreatedDate) == "" || aws.ToString(v2.LicenseInfo) != "MIT" {
		t.Fatalf("published: %+v %+v", v2, v2.Content)
	}
	got, err := c.GetLayerVersion(ctx, &awslambda.GetLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(1)})
	if err != nil || aws.ToString(got.Description) != "one" {
		t.Fatalf("GetLayerVersion: %+v %v", got, err)
	}
	byARN, err := c.GetLayerVersionByArn(ctx, &awslambda.GetLayerVersionByArnInput{Arn: v2.LayerVersionArn})
	if err != nil || aws.ToString(byARN.Description) != "two" || byARN.Version != 2 {
		t.Fatalf("GetLayerVersionByArn: %+v %v", byARN, err)
	}
	if _, err := c.GetLayerVersion(ctx, &awslambda.GetLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(9)}); !strings.HasPrefix(apiErrorCode(err), "ResourceNotFoundException") {
		t.Errorf("a layer version that does not exist: %v", apiErrorCode(err))
	}
	layers, err := c.ListLayers(ctx, &awslambda.ListLayersInput{})
	if err != nil || len(layers.Layers) != 2 || aws.ToString(layers.Layers[0].LayerName) != "deps" || layers.Layers[0].LatestMatchingVersion.Version != 2 {
		t.Fatalf("ListLayers: %+v %v", layers, err)
	}
	layers, err = c.ListLayers(ctx, &awslambda.ListLayersInput{CompatibleRuntime: types.RuntimeProvidedal2023})
	if err != nil || len(layers.Layers) != 1 || layers.Layers[0].LatestMatchingVersion.Version != 2 {
		t.Fatalf("ListLayers for provided.al2023: %+v %v", layers, err)
	}
	versions, err := c.ListLayerVersions(ctx, &awslambda.ListLayerVersionsInput{LayerName: aws.String("deps"), MaxItems: aws.Int32(1)})
	if err != nil || len(versions.LayerVersions) != 1 || versions.LayerVersions[0].Version != 2 || versions.NextMarker == nil {
		t.Fatalf("ListLayerVersions, first page: %+v %v", versions, err)
	}
	versions, err = c.ListLayerVersions(ctx, &awslambda.ListLayerVersionsInput{LayerName: aws.String("deps"), Marker: versions.NextMarker})
	if err != nil || len(versions.LayerVersions) != 1 || versions.LayerVersions[0].Version != 1 || versions.NextMarker != nil {
		t.Fatalf("ListLayerVersions, second page: %+v %v", versions, err)
	}

	// Permissions are kept and read back.
	perm, err := c.AddLayerVersionPermission(ctx, &awslambda.AddLayerVersionPermissionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(2),
		StatementId: aws.String("everyone"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*")})
	if err != nil || !strings.Contains(aws.ToString(perm.Statement), `"everyone"`) || aws.ToString(perm.RevisionId) == "" {
		t.Fatalf("AddLayerVersionPermission: %+v %v", perm, apiErrorCode(err))
	}
	if _, err := c.AddLayerVersionPermission(ctx, &awslambda.AddLayerVersionPermissionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(2),
		StatementId: aws.String("everyone"), Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*")}); !strings.HasPrefix(apiErrorCode(err), "ResourceConflictException") {
		t.Errorf("a statement id twice: %v", apiErrorCode(err))
	}
	if _, err := c.AddLayerVersionPermission(ctx, &awslambda.AddLayerVersionPermissionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(2),
		StatementId: aws.String("x"), Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("*")}); !strings.HasPrefix(apiErrorCode(err), "InvalidParameterValueException") {
		t.Errorf("a layer permission for another action: %v", apiErrorCode(err))
	}
	pol, err := c.GetLayerVersionPolicy(ctx, &awslambda.GetLayerVersionPolicyInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(2)})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `"everyone"`) || aws.ToString(pol.RevisionId) != aws.ToString(perm.RevisionId) {
		t.Fatalf("GetLayerVersionPolicy: %+v %v", pol, err)
	}
	if _, err := c.RemoveLayerVersionPermission(ctx, &awslambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(2),
		StatementId: aws.String("everyone"), RevisionId: aws.String("stale")}); !strings.HasPrefix(apiErrorCode(err), "PreconditionFailedException") {
		t.Errorf("removing on a stale revision: %v", apiErrorCode(err))
	}
	if _, err := c.RemoveLayerVersionPermission(ctx, &awslambda.RemoveLayerVersionPermissionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(2),
		StatementId: aws.String("everyone")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetLayerVersionPolicy(ctx, &awslambda.GetLayerVersionPolicyInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(2)}); !strings.HasPrefix(apiErrorCode(err), "ResourceNotFoundException") {
		t.Errorf("the policy of a layer version without statements: %v", apiErrorCode(err))
	}

	// A function with layers answers them; an update changes them, [] removes them.
	fn, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("withlayers"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: zipped}, Layers: []string{aws.ToString(v1.LayerVersionArn), aws.ToString(other.LayerVersionArn)}})
	if err != nil {
		t.Fatalf("creating a function with layers: %v", apiErrorCode(err))
	}
	if len(fn.Layers) != 2 || aws.ToString(fn.Layers[0].Arn) != aws.ToString(v1.LayerVersionArn) || fn.Layers[0].CodeSize != v1.Content.CodeSize {
		t.Fatalf("the function's layers: %+v", fn.Layers)
	}
	// Deleting a layer version changes nothing for the functions that use it.
	if _, err := c.DeleteLayerVersion(ctx, &awslambda.DeleteLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteLayerVersion(ctx, &awslambda.DeleteLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Errorf("deleting a deleted layer version (Lambda answers 204): %v", err)
	}
	gf, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("withlayers")})
	if err != nil || len(gf.Configuration.Layers) != 2 {
		t.Fatalf("GetFunction after the layer version was deleted: %+v %v", gf, err)
	}
	up, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("withlayers"),
		Layers: []string{aws.ToString(v2.LayerVersionArn)}})
	if err != nil || len(up.Layers) != 1 || aws.ToString(up.Layers[0].Arn) != aws.ToString(v2.LayerVersionArn) {
		t.Fatalf("updating the layers: %+v %v", up, apiErrorCode(err))
	}
	up, err = c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("withlayers"), Description: aws.String("d")})
	if err != nil || len(up.Layers) != 1 {
		t.Fatalf("an update without Layers keeps them: %+v %v", up, err)
	}
	up, err = c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("withlayers"), Layers: []string{}})
	if err != nil || len(up.Layers) != 0 {
		t.Fatalf("Layers [] removes them: %+v %v", up, err)
	}

	// Misuse, each refused with a message naming it, and nothing changed.
	var six []string
	for i := 0; i < 6; i++ {
		six = append(six, aws.ToString(publish(fmt.Sprintf("l%d", i), "x").LayerVersionArn))
	}
	bigZip := zipOf(t, nil, map[string]int{"blob": 200 << 20})
	bigOut, err := c.PublishLayerVersion(ctx, &awslambda.PublishLayerVersionInput{LayerName: aws.String("big"), Content: &types.LayerVersionContentInput{ZipFile: bigZip}})
	if err != nil {
		t.Fatalf("a 200 MB layer: %v", apiErrorCode(err))
	}
	withBig := zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\n"}, map[string]int{"data": 60 << 20})
	for name, tc := range map[string]struct {
		layers []string
		code   []byte
		want   string
	}{
		"sixth layer":     {six, zipped, "at most 5"},
		"unknown version": {[]string{"arn:aws:lambda:us-east-1:000000000000:layer:deps:99"}, zipped, "does not exist"},
		"other account":   {[]string{"arn:aws:lambda:us-east-1:123456789012:layer:deps:2"}, zipped, "account 123456789012"},
		"not an ARN":      {[]string{"deps:2"}, zipped, "not a layer version ARN"},
		"same layer twice": {[]string{aws.ToString(v2.LayerVersionArn), strings.TrimSuffix(aws.ToString(v2.LayerVersionArn), "2") + "2"},
			zipped, "at most one version of a layer"},
		"over 250 MB with the code": {[]string{aws.ToString(bigOut.LayerVersionArn)}, withBig, "over the limit of 250 MB"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("refused"), Runtime: types.RuntimeProvidedal2023,
				Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: tc.code}, Layers: tc.layers})
			if code := apiErrorCode(err); !strings.HasPrefix(code, "InvalidParameterValueException") || !strings.Contains(code, tc.want) {
				t.Errorf("got %v, want InvalidParameterValueException naming %q", code, tc.want)
			}
			if _, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("refused")}); err == nil {
				t.Error("a refused function was created")
			}
		})
	}
	// The same limits on an update of the configuration and of the code.
	if _, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("withlayers"), Layers: six}); !strings.Contains(apiErrorCode(err), "at most 5") {
		t.Errorf("six layers by update: %v", apiErrorCode(err))
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("withlayers"),
		Layers: []string{aws.ToString(bigOut.LayerVersionArn)}}); err != nil {
		t.Fatalf("a 200 MB layer on a small function: %v", apiErrorCode(err))
	}
	if _, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("withlayers"), ZipFile: withBig}); !strings.Contains(apiErrorCode(err), "over the limit of 250 MB") {
		t.Errorf("code that makes the function and its layers too large: %v", apiErrorCode(err))
	}
	// Layers themselves: a bad name, a zip over the limit alone, code from S3.
	for name, tc := range map[string]struct {
		in   *awslambda.PublishLayerVersionInput
		want string
	}{
		"bad name": {&awslambda.PublishLayerVersionInput{LayerName: aws.String("no spaces"), Content: &types.LayerVersionContentInput{ZipFile: zipped}}, "LayerName"},
		"too big": {&awslambda.PublishLayerVersionInput{LayerName: aws.String("huge"),
			Content: &types.LayerVersionContentInput{ZipFile: zipOf(t, nil, map[string]int{"blob": 251 << 20})}}, "more than 250 MB"},
		"from S3": {&awslambda.PublishLayerVersionInput{LayerName: aws.String("s3"),
			Content: &types.LayerVersionContentInput{S3Bucket: aws.String("b"), S3Key: aws.String("k")}}, "S3Bucket"},
		"no zip": {&awslambda.PublishLayerVersionInput{LayerName: aws.String("empty"), Content: &types.LayerVersionContentInput{}}, "ZipFile"},
		"escaping symlink": {&awslambda.PublishLayerVersionInput{LayerName: aws.String("escape"),
			Content: &types.LayerVersionContentInput{ZipFile: symlinkZip(t, "lib/evil", "/etc/shadow")}}, "outside"},
	} {
		if _, err := c.PublishLayerVersion(ctx, tc.in); !strings.HasPrefix(apiErrorCode(err), "InvalidParameterValueException") || !strings.Contains(apiErrorCode(err), tc.want) {
			t.Errorf("%s: %v, want InvalidParameterValueException naming %q", name, apiErrorCode(err), tc.want)
		}
	}
	if l, _ := c.ListLayerVersions(ctx, &awslambda.ListLayerVersionsInput{LayerName: aws.String("huge")}); l == nil || len(l.LayerVersions) != 0 {
		t.Errorf("a refused layer was published: %+v", l)
	}
}

// symlinkZip is a zip holding one symlink.
func symlinkZip(t *testing.T, name, target string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name}
	h.SetMode(0o777 | os.ModeSymlink)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(target))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
