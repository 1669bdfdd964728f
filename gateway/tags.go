package gateway

import (
	"strings"

	"github.com/lambdagw/gateway/internal/lambda"
)

// Tags: the gateway keeps none (CreateFunction refuses them, naming the setting), so its
// tagging operations answer what that means: ListTags finds no tag on a resource that exists,
// as Lambda answers an untagged one (tools that read tags after creating a resource, such as
// Terraform's AWS provider, need that answer), and TagResource refuses any tag.

// CheckTaggable finds the resource an ARN of the tagging operations names: a function (not a
// version or an alias, as Lambda), a code signing configuration or an event source mapping.
func (g *Gateway) CheckTaggable(arn string) error {
	switch {
	case strings.Contains(arn, ":code-signing-config:"):
		_, err := g.codeSigningConfig(arn)
		return err
	case strings.Contains(arn, ":event-source-mapping:"):
		uuid := arn[strings.LastIndex(arn, ":")+1:]
		if _, ok := g.TriggerByUUID(uuid); !ok {
			return lambda.ResourceNotFound("Event source mapping not found: %s", arn)
		}
		return nil
	case strings.Contains(arn, ":function:"):
		name, q, err := lambda.ParseFunctionName(arn)
		if err != nil {
			return err
		}
		if q != "" {
			return lambda.InvalidParameter("%s: tags are a function's, not a version's or an alias's", arn)
		}
		_, err = g.existing(name)
		return err
	}
	return lambda.InvalidParameter("%q is not the ARN of a function, a code signing configuration or an event source mapping", arn)
}
