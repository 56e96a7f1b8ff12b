package step

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/crypto/ssh"

	"github.com/hoist-build/hoist/internal/settings"
)

// namedContextsOf reads PLUGIN_NAMED_CONTEXT, buildx's --build-context
// items NAME=VALUE: VALUE docker-image://REF (an image), or a directory
// (relative to the working directory; it must lie in it, links
// followed). Each directory keeps hoist's own files out, as the context
// does (excludes gives them for a directory).
func namedContextsOf(s *settings.Settings, env Environ, path func(string) string, excludes func(dir string) []string) (map[string]string, map[string][]string, []error) {
	if len(s.NamedContexts) == 0 {
		return nil, nil, nil
	}
	origin := s.Origin("named-context")
	var errs []error
	out := map[string]string{}
	ex := map[string][]string{}
	for _, item := range s.NamedContexts {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || k == "" || v == "" || strings.ContainsAny(k, " \t"):
			errs = append(errs, fmt.Errorf("%s: malformed named context %q: want NAME=docker-image://REF or NAME=DIR", origin, item))
			continue
		case out[k] != "":
			errs = append(errs, fmt.Errorf("%s: named context %s is given twice", origin, k))
			continue
		}
		scheme, rest, hasScheme := strings.Cut(v, "://")
		switch {
		case hasScheme && scheme == "docker-image":
			if _, err := name.ParseReference(rest); err != nil {
				errs = append(errs, fmt.Errorf("%s: named context %s: %q is not an image reference: %w", origin, k, rest, err))
				continue
			}
			out[k] = v
		case hasScheme:
			errs = append(errs, fmt.Errorf("%s: named context %s: %s:// is not supported (docker-image://REF or a directory are); push an OCI layout to a registry and name it with docker-image://, or check a repository out into the workspace and name the directory", origin, k, scheme))
		default:
			dir, err := workspaceDir(path(v), env.WorkDir)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: named context %s: %w", origin, k, err))
				continue
			}
			out[k], ex[k] = dir, excludes(dir)
		}
	}
	return out, ex, errs
}

// workspaceDir is dir with its links resolved, when it is a directory
// inside workDir: a link the repository holds cannot send a named
// context out of the checkout.
func workspaceDir(dir, workDir string) (string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("%s is not a directory: %w", dir, errors.Unwrap(err))
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	root, err := filepath.EvalSymlinks(workDir)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s is outside the working directory %s (links followed): a named context is a directory of the workspace", dir, workDir)
	}
	return real, nil
}

// sshKeyOf checks PLUGIN_SSH_AGENT_KEY, the key plugins/docker writes to
// a file and passes as docker build --ssh default=FILE: a private key
// without a passphrase. The error never quotes the key.
func sshKeyOf(s *settings.Settings) ([]byte, error) {
	if s.SSHAgentKey == "" {
		return nil, nil
	}
	key := []byte(s.SSHAgentKey)
	if _, err := ssh.ParseRawPrivateKey(key); err != nil {
		var pass *ssh.PassphraseMissingError
		if errors.As(err, &pass) {
			return nil, fmt.Errorf("%s: the SSH key is protected by a passphrase, which a build cannot type: give a key without one (a deploy key made for the build)", s.Origin("ssh-agent-key"))
		}
		return nil, fmt.Errorf("%s: not an SSH private key (PEM or OpenSSH, as ssh-keygen writes it): %s", s.Origin("ssh-agent-key"), strings.TrimPrefix(err.Error(), "ssh: "))
	}
	return key, nil
}

// buildKitOnly refuses, for a Kaniko build, what Kaniko has no means
// for: named contexts, an SSH agent for RUN, an export of the image's
// filesystem. (A buildkitd.toml's registries it has: kanikoRegistries.)
func buildKitOnly(s *settings.Settings, why string) error {
	var asked []string
	if len(s.NamedContexts) > 0 {
		asked = append(asked, s.Origin("named-context")+" (Kaniko has no named build contexts)")
	}
	if s.SSHAgentKey != "" {
		asked = append(asked, s.Origin("ssh-agent-key")+" (Kaniko has no RUN --mount=type=ssh)")
	}
	if typ, _, ok := s.FSExport(); ok {
		asked = append(asked, s.Origin("build-output")+"=type="+typ+" (Kaniko exports no filesystem)")
	}
	if len(asked) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: this step builds with Kaniko (%s), which cannot honour it; build with BuildKit (PLUGIN_BUILD_TOOL=buildkit, or CI_USE_BUILDX_ON_K8=true in Kubernetes)",
		settings.ErrInvalid, strings.Join(asked, ", "), why)
}
