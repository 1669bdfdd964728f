package reconcile

import (
	"context"
	"fmt"
	"sort"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/lambda"
)

// aliasChanges creates and updates the aliases of the function's alias blocks. Those the file
// no longer has are aliasDeletions, made later.
func aliasChanges(fn *config.Function, cur []lambda.AliasConfiguration) []Change {
	have := map[string]lambda.AliasConfiguration{}
	for _, a := range cur {
		have[a.Name] = a
	}
	var out []Change
	for _, a := range fn.Aliases {
		desc := a.Description
		in := &lambda.AliasInput{Name: a.Name, FunctionVersion: a.Version, Description: &desc,
			RoutingConfig: &lambda.AliasRoutingConfiguration{AdditionalVersionWeights: a.Routing}}
		alias := a.Name
		old, exists := have[a.Name]
		if !exists {
			target := fmt.Sprintf("(-> %s%s)", a.Version, routingText(a.Routing))
			out = append(out, Change{Function: fn.Name, Kind: Alias, Text: "alias " + alias + " to create " + target,
				apply: func(ctx context.Context, ag Agent, _ func(string)) (string, error) {
					if _, err := ag.CreateAlias(ctx, fn.Name, in); err != nil {
						return "", fmt.Errorf("creating alias %s: %w", alias, err)
					}
					return "alias " + alias + " created " + target, nil
				}})
			continue
		}
		var oldRouting map[string]float64
		if old.RoutingConfig != nil {
			oldRouting = old.RoutingConfig.AdditionalVersionWeights
		}
		if old.FunctionVersion == a.Version && old.Description == a.Description && routingText(oldRouting) == routingText(a.Routing) {
			continue
		}
		move := fmt.Sprintf("(%s%s -> %s%s)", old.FunctionVersion, routingText(oldRouting), a.Version, routingText(a.Routing))
		out = append(out, Change{Function: fn.Name, Kind: Alias, Text: "alias " + alias + " to update " + move,
			apply: func(ctx context.Context, ag Agent, _ func(string)) (string, error) {
				if _, err := ag.UpdateAlias(ctx, fn.Name, alias, in); err != nil {
					return "", fmt.Errorf("updating alias %s: %w", alias, err)
				}
				return "alias " + alias + " updated " + move, nil
			}})
	}
	return out
}

// aliasDeletions deletes the aliases the function's file no longer has (the agent deletes
// their URLs with them).
func aliasDeletions(fn *config.Function, cur []lambda.AliasConfiguration) []Change {
	declared := map[string]bool{}
	for _, a := range fn.Aliases {
		declared[a.Name] = true
	}
	var gone []string
	for _, a := range cur {
		if !declared[a.Name] {
			gone = append(gone, a.Name)
		}
	}
	sort.Strings(gone)
	var out []Change
	for _, alias := range gone {
		out = append(out, Change{Function: fn.Name, Kind: Alias, Text: "alias " + alias + " to delete",
			apply: func(ctx context.Context, ag Agent, _ func(string)) (string, error) {
				if err := ag.DeleteAlias(ctx, fn.Name, alias); err != nil {
					return "", fmt.Errorf("deleting alias %s: %w", alias, err)
				}
				return "alias " + alias + " deleted", nil
			}})
	}
	return out
}
