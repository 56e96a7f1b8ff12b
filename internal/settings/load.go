package settings

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hoist-build/hoist/internal/files"
)

// ErrInvalid marks every error that comes from a setting's value.
var ErrInvalid = errors.New("invalid settings")

// LookupFunc reads one environment variable; ok reports whether it is
// present (an empty value is present).
type LookupFunc func(name string) (value string, ok bool)

// Field describes one setting, as declared by the tags of Settings.
type Field struct {
	Name    string // Go field name
	Flag    string
	Env     []string
	Default string
	Sep     string
	// Escape, for a list, makes a separator it precedes part of the
	// item (thegeeklab's a\,b): the escape is dropped.
	Escape string
	Secret bool
	Group  string
	Doc    string
	Kind   string // bool, string, int, duration, list
	// Kaniko is the Kaniko executor flag the setting is passed as.
	Kaniko string
	// EnvFile is what an env file may do with the setting: "" nothing,
	// "yes" set it, "values" set it with KEY=value items only.
	EnvFile string
	index   int
}

var fields = mustFields()

// Fields returns every setting in declaration order.
func Fields() []Field { return append([]Field(nil), fields...) }

func mustFields() []Field {
	t := reflect.TypeOf(Settings{})
	var out []Field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		fl := sf.Tag.Get("flag")
		if fl == "" {
			continue
		}
		f := Field{
			Name:    sf.Name,
			Flag:    fl,
			Default: sf.Tag.Get("default"),
			Sep:     sf.Tag.Get("sep"),
			Escape:  sf.Tag.Get("escape"),
			Secret:  sf.Tag.Get("secret") == "true",
			Group:   sf.Tag.Get("group"),
			Doc:     sf.Tag.Get("doc"),
			Kaniko:  sf.Tag.Get("kaniko"),
			EnvFile: sf.Tag.Get("envfile"),
			index:   i,
		}
		for _, e := range strings.Split(sf.Tag.Get("env"), ",") {
			if e = strings.TrimSpace(e); e != "" {
				f.Env = append(f.Env, e)
			}
		}
		switch {
		case sf.Type == reflect.TypeOf(time.Duration(0)):
			f.Kind = "duration"
		case sf.Type.Kind() == reflect.Bool:
			f.Kind = "bool"
		case sf.Type.Kind() == reflect.String:
			f.Kind = "string"
		case sf.Type.Kind() == reflect.Int:
			f.Kind = "int"
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.String:
			f.Kind = "list"
			if f.Sep == "" {
				f.Sep = ","
			}
		default:
			panic(fmt.Sprintf("settings: field %s has unsupported type %s", sf.Name, sf.Type))
		}
		if f.EnvFile != "" && f.EnvFile != "yes" && (f.EnvFile != "values" || f.Kind != "list") {
			panic(fmt.Sprintf("settings: field %s: envfile is yes, or values for a list", sf.Name))
		}
		if f.Doc == "" || f.Group == "" {
			panic(fmt.Sprintf("settings: field %s needs doc and group tags", sf.Name))
		}
		out = append(out, f)
	}
	return out
}

// rawFlag records the raw strings given for one flag.
type rawFlag struct {
	vals []string
	kind string
}

func (r *rawFlag) String() string { return strings.Join(r.vals, ",") }
func (r *rawFlag) Type() string {
	if r.kind == "list" {
		return "strings"
	}
	return r.kind
}
func (r *rawFlag) Set(s string) error {
	if r.kind != "list" {
		r.vals = r.vals[:0]
	}
	r.vals = append(r.vals, s)
	return nil
}

// AddFlags registers one flag per setting on fs.
func AddFlags(fs *pflag.FlagSet) {
	for _, f := range fields {
		usage := f.Doc
		if len(f.Env) > 0 {
			usage += " [$" + strings.Join(f.Env, ", $") + "]"
		}
		pf := fs.VarPF(&rawFlag{kind: f.Kind}, f.Flag, "", usage)
		if f.Kind == "bool" {
			pf.NoOptDefVal = "true"
		}
		if f.Default != "" {
			pf.DefValue = f.Default
		}
	}
}

// Load reads every setting from fs (may be nil), then from the environment
// through lookup, then from defaults. workDir is where .tags is looked for.
// Every invalid value is reported, joined, wrapping ErrInvalid.
func Load(fs *pflag.FlagSet, lookup LookupFunc, workDir string) (*Settings, error) {
	var errs []error
	lookup, err := withEnvFile(fs, lookup, workDir)
	if err != nil {
		return nil, err
	}
	s := &Settings{origin: map[string]string{}}
	v := reflect.ValueOf(s).Elem()
	for _, f := range fields {
		raw, origin, ok, err := rawValue(f, fs, lookup)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok && f.Flag == "tags" {
			raw, origin, ok, err = tagsFile(workDir)
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if !ok {
			raw, origin = f.Default, "default"
		} else {
			s.origin[f.Flag] = origin
		}
		if err := setField(v.Field(f.index), f, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", origin, shown(f, raw), err))
		}
	}
	if len(errs) == 0 {
		errs = peerForms(s, workDir)
		if err := dockerLogin(s, lookup); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := applyOutput(s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return s, nil
}

func shown(f Field, raw string) string {
	if f.Secret && raw != "" {
		return "****"
	}
	return raw
}

// rawValue returns the flag's value if it was given, else the first
// environment name present, in the order of the field's env tag: the
// peers' order where they read two of its names for one value (the test
// of the peers' data holds the tag to it). Two names that no peer reads
// together, or that the peers read in opposite orders, are both peers'
// names a migrating step may carry: when both are given, not empty, with
// different values, the setting is ambiguous and refused, naming both;
// when one is empty the other is taken.
func rawValue(f Field, fs *pflag.FlagSet, lookup LookupFunc) (raw, origin string, ok bool, err error) {
	if fs != nil {
		if pf := fs.Lookup(f.Flag); pf != nil && pf.Changed {
			return pf.Value.String(), "--" + f.Flag, true, nil
		}
	}
	for _, e := range f.Env {
		val, present := lookup(e)
		if !present {
			continue
		}
		if !ok {
			raw, origin, ok = val, e, true
			continue
		}
		if peersOrder(origin, e) || strings.TrimSpace(val) == "" {
			continue
		}
		if strings.TrimSpace(raw) == "" {
			raw, origin = val, e
			continue
		}
		if !sameValue(f, raw, val) {
			return "", "", false, fmt.Errorf("%s and %s are both set, to different values (%q and %q), for --%s: they are two peers' names for one setting, and %s; keep one", origin, e, shown(f, raw), shown(f, val), f.Flag, peersOnPair(origin, e))
		}
	}
	return raw, origin, ok, nil
}

// sameValue reports whether two raw values of f mean the same.
func sameValue(f Field, a, b string) bool {
	if f.Kind == "list" {
		return slices.Equal(splitField(f, a), splitField(f, b))
	}
	if f.Kind == "bool" {
		x, errA := parseBool(a)
		y, errB := parseBool(b)
		return errA == nil && errB == nil && x == y
	}
	return strings.TrimSpace(a) == strings.TrimSpace(b)
}

// maxTagsFile bounds a file of tags (.tags, --tags-file): the repository
// writes it.
const maxTagsFile = 64 << 10

// tagsFile reads .tags in the working directory, when there is one: tags
// separated by commas, as the peers read it. It is a repository file: read only when
// regular, at most maxTagsFile bytes, reached by no link out of the
// working directory.
func tagsFile(workDir string) (string, string, bool, error) {
	p := filepath.Join(workDir, ".tags")
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return "", "", false, nil
	}
	b, err := files.Workspace(workDir).ReadRegular(p, maxTagsFile)
	if err != nil {
		return "", "", false, fmt.Errorf("the tags file .tags: %w", err)
	}
	return strings.TrimSpace(string(b)), p, true, nil
}

func setField(v reflect.Value, f Field, raw string) error {
	switch f.Kind {
	case "string":
		v.SetString(raw)
	case "bool":
		b, err := parseBool(raw)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case "int":
		if strings.TrimSpace(raw) == "" {
			raw = f.Default
		}
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 0, 64)
		if err != nil {
			return errors.New("want a whole number")
		}
		v.SetInt(n)
	case "duration":
		raw = strings.TrimSpace(raw)
		if raw == "" {
			raw = f.Default
		}
		d, err := parseDuration(raw)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case "list":
		v.Set(reflect.ValueOf(splitField(f, raw)))
	}
	return nil
}

func parseBool(raw string) (bool, error) {
	if raw == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(raw))
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

func parseDuration(raw string) (time.Duration, error) {
	if n, err := strconv.Atoi(raw); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		return 0, errors.New("want a duration such as 30s or 2m")
	}
	return d, nil
}

// splitField splits a list value of f.
func splitField(f Field, raw string) []string {
	if f.Escape != "" {
		return splitEscaped(raw, f.Sep, f.Escape)
	}
	return SplitList(raw, f.Sep)
}

// splitEscaped splits raw on sep except where sep follows esc, which is
// dropped (thegeeklab's drone-plugin-lib: "id=a\\,src=f,id=b" is two items),
// trims each item and drops empty ones.
func splitEscaped(raw, sep, esc string) []string {
	parts := strings.Split(raw, sep)
	for i := len(parts) - 2; i >= 0; i-- {
		if strings.HasSuffix(parts[i], esc) {
			parts[i] = strings.TrimSuffix(parts[i], esc) + sep + parts[i+1]
			parts = append(parts[:i+1], parts[i+2:]...)
		}
	}
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// SplitList splits a list value on sep, trims each item and drops empty
// items (a trailing comma in a templated CI value is common).
func SplitList(raw, sep string) []string {
	var out []string
	for _, item := range strings.Split(raw, sep) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// IsSet reports whether the setting with this flag name was given by a flag
// or an environment variable (or .tags), rather than by its default.
func (s *Settings) IsSet(flag string) bool {
	_, ok := s.origin[flag]
	return ok
}

// Origin names where a setting's value came from: "--flag", an environment
// name, a file, or "default".
func (s *Settings) Origin(flag string) string {
	if o, ok := s.origin[flag]; ok {
		return o
	}
	return "default"
}

// Name names a setting for a message: where its value came from when it
// was given, else its first environment name (PLUGIN_...).
func (s *Settings) Name(flag string) string {
	if o, ok := s.origin[flag]; ok {
		return o
	}
	for _, f := range fields {
		if f.Flag == flag && len(f.Env) > 0 {
			return f.Env[0]
		}
	}
	return "--" + flag
}

// Secrets returns the non-empty values of secret settings, so that output
// can be masked.
func (s *Settings) Secrets() []string {
	v := reflect.ValueOf(s).Elem()
	var out []string
	for _, f := range fields {
		if f.Secret {
			if val := v.Field(f.index).String(); val != "" {
				out = append(out, val)
			}
		}
	}
	return out
}

// Masked returns every setting that was set, as flag name → value, with
// secrets masked; for debug output.
func (s *Settings) Masked() [][2]string {
	v := reflect.ValueOf(s).Elem()
	var out [][2]string
	for _, f := range fields {
		if !s.IsSet(f.Flag) {
			continue
		}
		val := fmt.Sprint(v.Field(f.index).Interface())
		if f.Secret {
			val = "****"
		}
		out = append(out, [2]string{f.Flag, val})
	}
	return out
}

// KanikoArgs renders the settings tagged kaniko as executor flags: a true
// bool as the flag, a non-empty string or non-zero number as flag=value, a
// list as one flag per item. A bare number for --cache-ttl means hours.
func (s *Settings) KanikoArgs() []string {
	v := reflect.ValueOf(s).Elem()
	var out []string
	for _, f := range fields {
		if f.Kaniko == "" {
			continue
		}
		fv := v.Field(f.index)
		switch f.Kind {
		case "bool":
			if fv.Bool() {
				out = append(out, f.Kaniko)
			}
		case "int":
			if fv.Int() != 0 {
				out = append(out, fmt.Sprintf("%s=%d", f.Kaniko, fv.Int()))
			}
		case "string":
			val := fv.String()
			if val == "" {
				continue
			}
			if f.Kaniko == "--cache-ttl" {
				if _, err := strconv.Atoi(val); err == nil {
					val += "h"
				}
			}
			out = append(out, f.Kaniko+"="+val)
		case "list":
			for _, item := range fv.Interface().([]string) {
				out = append(out, f.Kaniko+"="+item)
			}
		}
	}
	return out
}
