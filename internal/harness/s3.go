package harness

import (
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// S3 is a real S3 server on a loopback port: versitygw (pinned in
// tools/versitygw, built into bin/ by scripts/setup.sh) serving a
// directory, with one bucket and one root key pair, over plain HTTP.
type S3 struct {
	// Endpoint is http://127.0.0.1:PORT; addressed path-style.
	Endpoint             string
	AccessKey, SecretKey string
	Bucket, Region       string
	// Dir holds the buckets, one directory each.
	Dir string
}

// StartS3 starts an S3 server with the bucket "cache"; it stops when the
// test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := Tool(t, "versitygw")
	dir := t.TempDir()
	s := &S3{AccessKey: "AKIAHOIST" + randomHex(6), SecretKey: "s3-" + randomHex(16), Bucket: "cache", Region: "us-east-1", Dir: filepath.Join(dir, "root")}
	if err := os.MkdirAll(filepath.Join(s.Dir, s.Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		s.Endpoint = "http://" + addr
		p, err := startProcess(filepath.Join(dir, fmt.Sprintf("versitygw-%d.log", attempt)), bin,
			"--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region, "--port", addr, "posix", s.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if waitFor(10*time.Second, func() bool { return p.exited() || s.answers() }) && !p.exited() {
			time.Sleep(100 * time.Millisecond)
			if !p.exited() {
				t.Cleanup(func() { p.stop(5 * time.Second) })
				return s
			}
		}
		p.stop(time.Second)
		lastErr = p.logTail(4000)
	}
	t.Fatalf("versitygw did not start: %s", lastErr)
	return nil
}

// answers reports whether the server answers HTTP (an anonymous request
// is refused, with an S3 error).
func (s *S3) answers() bool {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(s.Endpoint + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// Objects lists the objects of the bucket (paths under it).
func (s *S3) Objects(t testing.TB) []string {
	t.Helper()
	var out []string
	root := filepath.Join(s.Dir, s.Bucket)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
