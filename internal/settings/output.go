package settings

import (
	"encoding/csv"
	"fmt"
	"sort"
	"strings"
)

// applyOutput honours PLUGIN_OUTPUT, buildx's --output as the buildx
// plugins pass it (thegeeklab's and Woodpecker's): one exporter,
// type=NAME[,key=value...], written as CSV as buildx reads it. It maps
// onto hoist's own settings: type=registry and type=image,push=true push
// (hoist's default); type=docker,dest= and type=oci,dest= are
// --tar-path and --tar-format; type=docker without dest is --load; and,
// as with buildx, an output that does not push means nothing is pushed
// (--no-push); type=local and type=tar, the image's filesystem, are
// written by the build step (FSExport). What hoist cannot write is
// refused with the reason, never ignored: it would build or push
// something else.
func applyOutput(s *Settings) error {
	if strings.TrimSpace(s.Output) == "" {
		return nil
	}
	origin := s.Origin("build-output")
	o, err := ParseOutput(s.Output)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", origin, s.Output, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s=%q: %s", origin, s.Output, fmt.Sprintf(format, a...))
	}
	if s.PushOnly {
		return bad("an output of the build, and %s=true pushes a pre-built image without building; drop one", s.Origin("push-only"))
	}
	switch o.Type {
	case "registry", "image":
		push, given := o.Attrs["push"]
		if !given {
			push = fmt.Sprint(o.Type == "registry")
		}
		pushes, err := parseBool(push)
		if err != nil {
			return bad("push=%s: %v", push, err)
		}
		if !pushes {
			s.NoPush = true
			s.origin["no-push"] = origin
			return nil
		}
		if s.NoPush {
			return bad("the output pushes, and %s=true says push nothing; drop one", s.Origin("no-push"))
		}
		return nil
	case "docker", "oci":
		dest := o.Attrs["dest"]
		if dest == "-" {
			return bad("dest=- is standard output, which carries the digest here; give a file path")
		}
		if dest == "" {
			if o.Type == "oci" {
				return bad("type=oci needs dest=FILE (the OCI tarball to write)")
			}
			s.Load, s.NoPush = true, true
			s.origin["load"], s.origin["no-push"] = origin, origin
			return nil
		}
		if s.TarPath != "" && s.TarPath != dest {
			return bad("the tarball is written to %s, and %s=%q names another; give one", dest, s.Origin("tar-path"), s.TarPath)
		}
		if s.IsSet("tar-format") && s.TarFormat != o.Type {
			return bad("a %s tarball, and %s=%q says %s; give one", o.Type, s.Origin("tar-format"), s.TarFormat, s.TarFormat)
		}
		s.TarPath, s.TarFormat, s.NoPush = dest, o.Type, true
		s.origin["tar-path"], s.origin["tar-format"], s.origin["no-push"] = origin, origin, origin
		return nil
	case "local", "tar":
		// The image's filesystem, not an image (the build step writes
		// it; see FSExport): nothing to push, as with buildx.
		dest := o.Attrs["dest"]
		switch {
		case dest == "":
			return bad("type=%s needs dest= (the %s to write the image's filesystem to)", o.Type, map[string]string{"local": "directory", "tar": "file"}[o.Type])
		case dest == "-":
			return bad("dest=- is standard output, which carries the digest here; give a path")
		}
		s.NoPush = true
		s.origin["no-push"] = origin
		return nil
	case "cacheonly":
		return bad("type=cacheonly builds for the cache only: hoist always makes an image; for a build that pushes nothing use PLUGIN_NO_PUSH (or PLUGIN_DRY_RUN)")
	default:
		return bad("unknown output type %q: want registry, image, docker or oci", o.Type)
	}
}

// FSExport is the export of the image's filesystem PLUGIN_OUTPUT asks
// for (type=local: a directory, type=tar: a tarball; buildx's), or
// ok false.
func (s *Settings) FSExport() (typ, dest string, ok bool) {
	if strings.TrimSpace(s.Output) == "" {
		return "", "", false
	}
	o, err := ParseOutput(s.Output)
	if err != nil || o.Type != "local" && o.Type != "tar" {
		return "", "", false
	}
	return o.Type, o.Attrs["dest"], true
}

// Output is one buildx --output value.
type Output struct {
	Type  string
	Attrs map[string]string
}

// outputAttrs are the attributes hoist honours, by type.
var outputAttrs = map[string][]string{
	"registry": {"push"},
	"image":    {"push"},
	"docker":   {"dest"},
	"oci":      {"dest"},
	"local":    {"dest"},
	"tar":      {"dest"},
}

// ParseOutput reads one buildx --output value: CSV fields key=value,
// one of them type; a value with neither "=" nor "," is a directory, which
// buildx reads as type=local,dest=VALUE. An attribute hoist does not
// honour is an error naming it.
func ParseOutput(v string) (Output, error) {
	v = strings.TrimSpace(v)
	if !strings.ContainsAny(v, "=,") {
		return Output{Type: "local", Attrs: map[string]string{"dest": v}}, nil
	}
	r := csv.NewReader(strings.NewReader(v))
	r.TrimLeadingSpace = true
	fields, err := r.Read()
	if err != nil {
		return Output{}, fmt.Errorf("not an output as buildx --output takes it (type=TYPE,key=value,...): %w", err)
	}
	o := Output{Attrs: map[string]string{}}
	for _, f := range fields {
		k, val, ok := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return Output{}, fmt.Errorf("%q is not key=value (want type=TYPE,key=value,...)", f)
		}
		if k == "type" {
			o.Type = strings.TrimSpace(val)
			continue
		}
		o.Attrs[k] = val
	}
	if o.Type == "" {
		return Output{}, fmt.Errorf("no type= (want type=registry, type=image,push=true, type=docker,dest=FILE or type=oci,dest=FILE)")
	}
	allowed, known := outputAttrs[o.Type]
	if !known {
		return o, nil // the type is refused by the caller, with the reason
	}
	var unknown []string
	for k := range o.Attrs {
		if !contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Output{}, fmt.Errorf("type=%s: hoist does not honour %s here (it honours %s; the image's names come from PLUGIN_REPO and PLUGIN_TAGS, its compression from PLUGIN_COMPRESSION)", o.Type, strings.Join(unknown, ", "), strings.Join(allowed, ", "))
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
