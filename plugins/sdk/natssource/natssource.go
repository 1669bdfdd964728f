// Package natssource sets up a trigger plugin's connection to NATS JetStream: the configuration
// block (url, credentials_file) and the connection it describes, falling back to the agent's own
// NATS (and the NKey the agent gives its plugins) when the block names no server. Source is a
// whole TriggerSource on that connection but for the per-mapping runners. The built-in queue
// and stream triggers are built on it; a third party's NATS trigger can be too. It lives in the SDK,
// not internal/, so that the built-in triggers import nothing a third party could not.
package natssource

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/lambdagw/gateway/plugins/sdk"
)

// DefaultRegion is the region of ARNs when the agent gives none.
const DefaultRegion = "us-east-1"

// HostInfo keys of the agent's own NATS: its URL, and the seed of the NKey its plugins sign in
// with (made at each start of the agent; a secret, never logged).
const (
	HostInfoURL  = "nats_url"
	HostInfoSeed = "nats_nkey_seed"
)

// NKeyOption signs in with the user NKey of seed.
func NKeyOption(seed string) (nats.Option, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("reading the NATS NKey seed: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, errors.New("the NATS NKey seed is not a user's")
	}
	return nats.Nkey(pub, kp.Sign), nil
}

// config is the plugins' configuration block.
type config struct {
	URL             string `json:"url"`
	CredentialsFile string `json:"credentials_file"`
}

// Schema is the configuration block of a plugin reading what (queues, streams) from NATS.
func Schema(what string) sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "url", Type: sdk.TypeString,
			Description: "URL of the NATS JetStream server holding the " + what + "; the agent's own when unset."},
		{Name: "credentials_file", Type: sdk.TypeString,
			Description: "NATS credentials file (user JWT and NKey seed) to connect with."},
	}}
}

// Conn is a plugin's connection to NATS.
type Conn struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Region string
}

// Connect decodes the configuration block and connects (reconnecting forever, also when the
// server is not up yet) to its url, or else to the agent's NATS. Mistakes the user can fix are
// diagnostics; name names the connection in the server's monitoring.
func Connect(req sdk.ConfigureRequest, name, what string, logger hclog.Logger) (*Conn, []sdk.Diagnostic, error) {
	var cfg config
	if err := req.DecodeConfig(&cfg); err != nil {
		return nil, nil, err
	}
	url := cfg.URL
	var creds nats.Option
	if url == "" {
		url = req.HostInfo[HostInfoURL]
		// The agent's key goes to the agent's server only, never to a url of the config block,
		// and only when the block names no credentials of its own.
		if seed := req.HostInfo[HostInfoSeed]; seed != "" && cfg.CredentialsFile == "" {
			var err error
			if creds, err = NKeyOption(seed); err != nil {
				return nil, nil, err
			}
		}
	}
	if url == "" {
		return nil, []sdk.Diagnostic{{Attribute: "url", Summary: "No NATS server to read " + what + " from",
			Detail: "The agent runs no NATS JetStream of its own (no nats_url): set url to the server's."}}, nil
	}
	logger = logger.With("url", url)
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(*nats.Conn) { logger.Info("connected to NATS") }),
		nats.ReconnectHandler(func(*nats.Conn) { logger.Info("reconnected to NATS") }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("disconnected from NATS", "error", err)
			}
		}),
	}
	if cfg.CredentialsFile != "" {
		if _, err := os.Stat(cfg.CredentialsFile); err != nil {
			return nil, []sdk.Diagnostic{{Attribute: "credentials_file", Summary: "Cannot read the NATS credentials file",
				Detail: err.Error()}}, nil
		}
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	if creds != nil {
		opts = append(opts, creds)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, []sdk.Diagnostic{{Attribute: "url", Summary: "Cannot connect to NATS", Detail: err.Error()}}, nil
	}
	if !nc.IsConnected() {
		logger.Warn("NATS is not reachable yet; retrying in the background")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("opening JetStream: %w", err)
	}
	region := req.HostInfo["region"]
	if region == "" {
		region = DefaultRegion
	}
	return &Conn{NC: nc, JS: js, Region: region}, nil, nil
}
