package settings

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// withEnvFile loads the dotenv file named by --env-file or PLUGIN_ENV_FILE
// and returns a lookup that sees its variables behind the real ones:
// variables that are already set win, as with the peers.
//
// An env file is written by whoever can write the workspace: the
// repository (anyone who opens a pull request), an earlier step, a
// restored cache. So it may set only the settings on the allowlist (tag
// envfile "yes" or "values"): the tags, build arguments with values,
// labels, the target, the platforms, no-cache and pull. Every other
// variable in it, a setting or not (the CI's run identity, a proxy, a
// misspelt name), is refused, naming the file, the line and the
// variable. The file's variables reach the settings only: the step's
// own environment (Environ.Lookup) never sees them.
func withEnvFile(fs *pflag.FlagSet, lookup LookupFunc, workDir string) (LookupFunc, error) {
	var f Field
	for _, x := range fields {
		if x.Flag == "env-file" {
			f = x
		}
	}
	path, origin, ok, err := rawValue(f, fs, lookup)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !ok || strings.TrimSpace(path) == "" {
		return lookup, nil
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(workDir, path)
	}
	vars, lines, err := readDotenv(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, origin, err)
	}
	if err := checkEnvFile(origin, path, vars, lines); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	byEnv := envFields()
	return func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		// A setting the environment gives under any of its names is
		// the environment's: the file's PLUGIN_TAG does not win over
		// the step's PLUGIN_TAGS.
		for _, e := range byEnv[name].Env {
			if _, ok := lookup(e); ok {
				return "", false
			}
		}
		v, ok := vars[name]
		return v, ok
	}, nil
}

// envFields maps every environment name to its setting.
func envFields() map[string]Field {
	byEnv := map[string]Field{}
	for _, f := range fields {
		for _, e := range f.Env {
			byEnv[e] = f
		}
	}
	return byEnv
}

// envFileAllows is what an env file may set, said once after the
// variables refused.
const envFileAllows = "an env file may set only the tags, build arguments with values, labels, the target, the platforms, no-cache and pull (docs/settings.md marks them): whoever can write it (the repository, an earlier step, a restored cache) must not choose where the step's credentials go, what it reads or writes, what network a RUN gets, or what a verdict rests on"

// checkEnvFile refuses every variable of an env file that is not on the
// allowlist, and a build argument without its value; origin names the
// setting that named the file. Each problem names the file and the line,
// never a value.
func checkEnvFile(origin, path string, vars map[string]string, lines map[string]int) error {
	byEnv := envFields()
	names := slices.SortedFunc(maps.Keys(vars), func(a, b string) int { return lines[a] - lines[b] })
	var errs []error
	refused := false
	for _, e := range names {
		f, setting := byEnv[e]
		switch {
		case !setting:
			refused = true
			errs = append(errs, fmt.Errorf("%s: env file %s line %d sets %s, which an env file may not set: an env file holds settings only; set %s in the step's own environment", origin, path, lines[e], e, e))
		case f.EnvFile == "":
			refused = true
			errs = append(errs, fmt.Errorf("%s: env file %s line %d sets %s, which an env file may not set; set %s in the step's own settings (its environment or --%s)", origin, path, lines[e], e, e, f.Flag))
		case f.EnvFile == "values":
			for _, item := range SplitList(vars[e], f.Sep) {
				if k, _, hasValue := strings.Cut(item, "="); !hasValue {
					errs = append(errs, fmt.Errorf("%s: env file %s line %d: %s names %q without a value, which would pass the step's environment variable %s to the build; an env file gives each build argument its value (KEY=value), or set it in the step's own settings", origin, path, lines[e], e, strings.TrimSpace(k), strings.TrimSpace(k)))
				}
			}
		}
	}
	if refused {
		errs = append(errs, errors.New(envFileAllows))
	}
	return errors.Join(errs...)
}

// ReadDotenv parses KEY=value lines: blank lines and # comments are skipped,
// an "export " prefix is allowed, and one pair of surrounding single or
// double quotes is removed.
func ReadDotenv(path string) (map[string]string, error) {
	vars, _, err := readDotenv(path)
	return vars, err
}

// readDotenv is ReadDotenv, with the line each variable was last set on.
func readDotenv(path string) (map[string]string, map[string]int, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read env file: %w", err)
	}
	defer file.Close()
	vars, lines := map[string]string{}, map[string]int{}
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, nil, fmt.Errorf("env file %s line %d: want KEY=value", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[k], lines[k] = v, n
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read env file %s: %w", path, err)
	}
	return vars, lines, nil
}
