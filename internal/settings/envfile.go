package settings

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// withEnvFile loads the dotenv file named by --env-file or PLUGIN_ENV_FILE
// and returns a lookup that sees its variables behind the real ones:
// variables that are already set win, as with the peers.
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
	vars, err := ReadDotenv(path)
	if err != nil {
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

// ReadDotenv parses KEY=value lines: blank lines and # comments are skipped,
// an "export " prefix is allowed, and one pair of surrounding single or
// double quotes is removed.
func ReadDotenv(path string) (map[string]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	defer file.Close()
	vars := map[string]string{}
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
			return nil, fmt.Errorf("env file %s line %d: want KEY=value", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read env file %s: %w", path, err)
	}
	return vars, nil
}
