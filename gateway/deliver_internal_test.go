package gateway

import (
	"reflect"
	"testing"
)

// TestBatchItemFailures: Lambda's rules for a partial batch response.
func TestBatchItemFailures(t *testing.T) {
	ids := []string{"a", "b", "c"}
	cases := []struct {
		payload string
		want    []string
		invalid bool
	}{
		{"", nil, false},
		{"null", nil, false},
		{`{}`, nil, false},
		{`{"batchItemFailures":[]}`, nil, false},
		{`{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"c"},{"itemIdentifier":"b"}]}`, []string{"b", "c"}, false},
		{`{"batchItemFailures":[{"itemIdentifier":"z"}]}`, nil, true},
		{`{"batchItemFailures":[{"itemIdentifier":""}]}`, nil, true},
		{`{"batchItemFailures":[{}]}`, nil, true},
		{`"done"`, nil, true},
	}
	for _, c := range cases {
		got, err := batchItemFailures([]byte(c.payload), ids)
		if (err != nil) != c.invalid || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, %v; want %v (invalid %v)", c.payload, got, err, c.want, c.invalid)
		}
	}
}
