package structs

import (
	"strings"
	"testing"
)

func TestParseEgressRule(t *testing.T) {
	for in, want := range map[string]string{
		"10.89.0.0/24": "10.89.0.0/24", "10.90.0.5/32:5432": "10.90.0.5/32:5432", "10.90.0.5:53": "10.90.0.5/32:53", "0.0.0.0/0": "0.0.0.0/0",
	} {
		r, err := ParseEgressRule(in)
		if err != nil || r.String() != want {
			t.Errorf("%q: %v %v, want %s", in, r, err, want)
		}
	}
	for _, in := range []string{"", "db:5432", "10.0.0.1/24", "10.0.0.0/24:0", "10.0.0.0/24:65536", "fd00::/64", "[fd00::1]:53", "::ffff:10.0.0.1/128", "10.0.0.0/33", "10.0.0.0/24:-1"} {
		if r, err := ParseEgressRule(in); err == nil {
			t.Errorf("%q accepted as %v", in, r)
		}
	}
}

// FuzzParseEgressRule: a rule that parses is an IPv4 network without host bits and a port in
// range, and reads back as itself.
func FuzzParseEgressRule(f *testing.F) {
	for _, s := range []string{"10.89.0.0/24", "10.90.0.5/32:5432", "10.90.0.5:53", "::1", "1.2.3.4/0:1", "10.0.0.0/8:65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseEgressRule(s)
		if err != nil {
			return
		}
		if r.Net.IP.To4() == nil || len(r.Net.Mask) != 4 || !r.Net.IP.Equal(r.Net.IP.Mask(r.Net.Mask)) || strings.Contains(r.String(), ":::") {
			t.Fatalf("%q parsed to %v", s, r)
		}
		back, err := ParseEgressRule(r.String())
		if err != nil || back.String() != r.String() {
			t.Fatalf("%q -> %s reads back as %v, %v", s, r, back, err)
		}
	})
}
