package agent

import (
	"context"

	"github.com/lambdagw/gateway/config"
	"github.com/lambdagw/gateway/internal/image"
	"github.com/lambdagw/gateway/internal/lambda"
	"github.com/lambdagw/gateway/sandbox"
)

// images is the node's image store as the sandbox (an image function's root) and the gateway
// (an image pinned at deploy) ask for it.
type images struct{ s *image.Store }

func newImages(dir string, regs []config.Registry, a *agent) (*images, error) {
	var rs []image.Registry
	for _, r := range regs {
		rs = append(rs, image.Registry{Host: r.Host, Username: r.Username, Password: r.Password, Insecure: r.Insecure})
	}
	s, err := image.New(image.Config{Dir: dir, Registries: rs, Logger: a.logger.Named("images")})
	if err != nil {
		return nil, err
	}
	return &images{s: s}, nil
}

// Root fetches what this node lacks of the pinned image and gives its layer folders.
func (i *images) Root(ctx context.Context, resolved string) (*sandbox.ImageRoot, error) {
	im, err := i.s.Pull(ctx, resolved)
	if err != nil {
		return nil, err
	}
	r := &sandbox.ImageRoot{Entrypoint: im.Config.Entrypoint, Cmd: im.Config.Cmd, Env: im.Config.Env, WorkingDir: im.Config.WorkingDir}
	for _, l := range im.Layers {
		r.Layers = append(r.Layers, i.s.LayerDir(l))
	}
	return r, nil
}

// Resolve pins uri to its digest and pulls the image, so that a deploy that answered can run.
// An image the client named wrongly answers as Lambda does, with InvalidParameterValueException.
func (i *images) Resolve(ctx context.Context, uri string) (string, error) {
	im, err := i.s.Pull(ctx, uri)
	switch {
	case err == nil:
		return im.Resolved, nil
	case image.IsKind(err, image.NotFound):
		return "", lambda.InvalidParameter("Source image %s does not exist. Provide a valid source image. (%v)", uri, err)
	case image.IsKind(err, image.Denied):
		return "", lambda.InvalidParameter("The registry refused access to image %s: give the agent its credentials in a registry block or a Docker config file. (%v)", uri, err)
	case image.IsKind(err, image.TooLarge):
		return "", lambda.InvalidParameter("Image %s is larger than the 10 GB an image function may unpack to. (%v)", uri, err)
	case image.IsKind(err, image.Invalid):
		return "", lambda.InvalidParameter("Image %s cannot be used: %v", uri, err)
	case ctx.Err() != nil:
		return "", ctx.Err()
	default:
		// The registry unreachable, or this node's disk: not the image's fault, but the deploy
		// cannot go on.
		return "", lambda.ServiceError("fetching image %s: %v", uri, err)
	}
}
