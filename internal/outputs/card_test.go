package outputs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hoist-build/hoist/internal/files"
)

// card is a card as Drone's runner uploads it.
type card struct {
	Schema string
	Data   struct {
		RepoTags       []string
		ParsedRepoTags []struct{ Tag string }
		RepoDigests    []string
		Size           int64
		SizeString     string
		Time           string
		URL            string
		Image, Digest  string
		Pushed         bool
		Scan           *CardScan
		Signed         []string
		Attested       []string
		Truncated      int
	} `json:"data"`
}

// fromLog extracts the card from a log as drone/runner-go's
// livelog/extractor does: the base64 between ESC]1338; and ESC]0m, at the
// start of a line.
func fromLog(t *testing.T, log string) card {
	t.Helper()
	m := regexp.MustCompile("(?m)^\x1b]1338;([A-Za-z0-9+/=]*)\x1b]0m$").FindAllStringSubmatch(log, -1)
	if len(m) != 1 {
		t.Fatalf("want one card frame in the log, found %d: %q", len(m), log)
	}
	b, err := base64.StdEncoding.DecodeString(m[0][1])
	if err != nil {
		t.Fatal(err)
	}
	var c card
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

var sample = Card{
	Image: "registry.example/team/app:1", Tags: []string{"registry.example/team/app:1", "registry.example/team/app:latest", "other.example/app:1"},
	Pushed: true, Digest: "sha256:" + strings.Repeat("ab", 32), Size: 14045949,
	Repositories: []string{"registry.example/team/app", "other.example/app"},
	Time:         time.Date(2026, 12, 5, 3, 30, 0, 0, time.UTC),
	Scan:         &CardScan{Passed: true, Verdict: "passed (0 findings)", Counts: map[string]int{"CRITICAL": 0}, Scanner: "trivy 0.74.0"},
	Signed:       []string{"other.example/app", "registry.example/team/app"}, Attested: []string{"cyclonedx"},
}

// The card's JSON has the drone.CardInput shape with drone-docker's
// template and the fields that template reads.
func TestCardFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "card.json")
	if err := WriteCard(files.Workspace(dir), path, nil, nil, sample); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c card
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if c.Schema != CardSchema {
		t.Errorf("schema %q", c.Schema)
	}
	d := c.Data
	if diff := cmp.Diff(sample.Tags, d.RepoTags); diff != "" {
		t.Errorf("RepoTags (-want +got):\n%s", diff)
	}
	if len(d.ParsedRepoTags) != 3 || d.ParsedRepoTags[2].Tag != "other.example/app:1" {
		t.Errorf("ParsedRepoTags %v", d.ParsedRepoTags)
	}
	want := []string{"registry.example/team/app@" + sample.Digest, "other.example/app@" + sample.Digest}
	if diff := cmp.Diff(want, d.RepoDigests); diff != "" {
		t.Errorf("RepoDigests (-want +got):\n%s", diff)
	}
	if d.Size != 14045949 || d.SizeString != "14.05MB" || d.Time != "2026-12-05T03:30:00Z" || d.Image != sample.Image || d.Digest != sample.Digest || !d.Pushed {
		t.Errorf("card data %+v", d)
	}
	if d.Scan == nil || !d.Scan.Passed || d.Scan.Scanner != "trivy 0.74.0" || len(d.Signed) != 2 || d.Attested[0] != "cyclonedx" {
		t.Errorf("scan and signatures: %+v", d)
	}
	// Nothing but the card is left beside it (written atomically).
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("beside the card: %v", ents)
	}
}

// /dev/stdout and /dev/stderr get the frame Drone's runner extracts from
// the log (its DRONE_CARD_PATH is /dev/stdout), on a line of its own.
func TestCardFramedInTheLog(t *testing.T) {
	for _, path := range []string{"/dev/stdout", "/dev/stderr"} {
		var stdout, stderr bytes.Buffer
		if err := WriteCard("", path, &stdout, &stderr, sample); err != nil {
			t.Fatal(err)
		}
		got, other := stdout.String(), stderr.String()
		if path == "/dev/stderr" {
			got, other = other, got
		}
		if other != "" {
			t.Errorf("%s: the other stream got %q", path, other)
		}
		if !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
			t.Errorf("%s: the frame is not one line: %q", path, got)
		}
		if c := fromLog(t, got); c.Schema != CardSchema || c.Data.Digest != sample.Digest {
			t.Errorf("%s: card %+v", path, c)
		}
	}
}

// A build-only card: the names built, the bare digest (no repository holds
// it), no scan or signature.
func TestCardOfABuild(t *testing.T) {
	var out bytes.Buffer
	c := Card{Image: "team/app:1", Tags: []string{"team/app:1"}, Digest: sample.Digest}
	if err := WriteCard("", "/dev/stdout", &out, nil, c); err != nil {
		t.Fatal(err)
	}
	d := fromLog(t, out.String()).Data
	if d.Pushed || len(d.RepoDigests) != 1 || d.RepoDigests[0] != sample.Digest || d.Scan != nil || d.Signed != nil || d.SizeString != "" {
		t.Errorf("card data %+v", d)
	}
}

// However many tags, the card stays within its bound and says how many
// it left out.
func TestCardBounded(t *testing.T) {
	c := sample
	c.Tags = nil
	for i := range 5000 {
		c.Tags = append(c.Tags, fmt.Sprintf("registry.example/%s/app:%d", strings.Repeat("x", 200), i))
	}
	b, err := MarshalCard(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxCardBytes {
		t.Errorf("card of %d bytes", len(b))
	}
	var got card
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Data.Truncated < 5000-maxCardList || len(got.Data.RepoTags) == 0 || got.Data.RepoTags[0] != c.Tags[0] {
		t.Errorf("truncated %d, %d tags kept", got.Data.Truncated, len(got.Data.RepoTags))
	}
}

// No path: nothing written anywhere.
func TestCardNoPath(t *testing.T) {
	var out bytes.Buffer
	if err := WriteCard("", "", &out, &out, sample); err != nil || out.Len() != 0 {
		t.Errorf("%v, %q", err, out.String())
	}
}
