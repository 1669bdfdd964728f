package sandbox

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// logFormat is a function's log settings (LoggingConfig) as an environment applies them,
// decided once when it is made.
//
// In the JSON format the gateway's own lines are Lambda's JSON platform records
// ({"time":...,"type":"platform.start","record":{...}}), kept when their level reaches the
// system log level; the runtime's lines that are JSON objects with a "level" below the
// application log level are dropped (no level, or one Lambda does not know, reads INFO), and
// plain-text lines are kept as they are.
type logFormat struct {
	json    bool
	appRank int // the least level of the runtime's JSON lines kept
	sysRank int // the least level of the platform records kept
}

// Levels of the platform records, as Lambda maps its events to system log levels.
var (
	rankDebug = structs.LogLevelRank("DEBUG")
	rankInfo  = structs.LogLevelRank("INFO")
	rankWarn  = structs.LogLevelRank("WARN")
)

func newLogFormat(l *structs.LoggingConfig) logFormat {
	if !l.JSON() {
		return logFormat{}
	}
	return logFormat{json: true, appRank: structs.LogLevelRank(l.AppLevel()), sysRank: structs.LogLevelRank(l.SystemLevel())}
}

// system reports whether a platform record of level rank is kept.
func (f logFormat) system(rank int) bool { return rank >= f.sysRank }

// filter drops, in place, the runtime's JSON lines below the application log level.
func (f logFormat) filter(lines []string) []string {
	if !f.json || f.appRank <= 1 { // TRACE keeps everything
		return lines
	}
	kept := lines[:0]
	for _, l := range lines {
		if f.keep(l) {
			kept = append(kept, l)
		}
	}
	clear(lines[len(kept):])
	return kept
}

func (f logFormat) keep(line string) bool {
	t := strings.TrimSpace(line)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return true // plain text: kept, as Lambda does
	}
	rank := rankInfo
	if !strings.Contains(t, `"level"`) {
		return rank >= f.appRank // no level to read: INFO, without decoding the line
	}
	var v struct {
		Level string `json:"level"`
	}
	if json.Unmarshal([]byte(t), &v) == nil {
		if r := structs.LogLevelRank(v.Level); r > 0 {
			rank = r
		}
	}
	return rank >= f.appRank
}

// recordTime is Lambda's time of a platform record (milliseconds, UTC).
const recordTime = "2006-01-02T15:04:05.000Z"

// appendRecord appends {"time":...,"type":typ,"record": then record (a JSON object) and "}".
// Built by appending: START and REPORT records are written for every invocation.
func appendRecord(b []byte, typ string, record []byte) []byte {
	b = append(b, `{"time":"`...)
	b = time.Now().UTC().AppendFormat(b, recordTime)
	b = append(b, `","type":"`...)
	b = append(b, typ...)
	b = append(b, `","record":`...)
	b = append(b, record...)
	return append(b, '}')
}

// startRecord is platform.start.
func startRecord(requestID, version string) string {
	var buf [192]byte
	r := append(buf[:0], `{"requestId":`...)
	r = appendJSONString(r, requestID)
	r = append(r, `,"version":`...)
	r = appendJSONString(r, version)
	r = append(r, '}')
	var out [256]byte
	return string(appendRecord(out[:0], "platform.start", r))
}

// reportMetrics are platform.report's metrics.
type reportMetrics struct {
	dur, initDur time.Duration
	memoryMB     int
	maxMB        uint64
}

// runtimeDoneRecord is platform.runtimeDone (where the Text format writes END).
func runtimeDoneRecord(requestID, status, errType string, dur time.Duration) string {
	var buf [256]byte
	r := append(buf[:0], `{"requestId":`...)
	r = appendJSONString(r, requestID)
	r = append(r, `,"status":`...)
	r = appendJSONString(r, status)
	if errType != "" {
		r = append(r, `,"errorType":`...)
		r = appendJSONString(r, errType)
	}
	r = append(r, `,"metrics":{"durationMs":`...)
	r = strconv.AppendFloat(r, round2(ms(dur)), 'f', -1, 64)
	r = append(r, `}}`...)
	var out [384]byte
	return string(appendRecord(out[:0], "platform.runtimeDone", r))
}

// reportRecord is platform.report.
func reportRecord(requestID, status, errType string, m reportMetrics) string {
	var buf [320]byte
	r := append(buf[:0], `{"requestId":`...)
	r = appendJSONString(r, requestID)
	r = append(r, `,"metrics":{"durationMs":`...)
	r = strconv.AppendFloat(r, round2(ms(m.dur)), 'f', -1, 64)
	r = append(r, `,"billedDurationMs":`...)
	r = strconv.AppendInt(r, billed(m.dur), 10)
	r = append(r, `,"memorySizeMB":`...)
	r = strconv.AppendInt(r, int64(m.memoryMB), 10)
	r = append(r, `,"maxMemoryUsedMB":`...)
	r = strconv.AppendUint(r, m.maxMB, 10)
	if m.initDur > 0 {
		r = append(r, `,"initDurationMs":`...)
		r = strconv.AppendFloat(r, round2(ms(m.initDur)), 'f', -1, 64)
	}
	r = append(r, `},"status":`...)
	r = appendJSONString(r, status)
	if errType != "" {
		r = append(r, `,"errorType":`...)
		r = appendJSONString(r, errType)
	}
	r = append(r, '}')
	var out [448]byte
	return string(appendRecord(out[:0], "platform.report", r))
}

// jsonRecord is a platform record of any other type, its record marshalled (off the warm path).
func jsonRecord(typ string, record any) string {
	r, _ := json.Marshal(record)
	return string(appendRecord(nil, typ, r))
}

// errorRecord is one of the gateway's own messages in an invocation (a timeout, the runtime's
// exit) in the JSON format: a log record of level ERROR, as the runtimes' JSON loggers write.
func errorRecord(requestID, msg string) string {
	r := map[string]string{"timestamp": time.Now().UTC().Format(recordTime), "level": "ERROR", "message": msg}
	if requestID != "" {
		r["requestId"] = requestID
	}
	b, _ := json.Marshal(r)
	return string(b)
}
