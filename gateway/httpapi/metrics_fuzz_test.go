package httpapi

import (
	"errors"
	"net/url"
	"strconv"
	"testing"

	"github.com/lambdagw/gateway/internal/lambda"
)

// FuzzParseMinutes: any query string gives either a span from 1 to 180 minutes, or a 400
// InvalidParameterValueException; never a panic, never another error.
func FuzzParseMinutes(f *testing.F) {
	for _, s := range []string{"", "minutes=60", "minutes=0", "minutes=181", "minutes=-1", "minutes=1e2", "minutes=+5",
		"minutes=1&minutes=2", "minutes=%00", "minutes=99999999999999999999", "minutes=", "minutes= 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		n, err := parseMinutes(q)
		if err != nil {
			var le *lambda.Error
			if !errors.As(err, &le) || le.Status != 400 || le.Type != "InvalidParameterValueException" {
				t.Fatalf("%q: error %v, want a 400 InvalidParameterValueException", raw, err)
			}
			return
		}
		if n < 1 || n > maxHistoryMinutes {
			t.Fatalf("%q: %d minutes accepted", raw, n)
		}
		if vs, ok := q["minutes"]; ok {
			if v, _ := strconv.Atoi(vs[0]); v != n {
				t.Fatalf("%q: read %d", raw, n)
			}
		} else if n != defaultHistoryMinutes {
			t.Fatalf("no minutes gave %d", n)
		}
	})
}
