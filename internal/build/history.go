package build

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	controlapi "github.com/moby/buildkit/api/services/control"
)

// Resolved is an input the builder resolved to a digest: a base image
// (uri pkg:docker/NAME@TAG?platform=...).
type Resolved struct {
	URI    string
	Digest map[string]string
}

// maxProvenance bounds the provenance BuildKit recorded for one build.
const maxProvenance = 16 << 20

// baseImages reads, from the engine's build history, the base images the
// build with ref resolved: BuildKit records a SLSA provenance of every
// build it runs, whose resolved dependencies name each image FROM pulled
// with its digest. The wait for the record is bounded; a record without
// them gives none.
func (b *BuildKit) baseImages(ctx context.Context, ref string) ([]Resolved, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var atts []*controlapi.Descriptor
	// The record is completed just after the solve returns: ask again,
	// a bounded number of times, until it holds its provenance.
	for i := 0; i < 50 && len(atts) == 0; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		rec, err := b.historyRecord(ctx, ref)
		if err != nil {
			return nil, err
		}
		if rec == nil || rec.CompletedAt == nil {
			continue
		}
		results := []*controlapi.BuildResultInfo{rec.Result}
		for _, r := range rec.Results {
			results = append(results, r)
		}
		for _, r := range results {
			if r == nil {
				continue
			}
			for _, a := range r.Attestations {
				if strings.HasPrefix(a.Annotations["in-toto.io/predicate-type"], "https://slsa.dev/provenance/") {
					atts = append(atts, a)
				}
			}
		}
		if rec.Result == nil && len(rec.Results) == 0 {
			// A build that exported nothing records no provenance.
			return nil, nil
		}
	}
	seen := map[string]bool{}
	var out []Resolved
	for _, a := range atts {
		dt, err := b.readBlob(ctx, a.Digest)
		if err != nil {
			return nil, err
		}
		var p struct {
			BuildDefinition struct {
				ResolvedDependencies []struct {
					URI    string            `json:"uri"`
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
		}
		if err := json.Unmarshal(dt, &p); err != nil {
			return nil, err
		}
		for _, d := range p.BuildDefinition.ResolvedDependencies {
			if !strings.HasPrefix(d.URI, "pkg:docker/") || len(d.Digest) == 0 || seen[d.URI] {
				continue
			}
			seen[d.URI] = true
			out = append(out, Resolved{URI: d.URI, Digest: d.Digest})
		}
	}
	return out, nil
}

func (b *BuildKit) historyRecord(ctx context.Context, ref string) (*controlapi.BuildHistoryRecord, error) {
	cl, err := b.Client.ControlClient().ListenBuildHistory(ctx, &controlapi.BuildHistoryRequest{Ref: ref, EarlyExit: true})
	if err != nil {
		return nil, err
	}
	var rec *controlapi.BuildHistoryRecord
	for i := 0; i < 1000; i++ {
		ev, err := cl.Recv()
		if errors.Is(err, io.EOF) {
			return rec, nil
		}
		if err != nil {
			return nil, err
		}
		if ev.Record != nil && ev.Record.Ref == ref {
			rec = ev.Record
		}
	}
	return rec, nil
}

func (b *BuildKit) readBlob(ctx context.Context, digest string) ([]byte, error) {
	rc, err := b.Client.ContentClient().Read(ctx, &contentapi.ReadContentRequest{Digest: digest})
	if err != nil {
		return nil, err
	}
	var out []byte
	for {
		resp, err := rc.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(out)+len(resp.Data) > maxProvenance {
			return nil, errors.New("the build's provenance is larger than 16 MiB")
		}
		out = append(out, resp.Data...)
	}
}
