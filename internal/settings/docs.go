package settings

import (
	"fmt"
	"strings"
)

// Markdown renders docs/settings.md from the Settings struct.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Settings\n\n")
	b.WriteString("Generated from `internal/settings/settings.go` by `go run ./cmd/hoist settings --markdown`; a test fails when this file drifts.\n\n")
	b.WriteString("Every setting has one flag and one or more environment names. A flag wins over the environment; among the environment names the first one present wins, even when its value is empty (the rule of the drone plugins). Booleans accept `true/false/1/0/t/f` (empty means false; anything else is an error); whole numbers accept `0x` prefixes; lists are comma separated, items trimmed, empty items dropped. Secret settings are masked in every output. An env file (`--env-file`) may set only the settings marked \"From an env file\" below (the tags, build arguments with values, labels, the target, the platforms, no-cache and pull); any other variable in it, a setting or not, is refused (exit 2): whoever can write the file (the repository, an earlier step, a restored cache) must not choose where the step's credentials go, what it reads or writes, what network a `RUN` gets, or what a verdict rests on.\n")
	group := ""
	for _, f := range fields {
		if f.Group != group {
			group = f.Group
			fmt.Fprintf(&b, "\n## %s\n\n| flag | environment | default | description |\n|---|---|---|---|\n", group)
		}
		env := make([]string, len(f.Env))
		for i, e := range f.Env {
			env[i] = "`" + e + "`"
		}
		def := ""
		if f.Default != "" {
			def = "`" + f.Default + "`"
		}
		doc := f.Doc
		if f.Secret {
			doc += " (secret)"
		}
		switch f.EnvFile {
		case "yes":
			doc += " From an env file (--env-file) too."
		case "values":
			doc += " From an env file (--env-file) too, each item with its value (KEY=value)."
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n", f.Flag, strings.Join(env, " "), def, strings.ReplaceAll(doc, "|", "\\|"))
	}
	return b.String()
}
