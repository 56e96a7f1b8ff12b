package publish

import (
	"context"
	"sync"
	"testing"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/progress"
)

// A push reports what it does as events: every blob uploaded to the first
// repository, mounted into a second of the same registry from the first,
// found already there when pushed again, and a manifest written per tag.
func TestPushReportsEvents(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	img := open(t, f.DockerSave)
	var mu sync.Mutex
	var got []progress.PushEvent
	o := options(t)
	o.Events = func(ev progress.PushEvent) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}
	count := func(repo string, what progress.PushWhat) (n int, from string) {
		for _, ev := range got {
			if ev.Repo == repo && ev.What == what {
				n++
				from = ev.From
				if what != progress.ManifestWritten && ev.Size <= 0 {
					t.Errorf("event %+v has no size", ev)
				}
			}
		}
		return n, from
	}
	res := Push(context.Background(), img.Artifact, tags(t, reg.Host+"/one/app:1", reg.Host+"/two/app:1"), o)
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Ref, r.Err)
		}
	}
	if n, _ := count(reg.Host+"/one/app", progress.BlobUploaded); n == 0 {
		t.Errorf("no blob uploaded to the first repository: %+v", got)
	}
	if n, from := count(reg.Host+"/two/app", progress.BlobMounted); n == 0 || from != "one/app" {
		t.Errorf("blobs mounted into the second repository: %d, from %q; want some, from one/app: %+v", n, from, got)
	}
	for _, repo := range []string{"one/app", "two/app"} {
		if n, _ := count(reg.Host+"/"+repo, progress.ManifestWritten); n != 1 {
			t.Errorf("%s: %d manifests written, want 1: %+v", repo, n, got)
		}
	}
	got = nil
	Push(context.Background(), img.Artifact, tags(t, reg.Host+"/one/app:2"), o)
	if n, _ := count(reg.Host+"/one/app", progress.BlobUploaded); n != 0 {
		t.Errorf("a second push uploaded %d blobs again", n)
	}
	if n, _ := count(reg.Host+"/one/app", progress.BlobExists); n == 0 {
		t.Errorf("a second push found no blob already there: %+v", got)
	}
}
