package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// call sends a JSON body to the API and returns the status, the error type and the body.
func call(t *testing.T, method, url, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), string(b)
}

// createRequest is a CreateFunction body for name with extra fields merged in.
func createRequest(t *testing.T, name string, extra map[string]any) string {
	t.Helper()
	in := map[string]any{"FunctionName": name, "Runtime": "provided.al2023", "Handler": "bootstrap",
		"Role": "arn:aws:iam::123456789012:role/x", "Code": map[string]any{"ZipFile": base64.StdEncoding.EncodeToString(zipped)}}
	for k, v := range extra {
		if k == "Code" {
			for ck, cv := range v.(map[string]any) {
				in["Code"].(map[string]any)[ck] = cv
			}
			continue
		}
		in[k] = v
	}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(in); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestUnsupportedSettingsRefused: a request for a Lambda setting the gateway does not implement
// is refused with InvalidParameterValueException naming it, instead of being dropped, and
// creates nothing.
func TestUnsupportedSettingsRefused(t *testing.T) {
	_, url := newStack(t, stackOptions{})
	create := map[string]struct {
		extra map[string]any
		field string
	}{
		"kms":              {map[string]any{"KMSKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k"}, "KMSKeyArn"},
		"tracing active":   {map[string]any{"TracingConfig": map[string]any{"Mode": "Active"}}, "TracingConfig"},
		"snap start":       {map[string]any{"SnapStart": map[string]any{"ApplyOn": "PublishedVersions"}}, "SnapStart"},
		"arm64":            {map[string]any{"Architectures": []string{"arm64"}}, "Architectures"},
		"tags":             {map[string]any{"Tags": map[string]string{"team": "a"}}, "Tags"},
		"code from s3":     {map[string]any{"Code": map[string]any{"S3Bucket": "b", "S3Key": "k.zip"}}, "Code.S3Bucket"},
		"durable function": {map[string]any{"DurableConfig": map[string]any{"ExecutionTimeout": 60}}, "DurableConfig"},
	}
	for name, c := range create {
		t.Run("create "+name, func(t *testing.T) {
			status, typ, body := call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "refused", c.extra))
			if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, `"message":"`+c.field) || !strings.Contains(body, "not supported by this gateway") {
				t.Fatalf("%d %s %s; want 400 InvalidParameterValueException naming %s", status, typ, body, c.field)
			}
		})
	}
	// VpcConfig names the node's networks: one it does not declare, two, or egress policies
	// without a network are refused, naming what is wrong.
	for name, c := range map[string]struct {
		vpc  map[string]any
		want string
	}{
		"unknown network":  {map[string]any{"SubnetIds": []string{"subnet-1"}, "SecurityGroupIds": []string{}}, `VpcConfig.SubnetIds: \"subnet-1\" is not a network of this node`},
		"two networks":     {map[string]any{"SubnetIds": []string{"a", "b"}, "SecurityGroupIds": []string{}}, "a function is on one of the operator's networks"},
		"policies, no net": {map[string]any{"SubnetIds": []string{}, "SecurityGroupIds": []string{"sg-1"}}, "SecurityGroupIds (egress policies) need SubnetIds"},
		"bad network name": {map[string]any{"SubnetIds": []string{"Not_A_Name"}, "SecurityGroupIds": []string{}}, "a network name has 1 to 11"},
		"bad policy name":  {map[string]any{"SubnetIds": []string{"backend"}, "SecurityGroupIds": []string{"a b"}}, "an egress policy name has"},
	} {
		t.Run("create vpc "+name, func(t *testing.T) {
			status, typ, body := call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "refused", map[string]any{"VpcConfig": c.vpc}))
			if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s %s; want 400 InvalidParameterValueException saying %s", status, typ, body, c.want)
			}
		})
	}
	if status, _, body := call(t, "GET", url+"/2015-03-31/functions/refused", ""); status != 404 {
		t.Fatalf("a refused CreateFunction left a function: %d %s", status, body)
	}

	if status, _, body := call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "fn", nil)); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	update := map[string]struct{ body, field string }{
		"tracing active": {`{"TracingConfig": {"Mode": "Active"}}`, "TracingConfig"},
		"kms":            {`{"KMSKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k"}`, "KMSKeyArn"},
	}
	for name, c := range update {
		t.Run("update configuration "+name, func(t *testing.T) {
			status, typ, body := call(t, "PUT", url+"/2015-03-31/functions/fn/configuration", c.body)
			if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, `"message":"`+c.field) {
				t.Fatalf("%d %s %s; want 400 InvalidParameterValueException naming %s", status, typ, body, c.field)
			}
		})
	}
	code := map[string]struct{ body, field string }{
		"s3":      {`{"S3Bucket": "b", "S3Key": "k.zip"}`, "S3Bucket"},
		"arm64":   {`{"ZipFile": "` + base64.StdEncoding.EncodeToString(zipped) + `", "Architectures": ["arm64"]}`, "Architectures"},
		"dry run": {`{"ZipFile": "` + base64.StdEncoding.EncodeToString(zipped) + `", "DryRun": true}`, "DryRun"},
	}
	for name, c := range code {
		t.Run("update code "+name, func(t *testing.T) {
			status, typ, body := call(t, "PUT", url+"/2015-03-31/functions/fn/code", c.body)
			if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, `"message":"`+c.field) {
				t.Fatalf("%d %s %s; want 400 InvalidParameterValueException naming %s", status, typ, body, c.field)
			}
		})
	}
}

// TestUnsupportedSettingsEmptyAccepted: the empty and default values of those settings, which
// Terraform's AWS provider and the SDKs send as a matter of course (to create a function, or to
// remove a setting), are accepted.
func TestUnsupportedSettingsEmptyAccepted(t *testing.T) {
	_, url := newStack(t, stackOptions{})
	// As Terraform's aws_lambda_function creates a function with tracing_config, vpc_config,
	// ephemeral_storage, logging_config and architectures written out at their defaults.
	body := createRequest(t, "tf", map[string]any{
		"PackageType": "Zip", "Description": "", "Publish": true, "MemorySize": 128, "Timeout": 5,
		"Architectures": []string{"x86_64"}, "Layers": []string{}, "TracingConfig": map[string]any{"Mode": "PassThrough"},
		"VpcConfig":        map[string]any{"SubnetIds": []string{}, "SecurityGroupIds": []string{}, "Ipv6AllowedForDualStack": false},
		"EphemeralStorage": map[string]any{"Size": 512}, "FileSystemConfigs": []any{},
		"LoggingConfig": map[string]any{"LogFormat": "Text", "LogGroup": "/aws/lambda/tf"},
		"SnapStart":     map[string]any{"ApplyOn": "None"}, "KMSKeyArn": "", "Tags": map[string]string{},
		"Environment": map[string]any{"Variables": map[string]string{"GREETING": "hi"}},
	})
	if status, typ, out := call(t, "POST", url+"/2015-03-31/functions", body); status != 201 {
		t.Fatalf("create as Terraform does: %d %s %s", status, typ, out)
	}
	// As Terraform's update removes settings: each sent empty.
	for _, body := range []string{
		`{"VpcConfig": {"SubnetIds": [], "SecurityGroupIds": [], "Ipv6AllowedForDualStack": false}}`,
		`{"Layers": []}`,
		`{"DeadLetterConfig": {"TargetArn": ""}}`,
		`{"FileSystemConfigs": []}`,
		`{"ImageConfig": {}}`,
		`{"KMSKeyArn": "", "Environment": {"Variables": {}}}`,
		`{"TracingConfig": {"Mode": "PassThrough"}}`,
		`{"SnapStart": {"ApplyOn": "None"}}`,
		`{"LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/tf"}}`,
		`{"DurableConfig": null, "TenancyConfig": {}}`,
	} {
		if status, typ, out := call(t, "PUT", url+"/2015-03-31/functions/tf/configuration", body); status != 200 {
			t.Errorf("update configuration %s: %d %s %s", body, status, typ, out)
		}
	}
	code := `{"ZipFile": "` + base64.StdEncoding.EncodeToString(zipped) + `", "Architectures": ["x86_64"], "Publish": true}`
	if status, typ, out := call(t, "PUT", url+"/2015-03-31/functions/tf/code", code); status != 200 {
		t.Errorf("update code as Terraform does: %d %s %s", status, typ, out)
	}
}

// TestImageParametersChecked: image settings go with PackageType Image only, and a gateway
// without an image store refuses image functions; each a 400 naming the problem, nothing made.
func TestImageParametersChecked(t *testing.T) {
	_, url := newStack(t, stackOptions{})
	create := map[string]struct {
		extra map[string]any
		want  string
	}{
		"image config on a zip": {map[string]any{"ImageConfig": map[string]any{"Command": []string{"app.handler"}}}, "go with PackageType Image"},
		"image uri on a zip":    {map[string]any{"Code": map[string]any{"ImageUri": "registry.example/fn:1"}}, "go with PackageType Image"},
		"other package type":    {map[string]any{"PackageType": "Jar"}, `\"Jar\": a function's package type is Zip or Image`},
		"image with a runtime":  {map[string]any{"PackageType": "Image", "Code": map[string]any{"ImageUri": "registry.example/fn:1"}}, "has no Runtime or Handler"},
		"image without a uri":   {map[string]any{"PackageType": "Image", "Runtime": "", "Handler": "", "Code": map[string]any{"ZipFile": nil}}, "needs an image URI"},
		"image and a zip": {map[string]any{"PackageType": "Image", "Runtime": "", "Handler": "", "Code": map[string]any{"ImageUri": "registry.example/fn:1"}},
			"code is its image"},
		"no image store": {map[string]any{"PackageType": "Image", "Runtime": "", "Handler": "", "Code": map[string]any{"ImageUri": "registry.example/fn:1", "ZipFile": nil}},
			"no image store"},
	}
	for name, c := range create {
		t.Run(name, func(t *testing.T) {
			status, typ, body := call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "img", c.extra))
			if status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s %s; want 400 InvalidParameterValueException saying %s", status, typ, body, c.want)
			}
		})
	}
	if status, _, body := call(t, "GET", url+"/2015-03-31/functions/img", ""); status != 404 {
		t.Fatalf("a refused CreateFunction left a function: %d %s", status, body)
	}
	if status, _, body := call(t, "POST", url+"/2015-03-31/functions", createRequest(t, "fn", nil)); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, typ, body := call(t, "PUT", url+"/2015-03-31/functions/fn/code", `{"ImageUri": "registry.example/fn:1"}`); status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, "is a Zip function") {
		t.Fatalf("an image for a zip function: %d %s %s", status, typ, body)
	}
	if status, typ, body := call(t, "PUT", url+"/2015-03-31/functions/fn/configuration", `{"ImageConfig": {"Command": ["x"]}}`); status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, "goes with PackageType Image") {
		t.Fatalf("an image config for a zip function: %d %s %s", status, typ, body)
	}
}
