package invoke

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// The trace context an invocation carries is an X-Ray trace header
// (Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0|1), as Lambda hands it to runtimes in
// Lambda-Runtime-Trace-Id. A caller's X-Amzn-Trace-Id is kept when well formed, a W3C traceparent
// is converted to it, and a new one is made when neither came. Nothing malformed is passed on:
// the header reaches the runtime's headers and the logs.

// Header names of the trace context a caller sends.
const (
	HeaderXRay        = "X-Amzn-Trace-Id"
	HeaderTraceparent = "Traceparent"
)

// MaxTraceHeader bounds the X-Amzn-Trace-Id kept from a caller (X-Ray's own limit is smaller
// than this in practice; extra fields such as Lineage fit).
const MaxTraceHeader = 256

// TraceFromHeaders returns the trace header of an incoming request: its X-Amzn-Trace-Id when
// well formed, else its traceparent converted, else a new one. A header given more than once
// is ambiguous and ignored.
func TraceFromHeaders(h http.Header) string {
	t, _ := IncomingTrace(h)
	return t
}

// IncomingTrace is TraceFromHeaders, also saying whether the trace came from the caller (false:
// it was made here).
func IncomingTrace(h http.Header) (trace string, fromCaller bool) {
	if v := h[HeaderXRay]; len(v) == 1 && ValidXRay(v[0]) {
		return v[0], true
	}
	if v := h[HeaderTraceparent]; len(v) == 1 {
		if x, ok := TraceparentToXRay(v[0]); ok {
			return x, true
		}
	}
	return NewTraceID(), false
}

// ValidXRay reports whether s is a well-formed X-Ray trace header: ';'-separated key=value
// fields, a valid Root, at most one of each key, an optional Parent (16 hex, not zero) and
// Sampled (0, 1 or ?), other fields of visible ASCII only, MaxTraceHeader bytes in all.
func ValidXRay(s string) bool {
	if len(s) == 0 || len(s) > MaxTraceHeader {
		return false
	}
	var root, parent, sampled bool
	var others [8]string // the other keys seen, to refuse duplicates; more than 8 is refused
	n := 0
	for rest := s; ; {
		field, more, found := strings.Cut(rest, ";")
		field = strings.TrimLeft(field, " ")
		if field != "" {
			k, v, ok := strings.Cut(field, "=")
			if !ok || !validKey(k) || !validValue(v) {
				return false
			}
			switch k {
			case "Root":
				if root || !validRoot(v) {
					return false
				}
				root = true
			case "Parent":
				if parent || !validHex(v, 16) {
					return false
				}
				parent = true
			case "Sampled":
				if sampled || (v != "0" && v != "1" && v != "?") {
					return false
				}
				sampled = true
			default:
				if n == len(others) {
					return false
				}
				for _, o := range others[:n] {
					if o == k {
						return false
					}
				}
				others[n] = k
				n++
			}
		}
		if !found {
			break
		}
		rest = more
	}
	return root
}

func validKey(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validValue allows visible ASCII but the separators and quoting characters: no space, no
// control character (CR, LF), nothing that could end the field or the header.
func validValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || c == ';' || c == ',' || c == '"' || c == '\\' || c == '=' {
			return false
		}
	}
	return true
}

// validRoot checks 1-<8 hex>-<24 hex>, not all zero.
func validRoot(v string) bool {
	return len(v) == 35 && v[0] == '1' && v[1] == '-' && v[10] == '-' &&
		isLowerHex(v[2:10]) && isLowerHex(v[11:]) && !(allZero(v[2:10]) && allZero(v[11:]))
}

// validHex checks n lower-case hex digits, not all zero (W3C and X-Ray both forbid zero ids).
func validHex(v string, n int) bool { return len(v) == n && isLowerHex(v) && !allZero(v) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// TraceparentToXRay converts a W3C traceparent of version 00
// (00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>) to an X-Ray trace header:
// Root=1-<first 8 hex>-<last 24 hex>;Parent=<parent id>;Sampled=<flags&1>.
func TraceparentToXRay(tp string) (string, bool) {
	tp = strings.Trim(tp, " \t")
	if len(tp) != 55 || tp[:3] != "00-" || tp[35] != '-' || tp[52] != '-' {
		return "", false
	}
	tid, pid, flags := tp[3:35], tp[36:52], tp[53:55]
	if !validHex(tid, 32) || !validHex(pid, 16) || !isLowerHex(flags) {
		return "", false
	}
	// The sampled flag is the low bit of the flags' last hex digit.
	last := flags[1] - '0'
	if flags[1] >= 'a' {
		last = flags[1] - 'a' + 10
	}
	var buf [80]byte
	b := append(buf[:0], "Root=1-"...)
	b = append(b, tid[:8]...)
	b = append(b, '-')
	b = append(b, tid[8:]...)
	b = append(b, ";Parent="...)
	b = append(b, pid...)
	b = append(b, ";Sampled="...)
	b = append(b, '0'+last&1)
	return string(b), true
}

// NewTraceID makes an X-Ray trace header, as Lambda does for an invocation that came without
// one: Root=1-<epoch seconds, 8 hex>-<24 random hex>;Parent=<16 random hex>;Sampled=0.
func NewTraceID() string {
	// math/rand/v2's global ChaCha8 source: unpredictable enough for trace ids (OpenTelemetry's
	// own are not cryptographic either), safe for concurrent use, and no allocation, where
	// crypto/rand's Read makes its buffer escape.
	var r [24]byte
	binary.LittleEndian.PutUint64(r[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(r[8:16], rand.Uint64())
	binary.LittleEndian.PutUint64(r[16:], rand.Uint64())
	var ts [4]byte
	binary.BigEndian.PutUint32(ts[:], uint32(time.Now().Unix()))
	// One allocation: it is made for every invocation that arrives without one (74 bytes).
	var buf [80]byte
	b := append(buf[:0], "Root=1-"...)
	b = hex.AppendEncode(b, ts[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, r[:12])
	b = append(b, ";Parent="...)
	b = hex.AppendEncode(b, r[12:20])
	b = append(b, ";Sampled=0"...)
	return string(b)
}

// TraceContext is the trace header's ids as spans take them: the 16-byte trace id (the Root's
// 32 hex without "1-" and the dash), the caller's span id (Parent; zero when none) and whether
// the caller sampled the trace.
type TraceContext struct {
	TraceID  [16]byte
	ParentID [8]byte
	Sampled  bool
}

// ParseTraceContext reads the ids of a trace header ValidXRay accepted; false when there is no
// valid Root.
func ParseTraceContext(xray string) (TraceContext, bool) {
	var tc TraceContext
	if !ValidXRay(xray) {
		return tc, false
	}
	for rest := xray; rest != ""; {
		var field string
		field, rest, _ = strings.Cut(rest, ";")
		k, v, _ := strings.Cut(strings.TrimLeft(field, " "), "=")
		switch k {
		case "Root":
			_, _ = hex.Decode(tc.TraceID[:4], []byte(v[2:10]))
			_, _ = hex.Decode(tc.TraceID[4:], []byte(v[11:]))
		case "Parent":
			_, _ = hex.Decode(tc.ParentID[:], []byte(v))
		case "Sampled":
			tc.Sampled = v == "1"
		}
	}
	return tc, true
}
