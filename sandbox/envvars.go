package sandbox

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lambdagw/gateway/internal/structs"
)

// runtimeEnv is the environment a runtime starts with, as Lambda sets it (PROTOCOLS.md section 1),
// plus the function's own variables. AWS_LAMBDA_RUNTIME_API is added by the driver.
func runtimeEnv(fn *structs.Function, version, region, envID string, provisioned bool) []string {
	initType := "on-demand"
	if provisioned {
		initType = "provisioned-concurrency"
	}
	env := make([]string, 0, 20+len(fn.Environment))
	keys := make([]string, 0, len(fn.Environment))
	jsonLogs := fn.Logging.JSON()
	for k := range fn.Environment {
		if jsonLogs && (k == "AWS_LAMBDA_LOG_FORMAT" || k == "AWS_LAMBDA_LOG_LEVEL") {
			continue // the LoggingConfig's, below
		}
		if !structs.IsReservedEnv(k) {
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
		"AWS_LAMBDA_LOG_GROUP_NAME="+fn.Logging.Group(fn.Name),
		"AWS_LAMBDA_LOG_STREAM_NAME="+stream,
		"AWS_LAMBDA_INITIALIZATION_TYPE="+initType,
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
		"_HANDLER="+fn.Handler,
		"LAMBDA_TASK_ROOT=/var/task",
		"LAMBDA_RUNTIME_DIR=/var/runtime",
	)
	if jsonLogs {
		// The runtimes' own loggers (aws-lambda-go's slog handler, the managed runtimes) write
		// JSON at this level.
		env = append(env, "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_LOG_LEVEL="+fn.Logging.AppLevel())
	}
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
