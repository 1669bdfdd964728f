package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/cli"

	"github.com/lambdagw/gateway/internal/codepkg"
	"github.com/lambdagw/gateway/internal/signing"
)

// The `gateway sign` commands make what code signing configurations check: key pairs, and
// signed zips (a zip with its Sigstore bundle in its comment, see internal/signing), from a key
// of ours or from a bundle cosign sign-blob made.

type signCommand struct{ ui cli.Ui }

func (c *signCommand) Synopsis() string { return "Sign a function's zip for code signing" }
func (c *signCommand) Help() string {
	return `Usage: gateway sign -key KEY [-out SIGNED.zip] [-bundle BUNDLE.json] FILE.zip|DIR
       gateway sign <subcommand> [options]

  Signs a function's code with a private key: the zip (or the folder, packed as
  apply packs it) with its signature, a Sigstore bundle, in the zip's comment. A
  signed zip unpacks to exactly what was signed, and deploys unchanged through
  gateway apply, the AWS CLI, the SDKs and Terraform; a function with a code
  signing configuration checks it on every node. Signing a signed zip again
  replaces its signature.

  -key KEY             a PEM private key: gateway sign keygen's, or cosign's
                       (encrypted: its password is read from COSIGN_PASSWORD)
  -out SIGNED.zip      write the signed zip there
  -bundle BUNDLE.json  write the bundle there too (what cosign sign-blob --bundle
                       writes), for a function file's code_signature or cosign
                       verify-blob

  Subcommands:
    keygen    make a key pair
    attach    make a signed zip from a zip and a bundle cosign sign-blob made
    verify    check a signed zip against a public key`
}

func (c *signCommand) Run(args []string) int {
	fs := flagSet("sign", c.ui, c.Help())
	keyPath := fs.String("key", "", "")
	out := fs.String("out", "", "")
	bundlePath := fs.String("bundle", "", "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 1 || *keyPath == "" || (*out == "" && *bundlePath == "") {
		fs.Usage()
		return 1
	}
	pemKey, err := os.ReadFile(*keyPath)
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	key, err := signing.LoadPrivateKey(pemKey, []byte(os.Getenv("COSIGN_PASSWORD")))
	if err != nil {
		c.ui.Error(fmt.Sprintf("reading the key %s: %v", *keyPath, err))
		return 1
	}
	pkg, err := codepkg.Build(fs.Arg(0))
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	signed, bundle, err := signing.SignZip(pkg.Data, key)
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	if *out != "" {
		if err := os.WriteFile(*out, signed, 0o644); err != nil {
			c.ui.Error(err.Error())
			return 1
		}
		c.ui.Output(fmt.Sprintf("Signed %s: %s (%d bytes)", fs.Arg(0), *out, len(signed)))
	}
	if *bundlePath != "" {
		if err := os.WriteFile(*bundlePath, bundle, 0o644); err != nil {
			c.ui.Error(err.Error())
			return 1
		}
		c.ui.Output("Bundle: " + *bundlePath)
	}
	return 0
}

type signKeygenCommand struct{ ui cli.Ui }

func (c *signKeygenCommand) Synopsis() string { return "Make a key pair to sign code with" }
func (c *signKeygenCommand) Help() string {
	return `Usage: gateway sign keygen [-name NAME]

  Makes an ECDSA P-256 key pair, as cosign generate-key-pair does: NAME.key, the
  private key (mode 0600; encrypted as cosign encrypts its keys when
  COSIGN_PASSWORD is set), and NAME.pub, the public key an agent file's
  signing_publisher names (public_key = "NAME.pub"). cosign generate-key-pair's
  keys work as well. Existing files are never overwritten.

  -name NAME   the files' name (default gateway-signing)`
}

func (c *signKeygenCommand) Run(args []string) int {
	fs := flagSet("sign keygen", c.ui, c.Help())
	name := fs.String("name", "gateway-signing", "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 1
	}
	priv, pub, err := signing.GenerateKey([]byte(os.Getenv("COSIGN_PASSWORD")))
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{*name + ".key", priv, 0o600}, {*name + ".pub", pub, 0o644}} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err == nil {
			_, err = fh.Write(f.data)
			err = errors.Join(err, fh.Close())
		}
		if err != nil {
			c.ui.Error(err.Error())
			return 1
		}
	}
	c.ui.Output(fmt.Sprintf("Private key %s.key (keep it off the agents), public key %s.pub", *name, *name))
	return 0
}

type signAttachCommand struct{ ui cli.Ui }

func (c *signAttachCommand) Synopsis() string { return "Make a signed zip from a zip and its bundle" }
func (c *signAttachCommand) Help() string {
	return `Usage: gateway sign attach -bundle BUNDLE.json -out SIGNED.zip FILE.zip

  Puts a Sigstore bundle of FILE.zip, such as the one

    cosign sign-blob --key cosign.key --bundle fn.zip.sigstore.json --tlog-upload=false fn.zip

  writes, in the zip's comment: a signed zip to deploy with the AWS CLI, an SDK or
  Terraform. (A function file says code_signature = "fn.zip.sigstore.json" instead.)

  -bundle BUNDLE.json   the bundle
  -out SIGNED.zip       where to write the signed zip`
}

func (c *signAttachCommand) Run(args []string) int {
	fs := flagSet("sign attach", c.ui, c.Help())
	bundlePath := fs.String("bundle", "", "")
	out := fs.String("out", "", "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 1 || *bundlePath == "" || *out == "" {
		fs.Usage()
		return 1
	}
	zip, err := os.ReadFile(fs.Arg(0))
	if err == nil {
		var bundle []byte
		if bundle, err = os.ReadFile(*bundlePath); err == nil {
			var signed []byte
			if signed, err = signing.Attach(zip, bytes.TrimSpace(bundle)); err == nil {
				err = os.WriteFile(*out, signed, 0o644)
			}
		}
	}
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	c.ui.Output(fmt.Sprintf("Signed zip %s", *out))
	return 0
}

type signVerifyCommand struct{ ui cli.Ui }

func (c *signVerifyCommand) Synopsis() string { return "Check a signed zip against a public key" }
func (c *signVerifyCommand) Help() string {
	return `Usage: gateway sign verify -key KEY.pub FILE.zip

  Checks the signature a signed zip carries against a PEM public key, as an agent
  with that key as a signing_publisher checks it. Exit status 0 when it verifies.

  -key KEY.pub   the public key`
}

func (c *signVerifyCommand) Run(args []string) int {
	fs := flagSet("sign verify", c.ui, c.Help())
	keyPath := fs.String("key", "", "")
	if !parse(fs, c.ui, args) {
		return 1
	}
	if fs.NArg() != 1 || *keyPath == "" {
		fs.Usage()
		return 1
	}
	p, err := signing.LoadKeyFile("key", *keyPath)
	if err != nil {
		c.ui.Error(fmt.Sprintf("reading the key %s: %v", *keyPath, err))
		return 1
	}
	zip, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		c.ui.Error(err.Error())
		return 1
	}
	s, err := signing.Read(bytes.NewReader(zip), int64(len(zip)))
	if err == nil && s.Bundle == nil {
		err = signing.ErrUnsigned
	}
	if err == nil {
		_, err = (&signing.Trust{Publishers: map[string]*signing.Publisher{"key": p}}).Verify(s.Bundle, s.Digest, []string{"key"})
	}
	if err != nil {
		c.ui.Error(fmt.Sprintf("%s: %v", fs.Arg(0), err))
		return 1
	}
	c.ui.Output(fmt.Sprintf("%s: signed by %s", fs.Arg(0), *keyPath))
	return 0
}
