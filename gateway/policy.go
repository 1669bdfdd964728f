package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"

	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/structs"
)

// Resource-based policies (AddPermission, GetPolicy, RemovePermission). The statements are
// stored in the replicated state and read back as Lambda renders them, so tools that manage
// them (Terraform's aws_lambda_permission and function URL resources, the AWS CLI) work. They do
// not grant anything: the gateway authorises API calls by its access keys' policies and URL
// calls by the URL's auth_type.

var statementIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,100}$`)

// permissionQualifier checks the qualifier of a policy operation: "" (or $LATEST) for the
// function itself, else an existing version or alias.
func (g *Gateway) permissionQualifier(fn *structs.Function, qualifier string) (string, error) {
	if qualifier == "" || qualifier == structs.LatestVersion {
		return "", nil
	}
	if _, ok := g.cfg.Store.Version(fn.Name, qualifier); ok {
		return qualifier, nil
	}
	if _, ok := g.cfg.Store.Alias(fn.Name, qualifier); ok {
		return qualifier, nil
	}
	return "", lambda.ResourceNotFound("Function not found: %s", lambda.FunctionARN(g.cfg.Region, fn.Name, qualifier))
}

// AddPermission adds a statement to the policy of the function (or of a version or alias) and
// returns it as JSON.
func (g *Gateway) AddPermission(ctx context.Context, name, qualifier string, in *lambda.AddPermissionInput) (string, error) {
	fn, err := g.existing(name)
	if err != nil {
		return "", err
	}
	q, err := g.permissionQualifier(fn, qualifier)
	if err != nil {
		return "", err
	}
	switch {
	case !statementIDRE.MatchString(in.StatementId):
		return "", lambda.InvalidParameter("StatementId %q: 1 to 100 letters, digits, '-' and '_'", in.StatementId)
	case !strings.HasPrefix(in.Action, "lambda:"):
		return "", lambda.InvalidParameter("Action %q: a Lambda action such as lambda:InvokeFunction or lambda:InvokeFunctionUrl", in.Action)
	case in.Principal == "":
		return "", lambda.InvalidParameter("Principal is required")
	}
	principal := any(map[string]string{"AWS": in.Principal})
	switch {
	case in.Principal == "*":
		principal = "*"
	case strings.Contains(in.Principal, "."):
		principal = map[string]string{"Service": in.Principal}
	}
	cond := map[string]map[string]string{}
	set := func(op, key, v string) {
		if v == "" {
			return
		}
		if cond[op] == nil {
			cond[op] = map[string]string{}
		}
		cond[op][key] = v
	}
	set("ArnLike", "AWS:SourceArn", in.SourceArn)
	set("StringEquals", "AWS:SourceAccount", in.SourceAccount)
	set("StringEquals", "lambda:FunctionUrlAuthType", in.FunctionUrlAuthType)
	set("StringEquals", "aws:PrincipalOrgID", in.PrincipalOrgID)
	stmt := map[string]any{"Sid": in.StatementId, "Effect": "Allow", "Principal": principal, "Action": in.Action,
		"Resource": lambda.FunctionARN(g.cfg.Region, fn.Name, q)}
	if len(cond) > 0 {
		stmt["Condition"] = cond
	}
	raw, err := json.Marshal(stmt)
	if err != nil {
		return "", err
	}
	if in.RevisionId != "" && in.RevisionId != fn.RevisionID {
		return "", g.storeError(fn.Name, g.cfg.StoreErrors.Conflict)
	}
	err = g.cfg.Store.AddPolicyStatement(ctx, &structs.PolicyStatement{Function: fn.Name, Qualifier: q, Sid: in.StatementId, Statement: raw})
	if se := g.cfg.StoreErrors; se.Exists != nil && errors.Is(err, se.Exists) {
		return "", lambda.ResourceConflict("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", in.StatementId)
	}
	if err != nil {
		return "", g.storeError(fn.Name, err)
	}
	return string(raw), nil
}

// GetPolicy returns the policy of the function (or of a version or alias) as JSON.
func (g *Gateway) GetPolicy(name, qualifier string) (*lambda.GetPolicyOutput, error) {
	fn, err := g.existing(name)
	if err != nil {
		return nil, err
	}
	q, err := g.permissionQualifier(fn, qualifier)
	if err != nil {
		return nil, err
	}
	stmts := g.cfg.Store.PolicyStatements(fn.Name, q)
	if len(stmts) == 0 {
		return nil, lambda.ResourceNotFound("The resource you requested does not exist.")
	}
	list := make([]json.RawMessage, 0, len(stmts))
	for _, st := range stmts {
		list = append(list, st.Statement)
	}
	doc, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": "default", "Statement": list})
	if err != nil {
		return nil, err
	}
	return &lambda.GetPolicyOutput{Policy: string(doc), RevisionId: fn.RevisionID}, nil
}

// RemovePermission removes a statement from a policy.
func (g *Gateway) RemovePermission(ctx context.Context, name, qualifier, sid string) error {
	fn, err := g.existing(name)
	if err != nil {
		return err
	}
	q, err := g.permissionQualifier(fn, qualifier)
	if err != nil {
		return err
	}
	err = g.cfg.Store.RemovePolicyStatement(ctx, fn.Name, q, sid)
	if se := g.cfg.StoreErrors; se.NotFound != nil && errors.Is(err, se.NotFound) {
		return lambda.ResourceNotFound("Statement %s is not found in resource policy.", sid)
	}
	if err != nil {
		return g.storeError(fn.Name, err)
	}
	return nil
}
