package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/lambdagw/gateway/cluster/codestore"
	"github.com/lambdagw/gateway/gateway"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/internal/signing"
	"github.com/lambdagw/gateway/internal/structs"
)

// codeVerifier checks code signatures with the node's publishers (the agent file's
// signing_publisher and code_signing blocks): at deploy for the gateway, and before an
// environment starts for the sandbox (CheckCode), so every node checks the code it fetched
// with its own trust before it runs it.
type codeVerifier struct {
	node   string
	region string
	trust  *signing.Trust
	code   *codestore.Store
	images imageSignatures
	store  gateway.CodeSigningStore
	logger hclog.Logger

	// checked holds the outcome of CheckCode by what it checked (the code, its layers, and the
	// configuration's revision): once a node has checked code, its next environments start
	// without checking again.
	mu      sync.Mutex
	checked map[string]error
}

// imageSignatures finds the signatures of a pinned image (the image store).
type imageSignatures interface {
	Signatures(ctx context.Context, resolvedURI string) (*signing.ImageSignatures, error)
}

// maxChecked bounds the outcomes kept; past it they are forgotten (and checked again).
const maxChecked = 4096

func newCodeVerifier(node, region string, trust *signing.Trust, code *codestore.Store, images imageSignatures, store gateway.CodeSigningStore, logger hclog.Logger) *codeVerifier {
	if trust == nil {
		trust = &signing.Trust{}
	}
	v := &codeVerifier{node: node, region: region, trust: trust, code: code, images: images, store: store, logger: logger.Named("signing"), checked: map[string]error{}}
	if names := trust.Names(); len(names) > 0 {
		v.logger.Info("code signing publishers", "publishers", strings.Join(names, ", "), "revoked", len(trust.Revoked))
	}
	return v
}

func (v *codeVerifier) HasPublisher(name string) bool { return v.trust.Has(name) }

// VerifyCode checks the signature the stored zip sha carries.
func (v *codeVerifier) VerifyCode(_ context.Context, sha string, allowed []string) (string, error) {
	f, err := v.code.Open(sha)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	s, err := signing.Read(f, st.Size())
	if err != nil {
		return "", &signing.IntegrityError{Reason: err.Error()}
	}
	if s.Bundle == nil {
		return "", signing.ErrUnsigned
	}
	return v.trust.Verify(s.Bundle, s.Digest, allowed)
}

// VerifyImage checks the signatures stored beside a pinned image in its registry.
func (v *codeVerifier) VerifyImage(ctx context.Context, resolvedURI string, allowed []string) (string, error) {
	if v.images == nil {
		return "", &signing.UntrustedError{Reason: "this node reads no image signatures"}
	}
	sigs, err := v.images.Signatures(ctx, resolvedURI)
	if err != nil {
		return "", err
	}
	return v.trust.VerifyImage(sigs, allowed)
}

// CheckCode is the sandbox's check before an environment of fn starts (gateway.CheckRun).
func (v *codeVerifier) CheckCode(ctx context.Context, fn *structs.Function) error {
	if fn.CodeSignature == nil {
		return nil
	}
	id, ok := v.store.FunctionCodeSigningConfig(fn.Name)
	if !ok {
		return nil
	}
	c, ok := v.store.CodeSigningConfig(id)
	if !ok {
		return nil
	}
	key := fmt.Sprintf("%s|%s|%d|%s|%s", fn.CodeSha256, fn.ResolvedImageURI, c.ModifyIndex, c.ID, layerKey(fn))
	v.mu.Lock()
	err, done := v.checked[key]
	v.mu.Unlock()
	if done {
		return err
	}
	warn, err := gateway.CheckRun(ctx, v, v.store, v.region, fn)
	if ctx.Err() != nil {
		return ctx.Err() // not an outcome to keep
	}
	var le *lambda.Error
	if errors.As(err, &le) && le.Status >= 500 {
		// The check could not be made (a registry out of reach): not an outcome to keep.
		return err
	}
	if errors.As(err, &le) {
		err = &lambda.Error{Status: le.Status, Type: le.Type, Message: fmt.Sprintf("node %s refuses to run function %s: %s", v.node, fn.Name, le.Message)}
		v.logger.Error("refusing to run code that does not verify", "function", fn.Name, "version", fn.Qualifier(), "reason", le.Message)
	}
	if warn != nil {
		v.logger.Warn("running code that does not verify: its code signing configuration warns only (Warn)", "function", fn.Name,
			"version", fn.Qualifier(), "code_signing_config", c.ID, "reason", warn)
	}
	v.mu.Lock()
	if len(v.checked) >= maxChecked {
		v.checked = map[string]error{}
	}
	v.checked[key] = err
	v.mu.Unlock()
	return err
}

func layerKey(fn *structs.Function) string {
	var b strings.Builder
	for _, l := range fn.Layers {
		b.WriteString(l.CodeSha256)
		b.WriteByte(',')
	}
	return b.String()
}
