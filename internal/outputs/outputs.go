// Package outputs writes what a CI system reads after a step: the digest
// file, the DRONE_OUTPUT env file and the Harness/Drone artifact file. Every
// file is written to a temporary name and renamed, so a reader never sees
// half a file.
package outputs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hoist-build/hoist/internal/files"
)

// WriteFile writes data to path atomically, creating parent directories.
func WriteFile(path string, data []byte) error { return files.WriteAtomic(path, data) }

// Digest writes the digest file: the digest and a newline.
func Digest(path, digest string) error {
	return WriteFile(path, []byte(digest+"\n"))
}

// Env merges KEY=value lines into the env file at path (DRONE_OUTPUT):
// keys already in the file that are not in vars are kept.
func Env(path string, vars map[string]string) error {
	merged := map[string]string{}
	var order []string
	if b, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok && k != "" {
				if _, seen := merged[k]; !seen {
					order = append(order, k)
				}
				merged[k] = v
			}
		}
	}
	var keys []string
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, seen := merged[k]; !seen {
			order = append(order, k)
		}
		merged[k] = vars[k]
	}
	var b strings.Builder
	for _, k := range order {
		fmt.Fprintf(&b, "%s=%s\n", k, merged[k])
	}
	return WriteFile(path, []byte(b.String()))
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
func WriteArtifact(path string, a Artifact) error {
	if a.Kind == "" {
		a.Kind = "docker/v1"
	}
	b, err := json.MarshalIndent(a, "", "\t")
	if err != nil {
		return err
	}
	return WriteFile(path, append(b, '\n'))
}
