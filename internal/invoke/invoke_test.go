package invoke

import (
	"encoding/base64"
	"net/http"
	"testing"
)

// TestTrailerError: the late error of a chunked response, as a runtime or a peer sends it: JSON
// is passed on as it is, anything else wrapped in the error JSON, and no type means no error.
func TestTrailerError(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		trailer     http.Header
		wantType    string
		wantPayload string
	}{
		{http.Header{}, "", ""},
		{http.Header{TrailerErrorBody: {b64([]byte(`{"x":1}`))}}, "", ""},
		{http.Header{TrailerErrorType: {"Handler.Failed"}, TrailerErrorBody: {b64([]byte(`{"errorMessage":"late"}`))}}, "Handler.Failed", `{"errorMessage":"late"}`},
		{http.Header{TrailerErrorType: {"E"}, TrailerErrorBody: {b64([]byte("plain text"))}}, "E", `{"errorMessage":"plain text","errorType":"E"}`},
		{http.Header{TrailerErrorType: {"E"}, TrailerErrorBody: {"not base64!"}}, "E", `{"errorMessage":"","errorType":"E"}`},
	} {
		et, payload := TrailerError(tc.trailer)
		if et != tc.wantType || string(payload) != tc.wantPayload {
			t.Errorf("%v: got %q %s, want %q %s", tc.trailer, et, payload, tc.wantType, tc.wantPayload)
		}
	}
}
