package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// AuthWord is the HCL's word for a function URL's auth type (SIGNED for AWS_IAM).
func AuthWord(t string) string {
	if t == structs.AuthSigned {
		return "SIGNED"
	}
	return t
}

func urlInput(u *config.FunctionURL) *lambda.FunctionURLConfigInput {
	in := &lambda.FunctionURLConfigInput{AuthType: u.AuthType, InvokeMode: u.InvokeMode, Cors: &lambda.Cors{}}
	if u.Cors != nil {
		in.Cors = lambda.CorsFrom(u.Cors)
	}
	return in
}

// urlChanges makes the function's URLs match its url block: the file is the truth, so a URL
// the file no longer has (another qualifier's, or any when there is no block) is deleted.
func urlChanges(fn *config.Function, cur []lambda.FunctionURLConfig) []Change {
	var out []Change
	want, found := "", false
	if fn.URL != nil {
		want = fn.URL.Qualifier
	}
	for _, u := range cur {
		_, q, _ := lambda.ParseFunctionName(u.FunctionArn)
		if fn.URL != nil && q == want {
			found = true
			var diffs []string
			if u.AuthType != fn.URL.AuthType {
				diffs = append(diffs, fmt.Sprintf("auth_type %s -> %s", AuthWord(u.AuthType), AuthWord(fn.URL.AuthType)))
			}
			if u.InvokeMode != fn.URL.InvokeMode {
				diffs = append(diffs, fmt.Sprintf("invoke_mode %s -> %s", u.InvokeMode, fn.URL.InvokeMode))
			}
			if corsKey(u.Cors.Structs()) != corsKey(derefCORS(fn.URL.Cors)) {
				diffs = append(diffs, "cors")
			}
			if len(diffs) == 0 {
				continue
			}
			in, list := urlInput(fn.URL), " ("+strings.Join(diffs, ", ")+")"
			out = append(out, Change{Function: fn.Name, Kind: URL, Text: "URL to update" + list,
				apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
					if _, err := a.UpdateFunctionURLConfig(ctx, fn.Name, q, in); err != nil {
						return "", fmt.Errorf("updating the URL: %w", err)
					}
					return "URL updated" + list, nil
				}})
			continue
		}
		addr := u.FunctionUrl
		out = append(out, Change{Function: fn.Name, Kind: URL, Text: "URL " + addr + " to delete",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				if err := a.DeleteFunctionURLConfig(ctx, fn.Name, q); err != nil {
					return "", fmt.Errorf("deleting the URL %s: %w", addr, err)
				}
				return "URL " + addr + " deleted", nil
			}})
	}
	if fn.URL != nil && !found {
		in := urlInput(fn.URL)
		out = append(out, Change{Function: fn.Name, Kind: URL, Text: "URL to create",
			apply: func(ctx context.Context, a Agent, _ func(string)) (string, error) {
				u, err := a.CreateFunctionURLConfig(ctx, fn.Name, want, in)
				if err != nil {
					return "", fmt.Errorf("creating the URL: %w", err)
				}
				return "URL " + u.FunctionUrl + " created", nil
			}})
	}
	return out
}

// corsKey compares CORS settings: the JSON of structs.CORS omits empty fields, so an absent
// block, unset and empty lists compare equal.
func corsKey(c structs.CORS) string {
	b, _ := json.Marshal(c)
	return string(b)
}

func derefCORS(c *structs.CORS) structs.CORS {
	if c == nil {
		return structs.CORS{}
	}
	return *c
}
