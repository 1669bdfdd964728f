package config

// The agent file's code signing blocks: the publishers this node trusts, and what it refuses
// whoever signed it.
//
//	signing_publisher "release-team" { public_key = "./keys/release.pub" }
//	signing_publisher "ci" {
//	  certificate_identity    = "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"
//	  certificate_oidc_issuer = "https://token.actions.githubusercontent.com"
//	  trusted_root            = "./trusted_root.json"
//	}
//	code_signing { revoked = ["./keys/leaked.pub", "sha256:..."] }

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/structs"
)

type signingPublisherBlock struct {
	Name           string   `hcl:"name,label"`
	PublicKey      *string  `hcl:"public_key,optional"`
	Identity       *string  `hcl:"certificate_identity,optional"`
	IdentityRegexp *string  `hcl:"certificate_identity_regexp,optional"`
	Issuer         *string  `hcl:"certificate_oidc_issuer,optional"`
	IssuerRegexp   *string  `hcl:"certificate_oidc_issuer_regexp,optional"`
	TrustedRoot    *string  `hcl:"trusted_root,optional"`
	Body           hcl.Body `hcl:",body"`
}

type codeSigningBlock struct {
	Revoked []string `hcl:"revoked,optional"`
	Body    hcl.Body `hcl:",body"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// decodeSigning reads the signing_publisher blocks and the code_signing block into what the node
// trusts; key files, trusted roots and revocations are read and checked here, so a bad one is a
// diagnostic on its line.
func decodeSigning(blocks []signingPublisherBlock, cs *codeSigningBlock, baseDir string) (*signing.Trust, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	trust := &signing.Trust{Publishers: map[string]*signing.Publisher{}, Revoked: map[string]bool{}}
	seen := map[string]hcl.Range{}
	read := func(body hcl.Body, attr, path string) ([]byte, bool) {
		b, err := os.ReadFile(absPath(baseDir, path))
		if err != nil {
			diags = append(diags, attrDiag(body, attr, "Cannot read "+attr, err.Error()))
			return nil, false
		}
		return b, true
	}
	for _, b := range blocks {
		decl := b.Body.MissingItemRange()
		if !structs.ValidName(b.Name) {
			diags = append(diags, rangeDiag("Invalid publisher name", fmt.Sprintf("%q: a publisher's name has 1 to 64 letters, digits, '-' and '_' (code signing configurations name it).", b.Name), decl))
			continue
		}
		if prev, dup := seen[b.Name]; dup {
			diags = append(diags, rangeDiag("Duplicate signing_publisher", fmt.Sprintf("publisher %q is also declared at %s.", b.Name, prev), decl))
			continue
		}
		seen[b.Name] = decl
		identity := b.Identity != nil || b.IdentityRegexp != nil || b.Issuer != nil || b.IssuerRegexp != nil || b.TrustedRoot != nil
		switch {
		case b.PublicKey != nil && identity:
			diags = append(diags, attrDiag(b.Body, "public_key", "Key and certificate identity",
				fmt.Sprintf("publisher %q is either a public key or a certificate identity (certificate_identity, certificate_oidc_issuer, trusted_root), not both: declare two publishers.", b.Name)))
		case b.PublicKey != nil:
			pem, ok := read(b.Body, "public_key", *b.PublicKey)
			if !ok {
				continue
			}
			p, err := signing.KeyPublisher(b.Name, pem)
			if err != nil {
				diags = append(diags, attrDiag(b.Body, "public_key", "Invalid public key", fmt.Sprintf("%s: %v (a PEM public key, as cosign generate-key-pair or gateway sign keygen write it).", *b.PublicKey, err)))
				continue
			}
			trust.Publishers[b.Name] = p
		case identity:
			switch {
			case b.Identity == nil && b.IdentityRegexp == nil:
				diags = append(diags, rangeDiag("Missing certificate_identity", fmt.Sprintf("publisher %q needs certificate_identity (or certificate_identity_regexp): the certificate's subject alternative name, an e-mail address or a URI.", b.Name), decl))
				continue
			case b.Issuer == nil && b.IssuerRegexp == nil:
				diags = append(diags, rangeDiag("Missing certificate_oidc_issuer", fmt.Sprintf("publisher %q needs certificate_oidc_issuer (or certificate_oidc_issuer_regexp): the OIDC issuer the certificate names.", b.Name), decl))
				continue
			case b.TrustedRoot == nil:
				diags = append(diags, rangeDiag("Missing trusted_root", fmt.Sprintf("publisher %q needs trusted_root: a Sigstore trusted_root.json holding the certificate authority that issues its certificates (the gateway reaches no public TUF root).", b.Name), decl))
				continue
			}
			root, ok := read(b.Body, "trusted_root", *b.TrustedRoot)
			if !ok {
				continue
			}
			p, err := signing.IdentityPublisher(b.Name, str(b.Identity), str(b.IdentityRegexp), str(b.Issuer), str(b.IssuerRegexp), root)
			if err != nil {
				attr := "trusted_root"
				if strings.Contains(err.Error(), "regexp") || strings.Contains(err.Error(), "regular expression") {
					attr = "certificate_identity_regexp"
				}
				diags = append(diags, attrDiag(b.Body, attr, "Invalid certificate identity", fmt.Sprintf("publisher %q: %v.", b.Name, err)))
				continue
			}
			trust.Publishers[b.Name] = p
		default:
			diags = append(diags, rangeDiag("Empty signing_publisher", fmt.Sprintf("publisher %q needs public_key, or certificate_identity, certificate_oidc_issuer and trusted_root.", b.Name), decl))
		}
	}
	if cs != nil {
		for _, entry := range cs.Revoked {
			content := []byte(entry)
			if !strings.HasPrefix(strings.TrimSpace(entry), "sha256:") {
				b, ok := read(cs.Body, "revoked", entry)
				if !ok {
					continue
				}
				content = b
			}
			fps, err := signing.RevocationEntry(content)
			if err != nil {
				diags = append(diags, attrDiag(cs.Body, "revoked", "Invalid revocation", fmt.Sprintf("%q: %v (a PEM public key or certificate file, or sha256:<hex> of a key's or certificate's DER).", entry, err)))
				continue
			}
			for _, fp := range fps {
				trust.Revoked[fp] = true
			}
		}
	}
	return trust, diags
}
