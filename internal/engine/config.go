package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hoist-build/hoist/internal/envlist"
)

// plainHTTP reports whether the registry at host (HOST:PORT, or HOST for
// 443) does not speak TLS: its answer to a TLS handshake is not TLS. A
// registry that cannot be reached within wait is taken at its word
// (plain HTTP allowed).
func plainHTTP(ctx context.Context, host string, wait time.Duration) bool {
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "443")
	}
	h, _, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(ctx, min(wait, 10*time.Second))
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return true
	}
	defer conn.Close()
	// The handshake tells whether the server speaks TLS; whether its
	// certificate is trusted is BuildKit's to check, with the CAs it is
	// given. Nothing is sent after the handshake.
	err = tls.Client(conn, &tls.Config{ServerName: h, MinVersion: tls.VersionTLS12}).HandshakeContext(ctx)
	var cert *tls.CertificateVerificationError
	return err != nil && !errors.As(err, &cert)
}

// Config renders buildkitd.toml: the network of RUN steps, registry
// access and Docker Hub mirrors.
func Config(regs []Registry, mirrors []string, n Network) string {
	var b strings.Builder
	b.WriteString("# written by hoist for its embedded engine\n[worker.oci]\n  enabled = true\n  gc = true\n")
	switch n.Mode {
	case "bridge":
		fmt.Fprintf(&b, "  networkMode = \"bridge\"\n  cniBinaryPath = %q\n  bridgeName = %q\n  bridgeSubnet = %q\n", n.CNIDir, n.Bridge, n.Subnet)
	case "host":
		b.WriteString("  networkMode = \"host\"\n")
	}
	b.WriteString("[worker.containerd]\n  enabled = false\n")
	sort.Slice(regs, func(i, j int) bool { return regs[i].Host < regs[j].Host })
	seen := map[string]bool{}
	for _, r := range regs {
		if seen[r.Host] {
			continue
		}
		seen[r.Host] = true
		fmt.Fprintf(&b, "\n[registry.%q]\n  http = %t\n  insecure = %t\n", r.Host, r.HTTP, r.Insecure)
		if len(r.CAFiles) > 0 {
			fmt.Fprintf(&b, "  ca = [%s]\n", quoteAll(r.CAFiles))
		}
		m := r.Mirrors
		if r.Host == "docker.io" {
			m = append(append([]string(nil), mirrors...), m...)
		}
		if len(m) > 0 {
			fmt.Fprintf(&b, "  mirrors = [%s]\n", quoteAll(m))
		}
	}
	if len(mirrors) > 0 && !seen["docker.io"] {
		fmt.Fprintf(&b, "\n[registry.\"docker.io\"]\n  mirrors = [%s]\n", quoteAll(mirrors))
	}
	return b.String()
}

// buildkitdEnv are the variables buildkitd gets of the environment it is
// given.
var buildkitdEnv = append([]string{"PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"ftp_proxy", "all_proxy", "FTP_PROXY", "ALL_PROXY"}, envlist.Proxy...)

// TraceSocket is the buildkitd.toml section that puts the engine's trace
// socket in its own directory. buildkitd's default is one path for the
// whole machine (/run/buildkit/otel-grpc.sock), so two engines starting at
// once (parallel steps, parallel tests) take it from each other and one
// fails with "address already in use".
func TraceSocket(dir string) string {
	return fmt.Sprintf("\n[otel]\n  socketPath = %q\n", filepath.Join(dir, "otel-grpc.sock"))
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
