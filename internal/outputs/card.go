package outputs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/docker/go-units"

	"github.com/hoist-build/hoist/internal/files"
)

// CardSchema is the adaptive-card template a runner's UI renders a card
// with: drone-docker's (its fields RepoDigests, ParsedRepoTags,
// SizeString, Time and URL are the card's), so Drone shows hoist's card
// as it shows the peers'.
const CardSchema = "https://drone-plugins.github.io/drone-docker/card.json"

// Bounds of a card: a runner holds it in memory and its server stores it.
const (
	// MaxCardBytes bounds the card's JSON.
	MaxCardBytes = 32 << 10
	// maxCardList bounds each list of the card (tags, repositories).
	maxCardList = 50
)

// Card is what the step's card shows: only these fields, each a value
// hoist made (references, digests, sizes, counts), never a setting's
// text, so nothing secret can reach it.
type Card struct {
	// Image is the first reference; Tags every reference, Pushed whether
	// they are in registries (a build-only step's are the names it built).
	Image  string
	Tags   []string
	Pushed bool
	// Digest is the image's manifest (or index) digest; Size the bytes of
	// its manifests' config and layers (0: unknown).
	Digest string
	Size   int64
	// Repositories hold the digest (Pushed).
	Repositories []string
	Time         time.Time
	// URL is the image's web page, where one is known (Docker Hub).
	URL string
	// Scan is the scan gate's verdict, when the step scanned.
	Scan *CardScan
	// Signed are the repositories that hold the digest's signature,
	// Attested the kinds of the attestations signed with it (cyclonedx,
	// slsaprovenance1).
	Signed, Attested []string
}

// CardScan is a scan verdict on a card.
type CardScan struct {
	Passed   bool
	Verdict  string
	Counts   map[string]int
	Scanner  string
	Findings int
}

// cardTag is one entry of the template's tag list.
type cardTag struct {
	Tag string `json:"Tag"`
}

// cardData is the card's JSON: the template's fields, then hoist's.
type cardData struct {
	RepoTags          []string  `json:"RepoTags"`
	ParsedRepoTags    []cardTag `json:"ParsedRepoTags"`
	RepoDigests       []string  `json:"RepoDigests"`
	Size              int64     `json:"Size"`
	SizeString        string    `json:"SizeString"`
	Time              string    `json:"Time"`
	URL               string    `json:"URL,omitempty"`
	Image             string    `json:"Image"`
	Digest            string    `json:"Digest"`
	Pushed            bool      `json:"Pushed"`
	Scan              *CardScan `json:"Scan,omitempty"`
	Signed            []string  `json:"Signed,omitempty"`
	Attested          []string  `json:"Attested,omitempty"`
	Truncated         int       `json:"Truncated,omitempty"`
	VirtualSizeString string    `json:"VirtualSizeString"`
}

// cardInput is what Drone's runner uploads (drone.CardInput).
type cardInput struct {
	Schema string          `json:"schema"`
	Data   json.RawMessage `json:"data"`
}

// MarshalCard is the card as the runner reads it: {"schema", "data"},
// each list cut to its bound (Truncated counts what was left out).
func MarshalCard(c Card) ([]byte, error) {
	d := cardData{Image: c.Image, Digest: c.Digest, Pushed: c.Pushed, Size: c.Size, URL: c.URL, Scan: c.Scan,
		RepoTags: []string{}, ParsedRepoTags: []cardTag{}, RepoDigests: []string{}}
	if c.Size > 0 {
		d.SizeString = units.HumanSize(float64(c.Size))
		d.VirtualSizeString = d.SizeString
	}
	if !c.Time.IsZero() {
		d.Time = c.Time.UTC().Format(time.RFC3339)
	}
	for limit := maxCardList; ; limit /= 4 {
		d.Truncated = 0
		cut := func(l []string) []string {
			if len(l) > limit {
				d.Truncated += len(l) - limit
				return l[:limit]
			}
			return l
		}
		d.RepoTags = append([]string{}, cut(c.Tags)...)
		d.ParsedRepoTags = d.ParsedRepoTags[:0]
		for _, t := range d.RepoTags {
			d.ParsedRepoTags = append(d.ParsedRepoTags, cardTag{t})
		}
		d.RepoDigests = []string{}
		if c.Pushed {
			for _, r := range cut(c.Repositories) {
				d.RepoDigests = append(d.RepoDigests, r+"@"+c.Digest)
			}
		} else if c.Digest != "" {
			// Not in a registry: the digest alone, which the template
			// shows as the image's.
			d.RepoDigests = append(d.RepoDigests, c.Digest)
		}
		d.Signed, d.Attested = cut(c.Signed), cut(c.Attested)
		data, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		out, err := json.Marshal(cardInput{Schema: CardSchema, Data: data})
		if err != nil {
			return nil, err
		}
		if len(out) <= MaxCardBytes {
			return out, nil
		}
		if limit <= 1 {
			return nil, fmt.Errorf("the card is larger than %d bytes", MaxCardBytes)
		}
	}
}

// WriteCard writes the card c to path as the peers do: /dev/stdout and
// /dev/stderr get it framed as Drone's runner reads it from the log (an
// OSC 1338 sequence with the base64 JSON, one line; stdout and stderr are
// the step's writers), any other path the JSON, written atomically (in
// the workspace ws, through no link that leads out of it).
func WriteCard(ws files.Workspace, path string, stdout, stderr io.Writer, c Card) error {
	b, err := MarshalCard(c)
	if err != nil {
		return err
	}
	switch path {
	case "":
		return nil
	case "/dev/stdout":
		return writeCardTo(stdout, b)
	case "/dev/stderr":
		return writeCardTo(stderr, b)
	}
	return WriteFile(ws, path, b)
}

// writeCardTo writes the frame in one write, so that it starts a log
// line of its own.
func writeCardTo(w io.Writer, b []byte) error {
	_, err := io.WriteString(w, "\x1b]1338;"+base64.StdEncoding.EncodeToString(b)+"\x1b]0m\n")
	return err
}
