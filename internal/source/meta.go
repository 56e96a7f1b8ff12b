package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// digestForm says what a digest looks like, for the errors that find one
// that is not.
const digestForm = "a digest is an algorithm, a colon and the content's hash in lowercase hexadecimal: sha256: and 64 digits"

// decodeMeta decodes an image index or manifest (index.json, a blob)
// into v; what names it (index.json of OCI layout DIR). Its errors say
// what is wrong: JSON that breaks (where), a descriptor whose digest is
// not a digest (which one, and what a digest looks like), a field of the
// wrong JSON type. Each wraps ErrBadInput.
func decodeMeta(raw []byte, v any, what string) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) || !json.Valid(raw) {
		return fmt.Errorf("%w: %s is not valid JSON: %w", ErrBadInput, what, err)
	}
	if bad := badDigests(raw); len(bad) > 0 {
		more := ""
		if len(bad) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(bad)-1)
		}
		return fmt.Errorf("%w: %s: %s%s; %s (the file is damaged or was not written by an image tool: write the image again with the tool that made it)", ErrBadInput, what, bad[0], more, digestForm)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return fmt.Errorf("%w: %s: %s is a JSON %s, which is not what an image index or manifest holds there", ErrBadInput, what, typ.Field, typ.Value)
	}
	return fmt.Errorf("%w: %s is not an image index or manifest: %w", ErrBadInput, what, err)
}

// badDigests are the descriptors of an index or manifest (valid JSON)
// whose digest is not a digest, each named by where it is:
// manifests[0] (app:1) has digest "sha256:zz", which is not a digest
// (found non-hex character in hash: z).
func badDigests(raw []byte) []string {
	var doc struct {
		Manifests []map[string]any `json:"manifests"`
		Layers    []map[string]any `json:"layers"`
		Config    map[string]any   `json:"config"`
		Subject   map[string]any   `json:"subject"`
	}
	if json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	var out []string
	check := func(where string, d map[string]any) {
		if d == nil {
			return
		}
		name := ""
		if a, ok := d["annotations"].(map[string]any); ok {
			for _, k := range []string{"org.opencontainers.image.ref.name", "io.containerd.image.name"} {
				if n, ok := a[k].(string); ok && n != "" {
					name = " (" + n + ")"
					break
				}
			}
		}
		switch dg := d["digest"].(type) {
		case string:
			if _, err := v1.NewHash(dg); err != nil {
				out = append(out, fmt.Sprintf("%s%s has digest %q, which is not a digest (%v)", where, name, dg, err))
			}
		case nil:
			// No digest decodes (as none); a later check names it.
		default:
			out = append(out, fmt.Sprintf("%s%s has digest %s, which is not a string", where, name, strings.TrimSpace(fmt.Sprint(dg))))
		}
	}
	for i, d := range doc.Manifests {
		check(fmt.Sprintf("manifests[%d]", i), d)
	}
	check("config", doc.Config)
	for i, d := range doc.Layers {
		check(fmt.Sprintf("layers[%d]", i), d)
	}
	check("subject", doc.Subject)
	return out
}
