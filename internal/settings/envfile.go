package settings

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// withEnvFile loads the dotenv file named by --env-file or PLUGIN_ENV_FILE
// and returns a lookup that sees its variables behind the real ones:
// variables that are already set win, as with the peers.
//
// An env file is written by whoever can write the workspace: the
// repository (anyone who opens a pull request), an earlier step, a
// restored cache. So it may not set a setting that says where
// credentials, tokens, keys or passwords go or come from, which program
// gets them, or how their connection is checked (tag envfile:"no"), nor
// name an environment variable whose value becomes a build argument
// (envfile:"values"): each is refused, naming the file and the line.
func withEnvFile(fs *pflag.FlagSet, lookup LookupFunc, workDir string) (LookupFunc, error) {
	var f Field
	for _, x := range fields {
		if x.Flag == "env-file" {
			f = x
		}
	}
	path, origin, ok := rawValue(f, fs, lookup)
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
	if err := checkEnvFile(path, vars, lines); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, origin, err)
	}
	return func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		v, ok := vars[name]
		return v, ok
	}, nil
}

// checkEnvFile refuses the variables of an env file that set what an env
// file may not set.
func checkEnvFile(path string, vars map[string]string, lines map[string]int) error {
	var errs []error
	for _, f := range fields {
		if f.EnvFile == "" {
			continue
		}
		for _, e := range f.Env {
			v, ok := vars[e]
			if !ok {
				continue
			}
			switch f.EnvFile {
			case "no":
				errs = append(errs, fmt.Errorf("env file %s line %d sets %s, which an env file may not set: it says where credentials, tokens, keys or passwords are sent or read, which program gets them, or how their connection is checked, and whoever can write the file (the repository, an earlier step, a cache) could redirect them; set %s in the step's own settings (its environment or --%s)", path, lines[e], e, e, f.Flag))
			case "values":
				for _, item := range SplitList(v, f.Sep) {
					if k, _, hasValue := strings.Cut(item, "="); !hasValue {
						errs = append(errs, fmt.Errorf("env file %s line %d: %s names %q without a value, which would pass the step's environment variable %s to the build; an env file gives each build argument its value (KEY=value), or set it in the step's own settings", path, lines[e], e, strings.TrimSpace(k), strings.TrimSpace(k)))
					}
				}
			}
		}
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
