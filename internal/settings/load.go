package settings

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
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
	Secret  bool
	Group   string
	Doc     string
	Kind    string // bool, string, int, duration, list
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
		raw, origin, ok := rawValue(f, fs, lookup)
		if !ok && f.Flag == "tags" {
			raw, origin, ok = tagsFile(workDir)
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
// environment name present.
func rawValue(f Field, fs *pflag.FlagSet, lookup LookupFunc) (raw, origin string, ok bool) {
	if fs != nil {
		if pf := fs.Lookup(f.Flag); pf != nil && pf.Changed {
			return pf.Value.String(), "--" + f.Flag, true
		}
	}
	for _, e := range f.Env {
		if val, present := lookup(e); present {
			return val, e, true
		}
	}
	return "", "", false
}

func tagsFile(workDir string) (string, string, bool) {
	p := filepath.Join(workDir, ".tags")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", "", false
	}
	return strings.TrimSpace(string(b)), p, true
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
		v.Set(reflect.ValueOf(SplitList(raw, f.Sep)))
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
