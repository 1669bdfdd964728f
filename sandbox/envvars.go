package sandbox

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// reservedEnv are the variables Lambda sets itself; a function's configuration cannot override
// them (the API rejects them; this filter is the last line of defence).
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// IsReservedEnv reports whether name is set by the gateway and may not be configured.
func IsReservedEnv(name string) bool { return reservedEnv[name] }

// runtimeEnv is the environment a runtime starts with, as Lambda sets it (PROTOCOLS.md section 1),
// plus the function's own variables. AWS_LAMBDA_RUNTIME_API is added by the driver.
func runtimeEnv(fn *structs.Function, version, region, envID string) []string {
	env := make([]string, 0, 20+len(fn.Environment))
	keys := make([]string, 0, len(fn.Environment))
	for k := range fn.Environment {
		if !reservedEnv[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	own := make(map[string]bool, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+fn.Environment[k])
		own[k] = true
	}
	stream := fmt.Sprintf("%s/[%s]%s", time.Now().UTC().Format("2006/01/02"), version, strings.ReplaceAll(envID, "-", ""))
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION="+version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(fn.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+fn.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+stream,
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
		"_HANDLER="+fn.Handler,
		"LAMBDA_TASK_ROOT=/var/task",
		"LAMBDA_RUNTIME_DIR=/var/runtime",
	)
	// Defaults a function may override, as in Lambda.
	for _, kv := range [][2]string{
		{"TZ", ":UTC"},
		{"LANG", "en_US.UTF-8"},
		{"PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"},
		{"LD_LIBRARY_PATH", "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"},
	} {
		if !own[kv[0]] {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	return env
}
