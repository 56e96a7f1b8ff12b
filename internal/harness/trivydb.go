package harness

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/bucket"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	bolt "go.etcd.io/bbolt"
)

// Advisory is one advisory of a test vulnerability database, in Trivy's
// own terms: Alpine or Debian OS packages, or Go modules.
type Advisory struct {
	// Ecosystem is "alpine 3.19", "debian 12" or "go".
	Ecosystem string
	Package   string
	ID        string
	Severity  string // LOW, MEDIUM, HIGH, CRITICAL
	// Fixed is the first fixed version; "" for an advisory with no fix.
	Fixed string
	// Vulnerable is a Go advisory's version range ("< 0.7.1").
	Vulnerable []string
}

// TrivyDB describes a database written by WriteTrivyDB.
type TrivyDB struct {
	// Dir holds trivy.db and metadata.json (a Trivy cache's db directory).
	Dir string
	// Tarball is db.tar.gz, the layer of the OCI artifact Trivy downloads.
	Tarball string
}

// trivyDBMu serialises trivy-db's package-global database handle.
var trivyDBMu sync.Mutex

// WriteTrivyDB writes a vulnerability database in Trivy's format (schema
// version, buckets, data sources, vulnerability details), with Trivy's own
// database package, into dir: dir/trivy.db and dir/metadata.json, and
// their db.tar.gz beside them. updated and next are the metadata's
// UpdatedAt and NextUpdate; schema is its Version (trivydb.SchemaVersion
// for a good one).
func WriteTrivyDB(t testing.TB, dir string, advs []Advisory, updated, next time.Time, schema int) *TrivyDB {
	t.Helper()
	d, err := BuildTrivyDB(dir, advs, updated, next, schema)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// BuildTrivyDB is WriteTrivyDB for callers without a test (the
// benchmarks).
func BuildTrivyDB(dir string, advs []Advisory, updated, next time.Time, schema int) (*TrivyDB, error) {
	trivyDBMu.Lock()
	defer trivyDBMu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := trivydb.Init(dir); err != nil {
		return nil, fmt.Errorf("trivy-db init: %w", err)
	}
	dbc := trivydb.Config{}
	err := dbc.BatchUpdate(func(tx *bolt.Tx) error {
		for _, a := range advs {
			bkt, src, err := advisoryBucket(a.Ecosystem)
			if err != nil {
				return err
			}
			if err := dbc.PutDataSource(tx, bkt, src); err != nil {
				return err
			}
			adv := dbtypes.Advisory{FixedVersion: a.Fixed, VulnerableVersions: a.Vulnerable}
			if len(a.Vulnerable) > 0 && a.Fixed != "" {
				adv.FixedVersion, adv.PatchedVersions = "", []string{a.Fixed}
			}
			if err := dbc.PutAdvisory(tx, []string{bkt, a.Package}, a.ID, adv); err != nil {
				return err
			}
			sev, err := dbtypes.NewSeverity(a.Severity)
			if err != nil {
				return err
			}
			v := dbtypes.Vulnerability{
				Title:          a.ID + " in " + a.Package + " (hoist test advisory)",
				Severity:       a.Severity,
				VendorSeverity: dbtypes.VendorSeverity{src.ID: sev},
			}
			if err := dbc.PutVulnerability(tx, a.ID, v); err != nil {
				return err
			}
			if err := dbc.PutVulnerabilityID(tx, a.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := trivydb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("trivy-db write: %w", err)
	}
	meta := metadata.Metadata{Version: schema, UpdatedAt: updated.UTC(), NextUpdate: next.UTC()}
	if err := metadata.NewClient(dir).Update(meta); err != nil {
		return nil, err
	}
	d := &TrivyDB{Dir: dir, Tarball: filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".tar.gz")}
	if err := tarGz(d.Tarball, dir, "trivy.db", "metadata.json"); err != nil {
		return nil, err
	}
	return d, nil
}

// advisoryBucket is the bucket Trivy looks an ecosystem's advisories up
// in, and its data source.
func advisoryBucket(eco string) (string, dbtypes.DataSource, error) {
	var family, version string
	fmt.Sscanf(eco, "%s %s", &family, &version)
	switch family {
	case "alpine":
		return bucket.NewAlpine(version).Name(), dbtypes.DataSource{ID: "alpine", Name: "Alpine Secdb", URL: "https://secdb.alpinelinux.org/"}, nil
	case "debian":
		return bucket.NewDebian(version).Name(), dbtypes.DataSource{ID: "debian", Name: "Debian Security Tracker", URL: "https://salsa.debian.org/security-tracker-team/security-tracker"}, nil
	case "go":
		src := dbtypes.DataSource{ID: "ghsa", Name: "GitHub Security Advisory Go", URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Ago"}
		b, err := bucket.NewGo(src)
		if err != nil {
			return "", src, err
		}
		return b.Name(), src, nil
	}
	return "", dbtypes.DataSource{}, fmt.Errorf("test advisory ecosystem %q: want alpine X.Y, debian N or go", eco)
}

func tarGz(dst, dir string, names ...string) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime()})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

// TrivyDBMediaType is the media type of the layer of Trivy's database
// artifact.
const TrivyDBMediaType = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"

// PushTrivyDB publishes the database as the OCI artifact Trivy downloads
// with --db-repository, as air-gapped users mirror it: an OCI manifest of
// one layer, db.tar.gz, of Trivy's database media type with its title
// annotation, and Trivy's config media type; to repo:2 on the registry
// (with the registry's login when it has one; plain HTTP, or TLS trusting
// the registry's CA). It returns the reference.
func PushTrivyDB(t testing.TB, reg *Registry, repo string, d *TrivyDB) string {
	t.Helper()
	ref, err := name.ParseReference(reg.Host + "/" + repo + ":2")
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromFile(d.Tarball, tarball.WithMediaType(TrivyDBMediaType))
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.aquasec.trivy.config.v1+json")
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: TrivyDBMediaType,
		Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithTransport(reg.Client().Transport)}
	if reg.User != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password}))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push trivy db to %s: %v", ref, err)
	}
	return ref.String()
}
