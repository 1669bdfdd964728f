package cluster

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRPCErrors: every node RPC error travels as a status and {"err_kind","error"}; the caller
// gets the sentinel of its kind back, and an answer in another shape (a proxy's, an older
// node's) keeps its text with a kind taken from its status, never "unavailable" (which would
// let the caller run a call that may have started).
func TestRPCErrors(t *testing.T) {
	for _, tc := range []struct {
		kind     string
		sentinel error
	}{
		{KindNotFound, ErrNotFound}, {KindConflict, ErrConflict}, {KindExists, ErrExists},
		{KindNotLeader, ErrNotLeader}, {KindInvalid, ErrInvalid}, {KindUnavailable, ErrUnavailable},
	} {
		rec := httptest.NewRecorder()
		WriteRPCError(rec, http.StatusTeapot, tc.kind, "because "+tc.kind)
		re := ReadRPCError(rec.Result())
		if re.Status != http.StatusTeapot || re.Kind != tc.kind || re.Message != "because "+tc.kind || !errors.Is(re, tc.sentinel) {
			t.Errorf("%s: read back %+v (is sentinel: %v)", tc.kind, re, errors.Is(re, tc.sentinel))
		}
		if errKind(re) != tc.kind {
			t.Errorf("%s: errKind of the read error is %q", tc.kind, errKind(re))
		}
	}
	for status, kind := range map[int]string{
		http.StatusNotFound: KindNotFound, http.StatusServiceUnavailable: KindOther,
		http.StatusBadRequest: KindInvalid, http.StatusInternalServerError: KindOther,
	} {
		rec := httptest.NewRecorder()
		http.Error(rec, "plain text answer", status)
		re := ReadRPCError(rec.Result())
		if re.Kind != kind || !strings.Contains(re.Message, "plain text answer") {
			t.Errorf("plain %d: %+v, want kind %s", status, re, kind)
		}
	}
}
