package structs

import "encoding/json"

// PolicyStatement is one statement of a function's resource-based policy (Lambda's
// AddPermission), kept so tools that manage permissions (Terraform's aws_lambda_permission,
// the function URL resources) read back what they wrote. The gateway authorises requests by
// its access keys and URL auth types, not by these statements.
type PolicyStatement struct {
	Function string `json:"function"`
	// Qualifier is "" for the unqualified function, else a version number or an alias.
	Qualifier string `json:"qualifier,omitempty"`
	Sid       string `json:"sid"`
	// Statement is the IAM statement as Lambda renders it in GetPolicy.
	Statement   json.RawMessage `json:"statement"`
	CreateIndex uint64          `json:"create_index"`
}
