package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoist-build/hoist/internal/harness"
)

// Every bad input fails before any tag is written, exits non-zero and says
// what is wrong and what to do.
func TestBadInputsFailClearlyAndPushNothing(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	appRepo := strings.TrimSuffix(f.App, ":1")
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dir := t.TempDir()

	truncated := filepath.Join(dir, "truncated.tar")
	b, err := os.ReadFile(f.DockerSave)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(truncated, b[:len(b)/2], 0o644)
	notTar := filepath.Join(dir, "notes.txt")
	os.WriteFile(notTar, []byte(strings.Repeat("not an image\n", 100)), 0o644)
	tampered := filepath.Join(dir, "tampered.tar")
	tamperDockerArchive(t, f.DockerSave, tampered)
	missing := filepath.Join(dir, "nope", "image.tar")

	cases := []struct {
		name string
		env  map[string]string
		code int
		want []string
	}{
		{"no-push and push-only", map[string]string{"PLUGIN_NO_PUSH": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave}, ExitSettings,
			[]string{"inputs no-push and push-only cannot be used together", "PLUGIN_NO_PUSH=false"}},
		{"no source and no image of that name", map[string]string{"DOCKER_HOST": f.Docker.Host, "PLUGIN_TAGS": "never-built"}, ExitSource,
			[]string{"nothing to push", "PLUGIN_SOURCE_TAR_PATH", "has no image " + reg.Host + "/bad/app:never-built"}},
		{"missing tarball", map[string]string{"PLUGIN_SOURCE_TAR_PATH": missing}, ExitSource,
			[]string{"image tarball does not exist at path: " + missing}},
		{"directory that is not a layout", map[string]string{"PLUGIN_SOURCE_TAR_PATH": dir}, ExitSource,
			[]string{"is a directory but not an OCI image layout"}},
		{"truncated tarball", map[string]string{"PLUGIN_SOURCE_TAR_PATH": truncated}, ExitSource,
			[]string{"truncated tarball"}},
		{"tampered layer", map[string]string{"PLUGIN_SOURCE_TAR_PATH": tampered}, ExitSource,
			[]string{"content does not match its digest", "the file was altered or damaged"}},
		{"not a tarball", map[string]string{"PLUGIN_SOURCE_TAR_PATH": notTar}, ExitSource,
			[]string{"is not a tar archive"}},
		{"two images, none picked", map[string]string{"PLUGIN_SOURCE_TAR_PATH": f.DockerSaveTwo}, ExitSource,
			[]string{"holds 2 images", "PLUGIN_SOURCE_IMAGE", f.App, f.Other}},
		{"picked image not in the tarball", map[string]string{"PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_SOURCE_IMAGE": f.App + "-buildx"}, ExitSource,
			[]string{`does not hold "` + f.App + `-buildx"`, f.App}},
		{"near-miss tag in the daemon", map[string]string{"DOCKER_HOST": f.Docker.Host, "PLUGIN_SOURCE_IMAGE": appRepo + ":2", "PLUGIN_REGISTRY_TIMEOUT": "3s"}, ExitSource,
			[]string{"found nowhere", "has no image " + appRepo + ":2", "it has " + f.App + ", " + f.Other, "registry index.docker.io"}},
		{"invalid tag", map[string]string{"PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_TAGS": "ok,bad tag"}, ExitSettings,
			[]string{`tag "bad tag"`}},
		{"tag the registry refuses", map[string]string{"PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_TAGS": "ok,-rm"}, ExitSettings,
			[]string{`tag "-rm"`, "does not start with '.' or '-'"}},
		{"repository leaving the API", map[string]string{"PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_DESTINATIONS": reg.Host + "/bad/../../v2/x:1"}, ExitSettings,
			[]string{`repository path component ".."`}},
		{"invalid bool", map[string]string{"PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_SKIP_TLS_VERIFY": "yes"}, ExitSettings,
			[]string{`PLUGIN_SKIP_TLS_VERIFY="yes": want true or false`}},
		{"config neither JSON nor file", map[string]string{"PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_CONFIG": "/no/such/config.json"}, ExitSettings,
			[]string{"PLUGIN_CONFIG must be either valid JSON content (or its base64) or a path to an existing config file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_REPO": reg.Host + "/bad/app"}
			for k, v := range c.env {
				env[k] = v
			}
			r := hoist(t, env)
			if r.code != c.code {
				t.Errorf("exit %d, want %d", r.code, c.code)
			}
			assertContains(t, r, c.want...)
			if tags := tagsOf(t, reg, "bad/app"); len(tags) > 0 {
				t.Errorf("tags were written: %v", tags)
			}
		})
	}

	t.Run("no repository", func(t *testing.T) {
		r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave})
		if r.code != ExitSettings {
			t.Errorf("exit %d", r.code)
		}
		assertContains(t, r, "repository name to publish image must be specified")
	})
}

// A layout whose blob was altered fails while streaming it, or while
// checking it, before the manifest (and so the tag) is written.
func TestTamperedLayoutBlobIsNeverTagged(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	layout := filepath.Join(t.TempDir(), "layout")
	harness.Run(t, nil, "cp", "-r", f.SkopeoLayout, layout)
	// Alter the largest blob: a layer.
	var biggest string
	var size int64
	filepath.Walk(filepath.Join(layout, "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	flipByte(t, biggest, size/2)
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": layout, "PLUGIN_DESTINATIONS": reg.Host + "/t/app:1"})
	if r.code != ExitSource {
		t.Errorf("exit %d:\n%s", r.code, r)
	}
	// hoist's own check (the layer does not decompress) or the
	// registry's (the blob is not its digest), whichever ends first.
	assertContains(t, r, "the file was altered or damaged", "FAILED")
	if tags := tagsOf(t, reg, "t/app"); len(tags) > 0 {
		t.Errorf("tags were written: %v", tags)
	}
}

// One destination fails (wrong password on one, nobody listening on
// another); the others finish, the summary names each failure, the exit code
// is non-zero, and the password is never printed, not even with debug on.
func TestOneFailedDestinationDoesNotStopTheOthers(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	good := harness.StartRegistry(t, harness.RegistryOptions{})
	locked := harness.StartRegistry(t, harness.RegistryOptions{Auth: true})
	closed := closedPort
	wrong := "wrong-" + locked.Password
	start := time.Now()
	r := hoist(t, map[string]string{
		"PLUGIN_PUSH_ONLY":       "true",
		"PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
		"PLUGIN_DESTINATIONS":    good.Host + "/ok/app:1," + locked.Host + "/app:1,127.0.0.1:" + itoa(closed) + "/app:1",
		"PLUGIN_REGISTRY":        locked.Host,
		"PLUGIN_USERNAME":        locked.User,
		"PLUGIN_PASSWORD":        wrong,
		"PLUGIN_DEBUG":           "true",
	})
	if r.code != ExitPush {
		t.Errorf("exit %d, want %d", r.code, ExitPush)
	}
	if time.Since(start) > 60*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	assertContains(t, r,
		"registry "+locked.Host+" refused access (401 Unauthorized): check the credentials for "+locked.Host,
		"cannot reach registry 127.0.0.1:"+itoa(closed),
		"2 of 3 destination(s) failed",
		"debug: GET "+locked.Host+"/v2/") // the debug lines searched below are there
	assertNotContains(t, r, wrong, b64(locked.User+":"+wrong))
	assertSummary(t, r, good.Host+"/ok/app:1", digestOf(t, good, good.Host+"/ok/app:1"))
	if tags := tagsOf(t, good, "ok/app"); len(tags) != 1 {
		t.Errorf("good registry tags: %v", tags)
	}
	if got := f.Docker.RunImage(t, good.Host+"/ok/app:1", "cat", "/built.txt"); got != f.Built {
		t.Errorf("pushed image prints %q", got)
	}
}

// A registry that accepts connections but never answers is given up on
// within the configured timeout.
func TestUnresponsiveRegistryTimesOut(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	silent := harness.SilentServer(t)
	start := time.Now()
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout,
		"PLUGIN_DESTINATIONS": silent + "/app:1", "PLUGIN_REGISTRY_TIMEOUT": "1s", "PLUGIN_PUSH_RETRY": "1"})
	if r.code != ExitPush {
		t.Errorf("exit %d:\n%s", r.code, r)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("gave up after %s", took)
	}
	assertContains(t, r, "did not answer in time", "PLUGIN_REGISTRY_TIMEOUT")
}

// closedPort is a loopback port nothing listens on: a privileged port no
// test starts a server on (a port taken from FreePort could be given to a
// registry of a parallel test meanwhile).
const closedPort = 1

// faultProxy stands in front of a real registry and answers the first
// `times` requests that match with `status`; a real registry cannot be made
// to fail on purpose. It counts the faults it injected (faults), and a
// test that uses one fails when none was injected: a test that passes
// because no fault fired proves nothing. Each test also asserts the count
// it expects.
type faultProxy struct {
	match  func(*http.Request) bool
	status int
	times  int32
	hits   atomic.Int32
	faults atomic.Int32
	// busy counts the requests being answered.
	busy atomic.Int32
	// retryAfter is sent as Retry-After with each fault.
	retryAfter string
	mu         sync.Mutex
	at         []time.Time // when each matching request arrived
}

// inject takes one of the faults left, if any: concurrent requests never
// get more than times between them.
func (fp *faultProxy) inject() bool {
	for {
		n := fp.faults.Load()
		if n >= fp.times {
			return false
		}
		if fp.faults.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// assertFaults checks that exactly want faults were injected, once the
// requests under way are answered (a request the client gave up may
// still be held).
func (fp *faultProxy) assertFaults(t *testing.T, want int32) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); fp.busy.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := fp.faults.Load(); got != want {
		t.Errorf("the fault proxy injected %d faults, want %d (%d matching requests)", got, want, fp.hits.Load())
	}
}

func startFaultProxy(t *testing.T, reg *harness.Registry, fp *faultProxy) string {
	target, _ := url.Parse(reg.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	t.Cleanup(func() {
		if fp.faults.Load() == 0 {
			t.Errorf("the fault proxy injected no fault (%d matching requests): the test proved nothing", fp.hits.Load())
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fp.busy.Add(1)
		defer fp.busy.Add(-1)
		if fp.match(req) {
			fp.hits.Add(1)
			fp.mu.Lock()
			fp.at = append(fp.at, time.Now())
			fp.mu.Unlock()
			if fp.inject() {
				io.Copy(io.Discard, req.Body)
				code := "UNAVAILABLE"
				switch {
				case fp.status == http.StatusTooManyRequests:
					code = "TOOMANYREQUESTS"
				case fp.status < 500:
					code = "MANIFEST_INVALID"
				}
				if fp.retryAfter != "" {
					w.Header().Set("Retry-After", fp.retryAfter)
				}
				http.Error(w, `{"errors":[{"code":"`+code+`","message":"injected fault"}]}`, fp.status)
				return
			}
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func isManifestPut(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
}

func isBlobCommit(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
}

// 5xx and 429 are retried with backoff; other 4xx are not.
func TestRetries(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	for _, c := range []struct {
		name     string
		match    func(*http.Request) bool
		status   int
		times    int32
		code     int
		wantHits int32
		// wantFaults is how many faults the proxy must have injected.
		wantFaults int32
	}{
		{"503 on manifest put, then ok", isManifestPut, http.StatusServiceUnavailable, 2, 0, 3, 2},
		{"429 on manifest put, then ok", isManifestPut, http.StatusTooManyRequests, 1, 0, 2, 1},
		{"502 on blob commits, then ok", isBlobCommit, http.StatusBadGateway, 2, 0, -1, 2},
		{"400 on manifest put is final", isManifestPut, http.StatusBadRequest, 1, ExitPush, 1, 1},
		{"503 more often than retries allow", isManifestPut, http.StatusServiceUnavailable, 10, ExitPush, 3, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reg := harness.StartRegistry(t, harness.RegistryOptions{})
			fp := &faultProxy{match: c.match, status: c.status, times: c.times}
			host := startFaultProxy(t, reg, fp)
			r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave,
				"PLUGIN_DESTINATIONS": host + "/r/app:1", "PLUGIN_PUSH_RETRY": "2"})
			if r.code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", r.code, c.code, r)
			}
			if c.wantHits >= 0 && fp.hits.Load() != c.wantHits {
				t.Errorf("%d matching requests, want %d", fp.hits.Load(), c.wantHits)
			}
			fp.assertFaults(t, c.wantFaults)
			if c.code == 0 && len(tagsOf(t, reg, "r/app")) != 1 {
				t.Errorf("not pushed")
			}
			if c.code != 0 && len(tagsOf(t, reg, "r/app")) != 0 {
				t.Errorf("tag written despite the failure")
			}
		})
	}
}

// A registry's Retry-After is honoured: the retry comes no sooner than it
// asked (a lower bound only: nothing here waits on the clock to order
// events).
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	fp := &faultProxy{match: isManifestPut, status: http.StatusTooManyRequests, times: 1, retryAfter: "2"}
	host := startFaultProxy(t, reg, fp)
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_DESTINATIONS": host + "/ra/app:1"})
	fp.assertFaults(t, 1)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if len(fp.at) != 2 {
		t.Fatalf("%d manifest PUTs, want 2", len(fp.at))
	}
	if gap := fp.at[1].Sub(fp.at[0]); gap < 2*time.Second {
		t.Errorf("retried after %s, the registry asked for 2s", gap)
	}
}

// tamperDockerArchive copies a docker-archive, changing one byte in the
// middle of its largest layer.
func tamperDockerArchive(t *testing.T, src, dst string) {
	t.Helper()
	var target string
	var size int
	rewriteTar(t, src, filepath.Join(t.TempDir(), "scan.tar"), func(name string, b []byte) (string, []byte) {
		if strings.HasSuffix(name, "layer.tar") && len(b) > size {
			target, size = name, len(b)
		}
		return name, b
	})
	rewriteTar(t, src, dst, func(name string, b []byte) (string, []byte) {
		if name == target {
			b[len(b)/2] ^= 0xff
		}
		return name, b
	})
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	b := make([]byte, 1)
	fh.ReadAt(b, at)
	b[0] ^= 0xff
	fh.WriteAt(b, at)
}

// With PLUGIN_FAIL_FAST the first failure cancels the other destinations:
// the slow one never gets its tag. The slow registry holds its manifest
// PUT until the client gives it up (a gate, not a sleep: it can only end
// by the cancel); the other destination refuses its manifest (400, final)
// only once the slow one is held, so the failure comes while the slow
// push is under way, and both faults are counted. Without fail-fast the
// slow one is not held and finishes.
func TestFailFastCancelsTheOthers(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	var hold atomic.Bool
	hold.Store(true)
	entered := make(chan struct{})
	var enter sync.Once
	held := &faultProxy{status: http.StatusServiceUnavailable, times: 1000, match: func(r *http.Request) bool {
		if !isManifestPut(r) || !hold.Load() {
			return false
		}
		// The server notices the client going away once the body is read.
		io.Copy(io.Discard, r.Body)
		enter.Do(func() { close(entered) })
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute): // a bound, should the cancel never come
		}
		return true
	}}
	slow := startFaultProxy(t, reg, held)
	refusing := &faultProxy{status: http.StatusBadRequest, times: 1000, match: func(r *http.Request) bool {
		if !isManifestPut(r) {
			return false
		}
		if hold.Load() {
			select {
			case <-entered:
			case <-time.After(time.Minute): // a bound, should the slow one never be held
			}
		}
		return true
	}}
	failing := startFaultProxy(t, harness.StartRegistry(t, harness.RegistryOptions{}), refusing)
	dests := slow + "/slow/app:1," + failing + "/app:1"
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": dests, "PLUGIN_FAIL_FAST": "true"})
	if r.code != ExitPush {
		t.Errorf("exit %d:\n%s", r.code, r)
	}
	assertContains(t, r, "2 of 2 destination(s) failed", "cancelled")
	if tags := tagsOf(t, reg, "slow/app"); len(tags) != 0 {
		t.Errorf("the slow destination was tagged: %v", tags)
	}
	// The held manifest PUT was cancelled, not retried; the refused one
	// is final.
	held.assertFaults(t, 1)
	refusing.assertFaults(t, 1)
	// Without it the slow one finishes.
	hold.Store(false)
	r = hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.SkopeoLayout, "PLUGIN_DESTINATIONS": dests})
	assertContains(t, r, "1 of 2 destination(s) failed")
	if tags := tagsOf(t, reg, "slow/app"); len(tags) != 1 {
		t.Errorf("the slow destination was not tagged: %v", tags)
	}
	held.assertFaults(t, 1)
	refusing.assertFaults(t, 2)
}

// A registry that stops sending a blob midway: the transfer is bounded by
// its progress (PLUGIN_REGISTRY_TIMEOUT with no byte moved), not left to
// hang, and nothing is tagged at the destination.
func TestStalledTransferFails(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	src := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_DESTINATIONS": src.Host + "/stall/app:1"})
	target, _ := url.Parse(src.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	var stalled atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			rp.ServeHTTP(w, r)
			return
		}
		// Half of the blob, then nothing until the client goes away.
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) < 1024 {
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		stalled.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	}))
	t.Cleanup(proxy.Close)
	from := strings.TrimPrefix(proxy.URL, "http://") + "/stall/app:1"
	dst := harness.StartRegistry(t, harness.RegistryOptions{})
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": from, "PLUGIN_DESTINATIONS": dst.Host + "/stall/app:1",
		"PLUGIN_REGISTRY_TIMEOUT": "2s", "PLUGIN_PUSH_RETRY": "0"})
	if r.code == 0 || stalled.Load() == 0 {
		t.Fatalf("exit %d with %d stalled blobs:\n%s", r.code, stalled.Load(), r)
	}
	assertContains(t, r, "no byte came from", "for 2s (PLUGIN_REGISTRY_TIMEOUT)")
	if tags := tagsOf(t, dst, "stall/app"); len(tags) != 0 {
		t.Errorf("tagged despite the failure: %v", tags)
	}
}

// A source registry that answers 503: unavailable after the retries, not
// "not found".
func TestUnavailableSourceIsNotNotFound(t *testing.T) {
	t.Parallel()
	f := harness.Inputs(t)
	src := harness.StartRegistry(t, harness.RegistryOptions{})
	mustPush(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_TAR_PATH": f.DockerSave, "PLUGIN_DESTINATIONS": src.Host + "/busy/app:1"})
	fp := &faultProxy{match: func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }, status: http.StatusServiceUnavailable, times: 1000}
	host := startFaultProxy(t, src, fp)
	dst := harness.StartRegistry(t, harness.RegistryOptions{})
	r := hoist(t, map[string]string{"PLUGIN_PUSH_ONLY": "true", "PLUGIN_SOURCE_IMAGE": host + "/busy/app:1", "PLUGIN_DESTINATIONS": dst.Host + "/busy/app:1"})
	if r.code != ExitSource || fp.hits.Load() < 2 {
		t.Errorf("exit %d after %d requests, want %d after retries:\n%s", r.code, fp.hits.Load(), ExitSource, r)
	}
	// Every manifest request was answered with the fault.
	fp.assertFaults(t, fp.hits.Load())
	assertContains(t, r, "registry "+host+" is unavailable (after retries)")
	assertNotContains(t, r, "not found")
}
