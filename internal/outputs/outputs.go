// Package outputs writes what a CI system reads after a step: the digest
// file, the DRONE_OUTPUT env file and the Harness/Drone artifact file. Every
// file is written to a temporary name and renamed, so a reader never sees
// half a file.
package outputs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/hoist-build/hoist/internal/files"
)

// WriteFile writes data to path atomically, creating parent directories;
// in the workspace ws, no link that leads out of it is written through
// (files.Workspace).
func WriteFile(ws files.Workspace, path string, data []byte) error { return ws.WriteAtomic(path, data) }

// Digest writes the digest file: the digest and a newline.
func Digest(ws files.Workspace, path, digest string) error {
	return WriteFile(ws, path, []byte(digest+"\n"))
}

// Env merges KEY=value lines into the env file at path (DRONE_OUTPUT), as
// dotenv readers (Drone's and Harness's runners) read it: the file's other
// lines are kept byte for byte, however long; a line of one of vars' keys
// is replaced. A value other than plain characters is double-quoted with
// its quotes, backslashes, dollars and newlines escaped, so that no value
// can break a line or add a key.
func Env(ws files.Workspace, path string, vars map[string]string) error {
	var b bytes.Buffer
	old, err := ws.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, line := range bytes.SplitAfter(old, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		k, _, _ := bytes.Cut(bytes.TrimPrefix(bytes.TrimSpace(line), []byte("export ")), []byte("="))
		if _, ours := vars[string(bytes.TrimSpace(k))]; ours {
			continue
		}
		b.Write(line)
		if !bytes.HasSuffix(line, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		if !envKey.MatchString(k) {
			return fmt.Errorf("output %q is not a variable name", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q, err := quote(vars[k])
		if err != nil {
			return fmt.Errorf("output %s: %w", k, err)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, q)
	}
	return WriteFile(ws, path, b.Bytes())
}

var (
	envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	plain  = regexp.MustCompile(`^[A-Za-z0-9_./:@,+%-]*$`)
)

// quote writes a value as dotenv reads it back unchanged: as it is when
// it is plain, single-quoted (read literally) when it holds no single
// quote or line break, else double-quoted with its backslashes, dollars
// and line breaks escaped. What no quoting carries safely is refused.
func quote(v string) (string, error) {
	switch {
	case plain.MatchString(v):
		return v, nil
	case strings.HasSuffix(v, `\`):
		// A reader takes the closing quote after a backslash for an
		// escaped quote, whatever the quoting.
		return "", fmt.Errorf("a value that ends in a backslash cannot be written safely: %q", v)
	case !strings.ContainsAny(v, "'\n\r"):
		return "'" + v + "'", nil
	case strings.Contains(v, `"`):
		// Readers differ on an escaped quote near others; hoist's own
		// values (digests, references, paths) never hold both kinds.
		return "", fmt.Errorf("a value with both kinds of quote, or a quote and a line break, cannot be written safely: %q", v)
	}
	r := strings.NewReplacer(`\`, `\\`, "$", `\$`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(v) + `"`, nil
}

// ArtifactImage is one pushed image in the artifact file.
type ArtifactImage struct {
	Image  string `json:"image"`
	Digest string `json:"digest"`
}

// Artifact is the JSON shape the Harness and Drone artifacts tab reads.
type Artifact struct {
	Kind string       `json:"kind"`
	Data ArtifactData `json:"data"`
}

// ArtifactData lists the pushed images of one registry type.
type ArtifactData struct {
	RegistryType string          `json:"registryType"`
	RegistryURL  string          `json:"registryUrl"`
	Images       []ArtifactImage `json:"images"`
}

// WriteArtifact writes the artifact file, tab-indented as the peers do.
func WriteArtifact(ws files.Workspace, path string, a Artifact) error {
	if a.Kind == "" {
		a.Kind = "docker/v1"
	}
	b, err := json.MarshalIndent(a, "", "\t")
	if err != nil {
		return err
	}
	return WriteFile(ws, path, append(b, '\n'))
}
