package structs

import (
	"regexp"
	"strings"
)

// Log formats (Lambda's LoggingConfig.LogFormat).
const (
	LogFormatText = "Text"
	LogFormatJSON = "JSON"
)

// DefaultLogLevel is both log levels of a JSON-format function that sets none, as Lambda's.
const DefaultLogLevel = "INFO"

// LoggingConfig is Lambda's LoggingConfig: the format of the function's log and, in the JSON
// format, the least level of the runtime's lines (ApplicationLogLevel) and of the gateway's
// platform records (SystemLogLevel) that are kept. nil is the Text format in the log group
// /aws/lambda/NAME; a stored one holds only what differs from that.
type LoggingConfig struct {
	LogFormat           string `json:"log_format,omitempty"` // "" reads LogFormatText
	ApplicationLogLevel string `json:"application_log_level,omitempty"`
	SystemLogLevel      string `json:"system_log_level,omitempty"`
	// LogGroup is kept and answered (there is no CloudWatch; every node keeps the log).
	LogGroup string `json:"log_group,omitempty"`
}

// appLevels and sysLevels are Lambda's levels, least severe first.
var (
	appLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	sysLevels = []string{"DEBUG", "INFO", "WARN"}
)

// LogLevelRank orders levels (TRACE 1 .. FATAL 6, any case; WARNING reads WARN); 0 is not a level.
func LogLevelRank(level string) int {
	if len(level) > 8 {
		return 0
	}
	l := strings.ToUpper(level)
	if l == "WARNING" {
		l = "WARN"
	}
	for i, v := range appLevels {
		if v == l {
			return i + 1
		}
	}
	return 0
}

var logGroupRE = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]{1,512}$`)

// DefaultLogGroup is Lambda's log group of a function.
func DefaultLogGroup(function string) string { return "/aws/lambda/" + function }

// JSON reports whether the function logs in the JSON format.
func (c *LoggingConfig) JSON() bool { return c != nil && c.LogFormat == LogFormatJSON }

// Format is the log format, LogFormatText when unset.
func (c *LoggingConfig) Format() string {
	if c.JSON() {
		return LogFormatJSON
	}
	return LogFormatText
}

// AppLevel is the application log level of a JSON-format function ("" in Text).
func (c *LoggingConfig) AppLevel() string {
	if !c.JSON() {
		return ""
	}
	if c.ApplicationLogLevel == "" {
		return DefaultLogLevel
	}
	return c.ApplicationLogLevel
}

// SystemLevel is the system log level of a JSON-format function ("" in Text).
func (c *LoggingConfig) SystemLevel() string {
	if !c.JSON() {
		return ""
	}
	if c.SystemLogLevel == "" {
		return DefaultLogLevel
	}
	return c.SystemLogLevel
}

// Group is the function's log group.
func (c *LoggingConfig) Group(function string) string {
	if c == nil || c.LogGroup == "" {
		return DefaultLogGroup(function)
	}
	return c.LogGroup
}

// Normal is c as a function stores it: nil when everything is the default, the default log
// group and levels left out.
func (c *LoggingConfig) Normal(function string) *LoggingConfig {
	if c == nil {
		return nil
	}
	n := *c
	if n.LogFormat == LogFormatText {
		n.LogFormat = ""
	}
	if n.LogGroup == DefaultLogGroup(function) {
		n.LogGroup = ""
	}
	if n == (LoggingConfig{}) {
		return nil
	}
	return &n
}

// Check returns what breaks Lambda's rules: the format Text or JSON, levels Lambda's and only
// with the JSON format, the log group's characters.
func (c *LoggingConfig) Check() []FieldError {
	if c == nil {
		return nil
	}
	var errs []FieldError
	switch c.LogFormat {
	case "", LogFormatText, LogFormatJSON:
	default:
		errs = append(errs, FieldError{Field: "LoggingConfig.LogFormat", Message: quote(c.LogFormat) + ": the log format is Text or JSON"})
	}
	if c.ApplicationLogLevel != "" && !contains(appLevels, c.ApplicationLogLevel) {
		errs = append(errs, FieldError{Field: "LoggingConfig.ApplicationLogLevel", Message: quote(c.ApplicationLogLevel) + ": the application log level is one of " + strings.Join(appLevels, ", ")})
	}
	if c.SystemLogLevel != "" && !contains(sysLevels, c.SystemLogLevel) {
		errs = append(errs, FieldError{Field: "LoggingConfig.SystemLogLevel", Message: quote(c.SystemLogLevel) + ": the system log level is one of " + strings.Join(sysLevels, ", ")})
	}
	if !c.JSON() && (c.ApplicationLogLevel != "" || c.SystemLogLevel != "") {
		field := "LoggingConfig.ApplicationLogLevel"
		if c.ApplicationLogLevel == "" {
			field = "LoggingConfig.SystemLogLevel"
		}
		errs = append(errs, FieldError{Field: field, Message: "log levels can be set only with the JSON log format (LogFormat JSON)"})
	}
	if c.LogGroup != "" && !logGroupRE.MatchString(c.LogGroup) {
		errs = append(errs, FieldError{Field: "LoggingConfig.LogGroup", Message: quote(c.LogGroup) + ": a log group has 1 to 512 letters, digits, '.', '-', '_', '/' or '#'"})
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
