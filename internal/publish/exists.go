package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// ExistingBound bounds the whole of Existing, however many tags it
// checks (each request is bounded by the transport's timeout, and the
// retries by Options.Retries).
const ExistingBound = 2 * time.Minute

// existingJobs is the number of tags checked at once.
const existingJobs = 8

// Existing is, for each repository of dests (keyed by its full name,
// name.Repository's String), the first of its tags, in the order given,
// that the registry already holds: plugins/ecr's skip_push_if_tag_exists
// for every registry. One manifest HEAD per tag, at most existingJobs at
// once, with the token a push asks for (pull and push: a registry may
// answer 401 to pull alone for a repository that does not exist yet). A
// registry answering 404 does not hold the tag (nor, maybe, the
// repository); any other answer, or none, is an error for that tag (a
// *Error, ErrPush), since neither skipping nor pushing would then be
// known to be right. Nothing is written.
func Existing(ctx context.Context, dests []name.Tag, o Options) (map[string]name.Tag, error) {
	ctx, cancel := context.WithTimeout(ctx, ExistingBound)
	defer cancel()
	found := make([]bool, len(dests))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(existingJobs)
	for i, d := range dests {
		g.Go(func() error {
			ok, err := tagExists(gctx, d, o)
			if err != nil {
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					err = fmt.Errorf("%w (the whole check is bounded by %s)", err, ExistingBound)
				}
				return explain(d, fmt.Errorf("check whether the tag exists: %w", err))
			}
			found[i] = ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]name.Tag{}
	for i, d := range dests {
		repo := d.Context().String()
		if _, ok := out[repo]; !ok && found[i] {
			out[repo] = d
		}
	}
	return out, nil
}

// manifestTypes are the manifests a tag may name, as a HEAD accepts them.
var manifestTypes = []types.MediaType{types.OCIManifestSchema1, types.OCIImageIndex, types.DockerManifestSchema2, types.DockerManifestList, types.DockerManifestSchema1, types.DockerManifestSchema1Signed}

// tagExists asks the registry whether it holds t: HEAD on its manifest.
func tagExists(ctx context.Context, t name.Tag, o Options) (bool, error) {
	repo := t.Context()
	auth, err := o.Access.Authenticator(ctx, repo)
	if err != nil {
		return false, err
	}
	rt := transport.NewRetry(o.Access.RoundTripper(), transport.WithRetryBackoff(Backoff(o.Retries)),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, rt, []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return false, err
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/manifests/" + t.TagStr()}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u.String(), nil)
	if err != nil {
		return false, err
	}
	accept := make([]string, len(manifestTypes))
	for i, mt := range manifestTypes {
		accept[i] = string(mt)
	}
	req.Header.Set("Accept", strings.Join(accept, ","))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, transport.CheckError(resp, http.StatusOK)
}
