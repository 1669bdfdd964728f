package funclog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// A stored record is one line of a function's log file:
//
//	TIME KIND REQUEST-ID \t LINE
//
// TIME is RFC3339Nano (UTC); KIND is p (the gateway's platform lines: START, END, REPORT, ...
// or their JSON records), f (the runtime's output) or g (the store's own notes); REQUEST-ID is
// the invocation the line belongs to, or - for none. The request id is stored with each line
// (the environment that wrote it knows it) so a query for one invocation is exact even when
// several environments of the function interleave, and a function printing "START RequestId:"
// stays kind f. Files written before the request id was stored hold TIME \t LINE (no space in
// the head): Parse reads both.

// Record kinds.
const (
	KindPlatform = "platform"
	KindFunction = "function"
	KindGateway  = "gateway"
)

// Line is one parsed record.
type Line struct {
	Time      time.Time
	Kind      string // KindPlatform, KindFunction or KindGateway; "" for an old record
	RequestID string
	Message   string
}

// recordID is the request id as a record's head holds it: "-" for none or for one that would
// break the head (no client-chosen bytes can add a field).
func recordID(id string) string {
	if id == "" || len(id) > 128 {
		return "-"
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return "-"
		}
	}
	return id
}

// Parse reads a stored record (either format). ok is false for a line that is not one (a
// damaged file, a cut line).
func Parse(rec string) (l Line, ok bool) {
	head, msg, found := strings.Cut(rec, "\t")
	if !found {
		return Line{}, false
	}
	ts, rest, isNew := strings.Cut(head, " ")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Line{}, false
	}
	l = Line{Time: t, Message: msg}
	if !isNew {
		return l, true
	}
	kind, id, found := strings.Cut(rest, " ")
	if !found || strings.Contains(id, " ") {
		return Line{}, false
	}
	switch kind {
	case "p":
		l.Kind = KindPlatform
	case "f":
		l.Kind = KindFunction
	case "g":
		l.Kind = KindGateway
	default:
		return Line{}, false
	}
	if id != "-" {
		l.RequestID = id
	}
	return l, true
}

// Text is the line as the text format shows it: TIME \t LINE, as the log always read.
func (l Line) Text() string { return l.Time.UTC().Format(time.RFC3339Nano) + "\t" + l.Message }

// TypeCaughtUp is the type of the entry a follow's reader gets between the past lines and the
// new ones (never written out).
const TypeCaughtUp = "caught_up"

// Entry is a line as the JSON format (and the cluster's merge) carries it.
type Entry struct {
	Time      string `json:"time"` // RFC3339Nano
	Node      string `json:"node"`
	Function  string `json:"function"`
	RequestID string `json:"request_id"`
	// Type is platform, function or gateway; for a JSON-format platform record its own type
	// (platform.start, platform.report, ...); error for a node that could not be read.
	Type string `json:"type,omitempty"`
	// Level is a JSON line's level (the runtime's "level", a record's "level") when it has one.
	Level   string `json:"level,omitempty"`
	Message string `json:"message"`

	t time.Time
}

// At is the entry's time.
func (e *Entry) At() time.Time {
	if e.t.IsZero() {
		e.t, _ = time.Parse(time.RFC3339Nano, e.Time)
	}
	return e.t
}

// Entry is l as node's entry for function.
func (l Line) Entry(node, function string) Entry {
	e := Entry{Time: l.Time.UTC().Format(time.RFC3339Nano), Node: node, Function: function, RequestID: l.RequestID,
		Type: l.Kind, Message: l.Message, t: l.Time}
	if e.Type == "" {
		e.Type = KindFunction
		if isPlatformText(l.Message) {
			e.Type = KindPlatform
		}
	}
	if strings.HasPrefix(l.Message, "{") && strings.HasSuffix(l.Message, "}") {
		var j struct {
			Type  string `json:"type"`
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(l.Message), &j) == nil {
			if l.Kind == KindPlatform && strings.HasPrefix(j.Type, "platform.") {
				e.Type = j.Type // only the gateway's records: a function's JSON cannot claim one
			}
			if len(j.Level) <= 16 {
				e.Level = j.Level
			}
		}
	}
	return e
}

// isPlatformText: an old record's line that the gateway wrote (old records have no kind).
func isPlatformText(m string) bool {
	for _, p := range [...]string{"START RequestId: ", "END RequestId: ", "REPORT RequestId: ", "INIT_START ", "INIT_REPORT "} {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}

// MaxFilterBytes bounds a filter pattern.
const MaxFilterBytes = 256

// Filter matches a line's message: a substring, or a pattern where * stands for any run of
// characters (foo*bar: foo, then bar later on the line). Matching is case-sensitive and
// unanchored, and takes time linear in the line whatever the pattern (each piece is found with
// strings.Index, leftmost, which is enough for * patterns: no backtracking).
type Filter struct{ parts []string }

// ParseFilter parses a filter ("" matches everything).
func ParseFilter(s string) (*Filter, error) {
	if len(s) > MaxFilterBytes {
		return nil, fmt.Errorf("longer than %d bytes", MaxFilterBytes)
	}
	f := &Filter{}
	for _, p := range strings.Split(s, "*") {
		if p != "" {
			f.parts = append(f.parts, p)
		}
	}
	return f, nil
}

// Match reports whether m matches.
func (f *Filter) Match(m string) bool {
	if f == nil {
		return true
	}
	for _, p := range f.parts {
		i := strings.Index(m, p)
		if i < 0 {
			return false
		}
		m = m[i+len(p):]
	}
	return true
}

// MaxAge bounds a duration given to ParseTime (and so how far back a query reaches).
const MaxAge = 10 * 365 * 24 * time.Hour

// ParseTime reads a point in time: a duration before now (15m, 2h, 90s) or an RFC3339 time.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 || d > MaxAge {
			return time.Time{}, fmt.Errorf("duration %s out of range (0 to %s)", d, MaxAge)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (15m, 2h) nor an RFC3339 time", s)
	}
	return t, nil
}

// Query selects lines of one function's log.
type Query struct {
	Since, Until time.Time // zero: unbounded
	RequestID    string
	Filter       *Filter
	// Limit keeps the last Limit matching lines (<= 0: none).
	Limit int
	// MaxScanBytes bounds what is read of the files, newest first (<= 0: DefaultMaxScanBytes).
	MaxScanBytes int64
}

// DefaultMaxScanBytes is what a query reads at most: both files of a log at their largest.
const DefaultMaxScanBytes = 2 * DefaultMaxBytes

// Matches reports whether l is selected by q (its time range, request id and filter).
func (q *Query) Matches(l Line) bool {
	if !q.Since.IsZero() && l.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && l.Time.After(q.Until) {
		return false
	}
	if q.RequestID != "" && l.RequestID != q.RequestID {
		return false
	}
	return q.Filter.Match(l.Message)
}

// Result is a query's answer.
type Result struct {
	Lines []Line
	// Truncated: the scan stopped at MaxScanBytes before reaching the start of the log (or of
	// the range asked), so older matching lines may exist.
	Truncated bool
}

// Query returns the last q.Limit lines of the function's log that q selects, oldest first,
// reading the rotated file too when the range reaches back into it.
func (s *Store) Query(function string, q Query) (Result, error) {
	if !validName(function) {
		return Result{}, fmt.Errorf("%q: %w", function, ErrInvalidName)
	}
	if q.Limit <= 0 {
		return Result{}, nil
	}
	s.flush(function)
	budget := q.MaxScanBytes
	if budget <= 0 {
		budget = DefaultMaxScanBytes
	}
	var res Result
	// Newest file first: the older one is read only if the budget and the range allow.
	var parts [][]Line
	for _, p := range []string{s.path(function), s.path(function) + ".1"} {
		lines, first, used, trunc, err := scanFile(p, &q, budget)
		if err != nil {
			return Result{}, err
		}
		budget -= used
		parts = append(parts, lines)
		if trunc {
			res.Truncated = true
			break
		}
		// The older file holds only lines before this one's first: none can be in range.
		if !first.IsZero() && !q.Since.IsZero() && first.Before(q.Since) {
			break
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		res.Lines = append(res.Lines, parts[i]...)
	}
	if len(res.Lines) > q.Limit {
		res.Lines = res.Lines[len(res.Lines)-q.Limit:]
	}
	return res, nil
}

// scanFile reads the file's last budget bytes (all of it if smaller), keeping its last
// q.Limit matching lines. first is the time of its first record read.
func scanFile(path string, q *Query, budget int64) (lines []Line, first time.Time, used int64, truncated bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, 0, false, nil
	}
	if err != nil {
		return nil, time.Time{}, 0, false, fmt.Errorf("opening function log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, 0, false, err
	}
	var off int64
	if st.Size() > budget {
		off, truncated = st.Size()-budget, true
	}
	used = st.Size() - off
	r := bufio.NewReaderSize(io.NewSectionReader(f, off, used), 64<<10)
	if off > 0 {
		if _, err := r.ReadString('\n'); err != nil { // the first line is cut
			return nil, time.Time{}, used, truncated, nil
		}
	}
	// Old records have no request id: an invocation's lines are those between its START and
	// its REPORT (exact only when one environment ran at a time, as those logs were).
	var cur string
	ring := make([]Line, 0, min(q.Limit, 1024))
	next := 0
	for {
		rec, rerr := r.ReadString('\n')
		rec = strings.TrimSuffix(rec, "\n")
		if rec != "" {
			if l, ok := Parse(rec); ok {
				if first.IsZero() {
					first = l.Time
				}
				if l.Kind == "" {
					if id, ok := strings.CutPrefix(l.Message, "START RequestId: "); ok {
						cur, _, _ = strings.Cut(id, " ")
					}
					l.RequestID = cur
					if strings.HasPrefix(l.Message, "REPORT RequestId: ") {
						cur = ""
					}
				}
				if q.Matches(l) {
					if len(ring) < q.Limit {
						ring = append(ring, l)
					} else {
						ring[next] = l
						next = (next + 1) % q.Limit
					}
				}
			}
		}
		if rerr != nil {
			break
		}
	}
	lines = append(append(make([]Line, 0, len(ring)), ring[next:]...), ring[:next]...)
	return lines, first, used, truncated, nil
}

// Params are a log request's parameters, as the HTTP API and the node RPC take them.
type Params struct {
	Query
	Follow bool
	JSON   bool // format=json: one Entry per line
	// filter is the filter as given, to pass it on to a peer.
	filter string
}

// MaxLines bounds lines= (what a query holds is bounded by its scan, MaxScanBytes per node).
const MaxLines = 100000

// DefaultLines is lines= when absent.
const DefaultLines = 100

// ParamError is a bad parameter, named.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// ParseParams reads lines, since, until, filter, request_id, follow and format from v; since
// and until as durations count back from now.
func ParseParams(v url.Values, now time.Time) (Params, error) {
	p := Params{Query: Query{Limit: DefaultLines}}
	bad := func(param, format string, args ...any) (Params, error) {
		return Params{}, &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return bad(k, "given %d times", len(vs))
		}
	}
	if s := v.Get("lines"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > MaxLines {
			return bad("lines", "%.40q must be a number from 0 to %d", s, MaxLines)
		}
		p.Limit = n
	}
	var err error
	if s := v.Get("since"); s != "" {
		if p.Since, err = ParseTime(s, now); err != nil {
			return bad("since", "%v", err)
		}
	}
	if s := v.Get("until"); s != "" {
		if p.Until, err = ParseTime(s, now); err != nil {
			return bad("until", "%v", err)
		}
		if !p.Since.IsZero() && p.Until.Before(p.Since) {
			return bad("until", "%s is before since %s", p.Until.Format(time.RFC3339Nano), p.Since.Format(time.RFC3339Nano))
		}
	}
	p.filter = v.Get("filter")
	if p.Filter, err = ParseFilter(p.filter); err != nil {
		return bad("filter", "%v", err)
	}
	if s := v.Get("request_id"); s != "" {
		if recordID(s) != s {
			return bad("request_id", "%.80q is not a request id", s)
		}
		p.RequestID = s
	}
	switch s := v.Get("follow"); s {
	case "", "false":
	case "true":
		p.Follow = true
	default:
		return bad("follow", "%.40q must be true or false", s)
	}
	switch s := v.Get("format"); s {
	case "", "text":
	case "json":
		p.JSON = true
	default:
		return bad("format", "%.40q must be text or json", s)
	}
	return p, nil
}

// Values encodes p for a peer (times absolute, so every node reads the same range).
func (p Params) Values() url.Values {
	v := url.Values{"lines": {strconv.Itoa(p.Limit)}, "format": {"json"}}
	if !p.Since.IsZero() {
		v.Set("since", p.Since.UTC().Format(time.RFC3339Nano))
	}
	if !p.Until.IsZero() {
		v.Set("until", p.Until.UTC().Format(time.RFC3339Nano))
	}
	if p.filter != "" {
		v.Set("filter", p.filter)
	}
	if p.RequestID != "" {
		v.Set("request_id", p.RequestID)
	}
	if p.Follow {
		v.Set("follow", "true")
	}
	return v
}
