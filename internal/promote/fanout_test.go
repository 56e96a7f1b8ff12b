package promote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-build/hoist/internal/harness"
	"github.com/hoist-build/hoist/internal/registry"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// proxied puts a handler in front of a real registry: before sees every
// request first and answers it itself by returning true.
func proxied(t *testing.T, reg *harness.Registry, before func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	u, _ := url.Parse(reg.URL())
	p := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if before(w, r) {
			return
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// has asks the registry, over plain HTTP, whether repo holds the blob.
func has(t *testing.T, reg *harness.Registry, repo, digest string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, reg.URL()+"/v2/"+repo+"/blobs/"+digest, nil)
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Each blob of the source image is read once from the source and lands
// in every destination; a destination that refuses uploads and one that
// stalls are dropped from the stream (reported, left to the push) while
// the others complete; a source that cannot serve a blob fails Send.
func TestSend(t *testing.T) {
	f := harness.Inputs(t)
	var mu sync.Mutex
	reads := map[string]int{}
	failSource := false
	src := proxied(t, f.Registry, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			mu.Lock()
			defer mu.Unlock()
			if failSource {
				http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"gone"}]}`, http.StatusNotFound)
				return true
			}
			reads[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
		}
		return false
	})
	base, err := name.ParseReference(f.Base)
	if err != nil {
		t.Fatal(err)
	}
	srcRepo, err := name.NewRepository(src+"/"+base.Context().RepositoryStr(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(srcRepo.Tag(base.Identifier()))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blobsOf(img)
	if err != nil || len(blobs) < 2 {
		t.Fatalf("the source's blobs: %v %v", blobs, err)
	}
	good := []*harness.Registry{harness.StartRegistry(t, harness.RegistryOptions{}), harness.StartRegistry(t, harness.RegistryOptions{})}
	refusing := harness.StartRegistry(t, harness.RegistryOptions{})
	stalling := harness.StartRegistry(t, harness.RegistryOptions{})
	isUpload := func(r *http.Request) bool {
		return (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/")
	}
	refusingHost := proxied(t, refusing, func(w http.ResponseWriter, r *http.Request) bool {
		if isUpload(r) {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"no uploads today"}]}`, http.StatusForbidden)
			return true
		}
		return false
	})
	// The stalled handler reads nothing, so the server never sees its
	// client go: it ends with the test (before its server closes).
	stop := make(chan struct{})
	stallingHost := proxied(t, stalling, func(w http.ResponseWriter, r *http.Request) bool {
		if isUpload(r) {
			select { // reads nothing, answers nothing
			case <-r.Context().Done():
			case <-stop:
			case <-time.After(time.Minute):
			}
			return true
		}
		return false
	})
	t.Cleanup(func() { close(stop) })
	defer func(d time.Duration) { stallWait = d }(stallWait)
	stallWait = time.Second
	repo := func(host string) name.Repository {
		r, err := name.NewRepository(host+"/prod/app", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	dsts := []name.Repository{repo(good[0].Host), repo(refusingHost), repo(stallingHost), repo(good[1].Host)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// hoist's registry transport, whose timeout bounds a connection that
	// makes no progress.
	tr, err := registry.NewTransport(registry.TransportOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	opts := registry.Access{Transport: tr}.Options(ctx)
	start := time.Now()
	sp, err := Send(ctx, srcRepo, img, dsts, 4, opts)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("Send took %s with a stalled destination, bounded by %s a blob", took, stallWait)
	}
	mu.Lock()
	for _, b := range blobs {
		if reads[b.Digest.String()] != 1 {
			t.Errorf("blob %s was read %d times from the source, want once", b.Digest, reads[b.Digest.String()])
		}
	}
	mu.Unlock()
	for _, g := range good {
		for _, b := range blobs {
			if !has(t, g, "prod/app", b.Digest.String()) {
				t.Errorf("%s lacks blob %s", g.Host, b.Digest)
			}
		}
	}
	if sp.Blobs != len(blobs) || len(sp.Failed) != 2 || sp.Failed[repo(refusingHost).Name()] == nil || sp.Failed[repo(stallingHost).Name()] == nil {
		t.Errorf("Send reports %+v, want %d blobs read and the refusing and stalling destinations failed", sp, len(blobs))
	}

	// Again: every good destination has every blob; nothing is read.
	clear(reads)
	sp, err = Send(ctx, srcRepo, img, dsts[:1], 4, opts)
	if err != nil || sp.Blobs != 0 || sp.Present != len(blobs) {
		t.Errorf("Send to a destination holding everything: %+v, %v", sp, err)
	}

	// A source that cannot serve a blob: Send names each destination
	// (their pushes read it again) and does not fail.
	mu.Lock()
	failSource = true
	mu.Unlock()
	fresh := harness.StartRegistry(t, harness.RegistryOptions{})
	sp, err = Send(ctx, srcRepo, img, []name.Repository{repo(fresh.Host)}, 4, opts)
	if err != nil || sp.Failed[repo(fresh.Host).Name()] == nil {
		t.Errorf("Send from a source that lost its blobs: %+v, %v; want the destination reported failed", sp, err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("the test's minute ran out")
	}
}
