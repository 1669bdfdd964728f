package httpapi_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestTags: the gateway keeps no tags: ListTags answers none for a function that exists and
// 404 for one that does not, TagResource refuses tags (and takes an empty set), UntagResource
// removes nothing, and a version's ARN is not taggable, as in Lambda.
func TestTags(t *testing.T) {
	_, base := newStack(t, stackOptions{})
	if status, _, body := call(t, "POST", base+"/2015-03-31/functions", createRequest(t, "tagged", nil)); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	arn := "arn:aws:lambda:us-east-1:000000000000:function:tagged"
	tags := func(a string) string { return base + "/2017-03-31/tags/" + url.PathEscape(a) }
	if status, _, body := call(t, "GET", tags(arn), ""); status != 200 || strings.TrimSpace(body) != `{"Tags":{}}` {
		t.Errorf("ListTags: %d %s", status, body)
	}
	if status, typ, _ := call(t, "GET", tags(arn+"x"), ""); status != 404 || typ != "ResourceNotFoundException" {
		t.Errorf("ListTags of a function that does not exist: %d %s", status, typ)
	}
	if status, typ, body := call(t, "POST", tags(arn), `{"Tags":{"team":"a"}}`); status != 400 || typ != "InvalidParameterValueException" || !strings.Contains(body, "Tags is not supported") {
		t.Errorf("TagResource: %d %s %s", status, typ, body)
	}
	if status, _, body := call(t, "POST", tags(arn), `{"Tags":{}}`); status != 204 {
		t.Errorf("TagResource without tags: %d %s", status, body)
	}
	if status, _, body := call(t, "DELETE", tags(arn)+"?tagKeys=team", ""); status != 204 {
		t.Errorf("UntagResource: %d %s", status, body)
	}
	if status, typ, _ := call(t, "GET", tags(arn+":1"), ""); status != 400 || typ != "InvalidParameterValueException" {
		t.Errorf("ListTags of a version: %d %s", status, typ)
	}
	if status, typ, _ := call(t, "GET", tags("arn:aws:sqs:us-east-1:1:q"), ""); status != 400 || typ != "InvalidParameterValueException" {
		t.Errorf("ListTags of a queue: %d %s", status, typ)
	}
}
