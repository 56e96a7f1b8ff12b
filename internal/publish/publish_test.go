package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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
	"github.com/hoist-build/hoist/internal/progress"
	"github.com/hoist-build/hoist/internal/registry"
	"github.com/hoist-build/hoist/internal/source"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

func open(t *testing.T, path string) *source.Image {
	t.Helper()
	img, err := source.Open(context.Background(), source.Request{TarPath: path, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func tags(t *testing.T, refs ...string) []name.Tag {
	t.Helper()
	var out []name.Tag
	for _, r := range refs {
		tg, err := name.NewTag(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tg)
	}
	return out
}

func options(t *testing.T) Options {
	tr, err := registry.NewTransport(registry.TransportOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return Options{Access: registry.Access{Transport: tr}, Jobs: 4, Retries: 1, Progress: progress.New(&strings.Builder{}, progress.Quiet)}
}

// skopeoDigest reads a reference's manifest digest with skopeo, a client
// that is not hoist's.
func skopeoDigest(t *testing.T, ref string) string {
	t.Helper()
	out := harness.Run(t, nil, "skopeo", "inspect", "--tls-verify=false", "docker://"+ref)
	var v struct{ Digest string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
	}
	return v.Digest
}

// One image, from a layout skopeo wrote, to two registries, two tags and
// two repositories of one registry (the second mounts the first's blobs):
// every destination holds the image, as skopeo reads it back.
func TestPushEverywhere(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	a := harness.StartRegistry(t, harness.RegistryOptions{})
	b := harness.StartRegistry(t, harness.RegistryOptions{})
	img := open(t, f.SkopeoLayout)
	refs := []string{a.Host + "/one/app:1", a.Host + "/one/app:latest", a.Host + "/two/app:1", b.Host + "/one/app:1"}
	res := Push(context.Background(), img.Artifact, tags(t, refs...), options(t))
	if len(res) != len(refs) {
		t.Fatalf("%d results for %d destinations", len(res), len(refs))
	}
	for i, r := range res {
		if r.Err != nil || r.Status != "pushed" || r.Ref != refs[i] {
			t.Errorf("result %d: %+v", i, r)
		}
		if got := skopeoDigest(t, refs[i]); got != img.Digest.String() || r.Digest != got {
			t.Errorf("%s holds %s; the source is %s, the result says %s", refs[i], got, img.Digest, r.Digest)
		}
	}
	// Pushed again: every tag is already there.
	for _, r := range Push(context.Background(), img.Artifact, tags(t, refs...), options(t)) {
		if r.Err != nil || r.Status != "up to date" {
			t.Errorf("re-push %s: %+v", r.Ref, r)
		}
	}
}

// A destination that cannot be reached fails on its own; the others are
// pushed. With fail-fast, the others are cancelled.
func TestOneDestinationFails(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	good := harness.StartRegistry(t, harness.RegistryOptions{})
	closed := harness.RefusedAddr(t)
	img := open(t, f.DockerSave)
	res := Push(context.Background(), img.Artifact, tags(t, good.Host+"/app:1", closed+"/app:1"), options(t))
	if res[0].Err != nil || skopeoDigest(t, good.Host+"/app:1") != img.Digest.String() {
		t.Errorf("the reachable destination: %+v", res[0])
	}
	if !errors.Is(res[1].Err, ErrPush) || !strings.Contains(res[1].Err.Error(), "cannot reach registry "+closed) {
		t.Errorf("the closed destination: %+v", res[1])
	}
}

// However many retries are asked for, each is made and no wait between
// them exceeds the cap (plus its 10% jitter).
func TestBackoffIsCapped(t *testing.T) {
	t.Parallel()
	for _, retries := range []int{0, 1, 3, 20, 100} {
		b := Backoff(retries)
		waits := 0
		for b.Steps > 1 {
			d := b.Step()
			waits++
			if d > RetryCap+RetryCap/10 {
				t.Errorf("%d retries: wait %d is %s", retries, waits, d)
			}
		}
		if waits != retries {
			t.Errorf("%d retries: %d waits", retries, waits)
		}
	}
}

// Cancelling a push ends it promptly even while go-containerregistry
// sleeps before a retry (a sleep no context interrupts): the destination
// is reported cancelled. The server answers every request 503 (a real
// registry cannot be made to); the wait before the retry is 30 s.
func TestCancelDoesNotWaitForARetrySleep(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	answered := make(chan struct{}, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		select {
		case answered <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	img := open(t, f.SkopeoLayout)
	o := options(t)
	o.backoff = &remote.Backoff{Duration: 30 * time.Second, Factor: 1, Steps: 3}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []Result)
	go func() { done <- Push(ctx, img.Artifact, tags(t, strings.TrimPrefix(srv.URL, "http://")+"/app:1"), o) }()
	<-answered
	cancel()
	start := time.Now()
	select {
	case res := <-done:
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("returned %s after the cancel", took)
		}
		if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "cancelled") {
			t.Errorf("result %+v", res[0])
		}
	case <-time.After(25 * time.Second):
		t.Fatal("Push still waits 25 s after the cancel")
	}
}

// A push whose TLS fails says to give the registry's CA only when the
// certificate did not verify (a registry whose CA hoist was not given),
// once; a server that does not speak TLS at all gets no such advice
// (no CA would mend it), though its error mentions TLS.
func TestPushTLSAdviceOnlyForCertificates(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	tlsReg := harness.StartRegistry(t, harness.RegistryOptions{TLS: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
			c.Close()
		}
	}()
	const advice = "give the registry's CA with PLUGIN_REGISTRY_CERTIFICATE"
	img := open(t, f.DockerSave)
	res := Push(context.Background(), img.Artifact, tags(t, tlsReg.Host+"/app:1", l.Addr().String()+"/app:1"), options(t))
	if e := res[0].Err; !errors.Is(e, ErrPush) || strings.Count(e.Error(), advice) != 1 || !strings.Contains(e.Error(), "x509: certificate signed by unknown authority") {
		t.Errorf("the registry with an unknown CA: %v, want the certificate error with the advice once", e)
	}
	if e := res[1].Err; !errors.Is(e, ErrPush) || !strings.Contains(e.Error(), "tls:") || strings.Contains(e.Error(), "PLUGIN_REGISTRY_CERTIFICATE") {
		t.Errorf("the server that does not speak TLS: %v, want its TLS error without the CA advice", e)
	}
}

// Many tags of one repository (a real registry, seen through a loopback
// proxy that counts): each is one manifest write, at most TagsAtOnce at
// once, then read back once every tag is written, so that the registry
// (distribution on a filesystem, which rewrites the manifest's revision
// link with each tag) never answers a read-back with 500; the registry is
// pinged once for the writes and once for the reads, not once per tag.
func TestManyTagsAreBounded(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	target, _ := url.Parse(reg.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var puts, most, pings, failed int
	var readBeforeAllWritten bool
	const n = 60
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isPut := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
		mu.Lock()
		switch {
		case r.URL.Path == "/v2/":
			pings++
		case isPut:
			puts++
			most = max(most, puts)
		}
		mu.Unlock()
		rec := &statusRecorder{ResponseWriter: w}
		proxy.ServeHTTP(rec, r)
		mu.Lock()
		defer mu.Unlock()
		if isPut {
			puts--
		}
		if rec.status >= 500 {
			failed++
		}
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") && rec.status == http.StatusOK && puts > 0 {
			readBeforeAllWritten = true
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img := open(t, f.SkopeoLayout)
	var refs []string
	for i := range n {
		refs = append(refs, fmt.Sprintf("%s/many/app:t%d", host, i))
	}
	for _, r := range Push(context.Background(), img.Artifact, tags(t, refs...), options(t)) {
		if r.Err != nil || r.Status != "pushed" {
			t.Errorf("%s: %+v", r.Ref, r)
		}
	}
	got := strings.Fields(reg.Crane(t, "ls", reg.Host+"/many/app"))
	if len(got) != n {
		t.Errorf("the registry lists %d tags, want %d: %v", len(got), n, got)
	}
	if most < 2 || most > TagsAtOnce {
		t.Errorf("%d manifest writes at once, want 2 to %d", most, TagsAtOnce)
	}
	if readBeforeAllWritten || failed > 0 || pings > 2 {
		t.Errorf("a tag read back while others were written: %t; %d answers of 5xx; %d pings", readBeforeAllWritten, failed, pings)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
