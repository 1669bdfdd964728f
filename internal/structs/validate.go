package structs

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FieldError is one setting that breaks a rule of the gateway. The rules live here only; the HCL
// decoder and the Lambda API each map a FieldError to their own error (a diagnostic on the
// attribute's range, an InvalidParameterValueException), so the two can never drift apart.
type FieldError struct {
	// Field is the setting's path in the Lambda API ("MemorySize", "EphemeralStorage.Size",
	// "Cors.AllowOrigins"); the HCL decoder maps it to its attribute.
	Field string
	// Summary is a short title for a rule that deserves its own ("Reserved environment
	// variable"); empty means "Invalid <setting>".
	Summary string
	// Message names the bad value and what is valid, without a final period.
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Limits of settings that only the gateway has, or that Lambda has and the gateway checks too.
const (
	MaxFreezeDelay     = time.Hour
	MaxDescriptionLen  = 256
	MaxHandlerLen      = 128
	MaxFunctionNameLen = 64
)

var functionNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
var envNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)

// ValidFunctionName reports whether name may name a function: 1 to 64 letters, digits, '-' or '_'.
func ValidFunctionName(name string) bool { return functionNameRE.MatchString(name) }

// Validate checks a function's configuration against every rule of the gateway, in a fixed
// order (environment variables sorted by name), and returns what breaks them; none is valid.
func (f *Function) Validate() []FieldError {
	var errs []FieldError
	add := func(field, summary, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Summary: summary, Message: fmt.Sprintf(format, a...)})
	}
	if !ValidFunctionName(f.Name) {
		add("FunctionName", "Invalid function name", "%q: a function name has 1 to %d letters, digits, '-' or '_'", f.Name, MaxFunctionNameLen)
	}
	switch f.PackageType {
	case "", PackageZip:
		// A built-in custom runtime, or a name an agent's runtime block may declare: which
		// nodes have it is the gateway's to check (Gateway.CreateFunction).
		if !ValidRuntimeName(f.Runtime) {
			add("Runtime", "Unsupported runtime", "%q is not a runtime name: provided, provided.al2, provided.al2023, or a runtime the agents declare (like nodejs20.x: lower-case letters, digits, '.' and '-')", f.Runtime)
		}
		if f.ImageURI != "" || f.ImageConfig != nil {
			add("PackageType", "", "a Zip function has no image (ImageUri, ImageConfig); set PackageType Image")
		}
	case PackageImage:
		// As Lambda: the image is the runtime, its CMD the handler.
		if f.Runtime != "" || f.Handler != "" {
			add("PackageType", "", "an Image function has no Runtime or Handler: the image's ENTRYPOINT and CMD (or ImageConfig) say what runs")
		}
		if f.ImageURI == "" {
			add("Code.ImageUri", "", "an Image function needs an image URI")
		}
		if ic := f.ImageConfig; ic != nil {
			if len(ic.EntryPoint) > MaxImageConfigItems || len(ic.Command) > MaxImageConfigItems {
				add("ImageConfig", "", "EntryPoint and Command have at most %d items each", MaxImageConfigItems)
			}
			if ic.WorkingDirectory != "" && !strings.HasPrefix(ic.WorkingDirectory, "/") {
				add("ImageConfig.WorkingDirectory", "", "%q is not an absolute path", ic.WorkingDirectory)
			}
			for _, a := range append(append([]string(nil), ic.EntryPoint...), ic.Command...) {
				if len(a) > MaxImageConfigItemLen || strings.ContainsRune(a, 0) {
					add("ImageConfig", "", "an EntryPoint or Command item has at most %d characters and no NUL", MaxImageConfigItemLen)
					break
				}
			}
		}
	default:
		add("PackageType", "", "%q: a function's package type is Zip or Image", f.PackageType)
	}
	if len(f.Handler) > MaxHandlerLen || strings.ContainsAny(f.Handler, " \t\r\n") {
		add("Handler", "", "%q: a handler has at most %d characters and no white space", f.Handler, MaxHandlerLen)
	}
	if n := len([]rune(f.Description)); n > MaxDescriptionLen {
		add("Description", "", "%d characters is too long: the limit is %d", n, MaxDescriptionLen)
	}
	if f.MemoryMB < MinMemoryMB || f.MemoryMB > MaxMemoryMB {
		add("MemorySize", "", "%d MB is out of range: it must be between %d and %d", f.MemoryMB, MinMemoryMB, MaxMemoryMB)
	}
	if f.Timeout < MinTimeout || f.Timeout > MaxTimeout {
		add("Timeout", "", "%s is out of range: it must be between %d and %d seconds", f.Timeout, MinTimeout/time.Second, MaxTimeout/time.Second)
	}
	if f.EphemeralStorageMB < MinEphemeralMB || f.EphemeralStorageMB > MaxEphemeralMB {
		add("EphemeralStorage.Size", "", "%d MB is out of range: it must be between %d and %d", f.EphemeralStorageMB, MinEphemeralMB, MaxEphemeralMB)
	}
	if d := f.FreezeDelay; d != nil && (*d < 0 || *d > MaxFreezeDelay) {
		add("GatewayOptions.FreezeDelayMs", "", "%s is out of range: it must be between 0s and %s", *d, MaxFreezeDelay)
	}
	if d := f.DeadLetterTarget; d != "" && !ValidDeadLetterTarget(d) {
		add("DeadLetterConfig.TargetArn", "Invalid dead-letter target", "%q: use \"queue:NAME\", \"stream:NAME\" or \"<plugin>:<target>\" (never a function)", d)
	}
	if f.Network != nil {
		errs = append(errs, f.Network.Check()...)
	}
	errs = append(errs, f.Logging.Check()...)
	errs = append(errs, ValidateEnvironment(f.Environment)...)
	errs = append(errs, f.ValidateLayers()...)
	errs = append(errs, ValidateFileSystems(f.FileSystems)...)
	return errs
}

// runtimeNameRE is the shape of a managed runtime's name (Lambda's: nodejs20.x, python3.12, java21).
var runtimeNameRE = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,63}$`)

// ValidRuntimeName reports whether r is a built-in runtime or has the shape of a managed
// runtime's name.
func ValidRuntimeName(r string) bool { return ValidRuntime(r) || runtimeNameRE.MatchString(r) }

// ValidRuntime reports whether r is one of the built-in custom runtimes (Runtimes).
func ValidRuntime(r string) bool {
	for _, v := range Runtimes {
		if v == r {
			return true
		}
	}
	return false
}

// ValidateEnvironment checks a function's environment variables: names, reserved names and
// their total size (Lambda's 4 KB).
func ValidateEnvironment(env map[string]string) []FieldError {
	const field = "Environment.Variables"
	var errs []FieldError
	keys := make([]string, 0, len(env))
	size := 0
	for k, v := range env {
		keys = append(keys, k)
		size += len(k) + len(v)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case !envNameRE.MatchString(k):
			errs = append(errs, FieldError{Field: field, Summary: "Invalid environment variable name",
				Message: fmt.Sprintf("%q: a name starts with a letter and has letters, digits and '_'", k)})
		case IsReservedEnv(k):
			errs = append(errs, FieldError{Field: field, Summary: "Reserved environment variable",
				Message: fmt.Sprintf("%s is set by the gateway, as Lambda does; a function cannot configure it", k)})
		}
	}
	if size > MaxEnvironmentBytes {
		errs = append(errs, FieldError{Field: field, Summary: "Environment too large",
			Message: fmt.Sprintf("the variables take %d bytes; the limit is %d (4 KB), as in Lambda", size, MaxEnvironmentBytes)})
	}
	return errs
}

// ValidateReservedConcurrency checks a function's reservation: 0 (every call throttled) or more.
func ValidateReservedConcurrency(n int) []FieldError {
	if n < 0 {
		return []FieldError{{Field: "ReservedConcurrentExecutions",
			Message: fmt.Sprintf("%d: a reservation is 0 (every call throttled) or more", n)}}
	}
	return nil
}

// ValidateProvisionedCount checks how many environments provisioned concurrency keeps.
func ValidateProvisionedCount(n int) []FieldError {
	if n < 1 {
		return []FieldError{{Field: "ProvisionedConcurrentExecutions",
			Message: fmt.Sprintf("%d: provisioned concurrency keeps at least 1 environment", n)}}
	}
	return nil
}

// ValidateProvisionedQualifier checks the form of a provisioned concurrency's qualifier: a
// published version's number or an alias, never $LATEST (whether it exists is the caller's
// business).
func ValidateProvisionedQualifier(q string) []FieldError {
	const field = "Qualifier"
	n, err := strconv.Atoi(q)
	switch {
	case q == "":
		return []FieldError{{Field: field, Summary: "Missing qualifier", Message: "provisioned concurrency applies to a published version or an alias"}}
	case q == LatestVersion:
		return []FieldError{{Field: field, Message: "Provisioned Concurrency Configs cannot be applied to unpublished function versions ($LATEST changes with every update)"}}
	case err == nil && n < 1:
		return []FieldError{{Field: field, Message: fmt.Sprintf("%q: version numbers start at 1", q)}}
	}
	return nil
}

// versionNumber reports whether v names a published version ("1", "2", ...).
func versionNumber(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 1 && strconv.Itoa(n) == v
}

// Validate checks an alias's own settings (that its versions exist is the caller's business).
func (a *Alias) Validate() []FieldError {
	var errs []FieldError
	if !ValidAlias(a.Name) {
		errs = append(errs, FieldError{Field: "Name", Summary: "Invalid alias name",
			Message: fmt.Sprintf("%q: an alias has 1 to 128 letters, digits, '-' and '_', is not a number, and has no %q", a.Name, URLIDSeparator)})
	}
	switch {
	case a.FunctionVersion == "":
		errs = append(errs, FieldError{Field: "FunctionVersion", Summary: "Missing alias version",
			Message: "an alias needs a version: a published version's number or \"$LATEST\""})
	case a.FunctionVersion != LatestVersion && !versionNumber(a.FunctionVersion):
		errs = append(errs, FieldError{Field: "FunctionVersion", Summary: "Invalid alias version",
			Message: fmt.Sprintf("%q: use a published version's number, or \"$LATEST\"", a.FunctionVersion)})
	}
	if n := len([]rune(a.Description)); n > MaxDescriptionLen {
		errs = append(errs, FieldError{Field: "Description", Message: fmt.Sprintf("%d characters is too long: the limit is %d", n, MaxDescriptionLen)})
	}
	const routing = "RoutingConfig.AdditionalVersionWeights"
	if n := len(a.AdditionalVersionWeights); n > 1 {
		errs = append(errs, FieldError{Field: routing, Summary: "Invalid routing",
			Message: fmt.Sprintf("an alias routes to one more version, not %d", n)})
	}
	versions := make([]string, 0, len(a.AdditionalVersionWeights))
	for v := range a.AdditionalVersionWeights {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		w := a.AdditionalVersionWeights[v]
		switch {
		case a.FunctionVersion == LatestVersion:
			errs = append(errs, FieldError{Field: routing, Summary: "Invalid routing",
				Message: "an alias that routes between versions points to a published version, not $LATEST"})
		case !versionNumber(v) || v == a.FunctionVersion:
			errs = append(errs, FieldError{Field: routing, Summary: "Invalid routing",
				Message: fmt.Sprintf("%q: routing names another published version by its number", v)})
		}
		if w < 0 || w >= 1 || math.IsNaN(w) {
			errs = append(errs, FieldError{Field: routing, Summary: "Invalid routing weight",
				Message: fmt.Sprintf("the weight of version %s is %v: a weight is at least 0 and less than 1", v, w)})
		}
	}
	return errs
}

// Validate checks a function URL's settings; AllowMethods must be upper case already (Normalize).
func (u *FunctionURL) Validate() []FieldError {
	var errs []FieldError
	switch u.AuthType {
	case AuthNone, AuthSigned:
	default:
		errs = append(errs, FieldError{Field: "AuthType",
			Message: fmt.Sprintf("%q: use NONE (open) or AWS_IAM (SIGNED in HCL: AWS Signature V4 with one of the agent's access keys)", u.AuthType)})
	}
	switch u.InvokeMode {
	case InvokeBuffered, InvokeStream:
	default:
		errs = append(errs, FieldError{Field: "InvokeMode", Message: fmt.Sprintf("%q: use BUFFERED or RESPONSE_STREAM", u.InvokeMode)})
	}
	if q := u.Qualifier; q != "" && q != LatestVersion && !ValidAlias(q) {
		errs = append(errs, FieldError{Field: "Qualifier",
			Message: fmt.Sprintf("%q: a function URL's qualifier is an alias: letters, digits, '-' and '_', without %q", q, URLIDSeparator)})
	}
	if u.Cors != nil {
		errs = append(errs, u.Cors.Validate()...)
	}
	return errs
}

// Normalize upper-cases AllowMethods, as Lambda stores them.
func (c *CORS) Normalize() {
	for i, m := range c.AllowMethods {
		c.AllowMethods[i] = strings.ToUpper(m)
	}
}

// Validate checks a CORS policy (after Normalize).
func (c *CORS) Validate() []FieldError {
	var errs []FieldError
	if c.MaxAge < 0 || c.MaxAge > MaxCORSMaxAge {
		errs = append(errs, FieldError{Field: "Cors.MaxAge", Message: fmt.Sprintf("%d: max_age is in seconds, from 0 to %d", c.MaxAge, MaxCORSMaxAge)})
	}
	lists := []struct {
		field string
		items []string
		ok    func(string) bool
		valid string
	}{
		{"Cors.AllowOrigins", c.AllowOrigins, IsCORSOrigin, "use * or scheme://host[:port], e.g. https://example.com"},
		{"Cors.AllowMethods", c.AllowMethods, IsCORSMethod, "not an HTTP method; use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or *"},
		{"Cors.AllowHeaders", c.AllowHeaders, isCORSHeader, "not a header name (or *)"},
		{"Cors.ExposeHeaders", c.ExposeHeaders, isCORSHeader, "not a header name (or *)"},
	}
	for _, l := range lists {
		if len(l.items) > MaxCORSItems {
			errs = append(errs, FieldError{Field: l.field, Message: fmt.Sprintf("%d items; the limit is %d", len(l.items), MaxCORSItems)})
		}
		for _, v := range l.items {
			if v == "" || strings.ContainsAny(v, "\r\n,") || !l.ok(v) {
				errs = append(errs, FieldError{Field: l.field, Message: fmt.Sprintf("%q: %s", v, l.valid)})
			}
		}
	}
	return errs
}

// isCORSHeader reports whether h is * or a header name (an HTTP token, RFC 9110).
func isCORSHeader(h string) bool {
	if h == "*" {
		return true
	}
	for _, r := range h {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return h != ""
}
