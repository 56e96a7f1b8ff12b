//go:build !linux

package cli

import "crypto/x509"

// shield reads the system's CA certificates before the executor starts
// (Kaniko runs on Linux only; see shield_linux.go).
func shield() error {
	_, _ = x509.SystemCertPool()
	return nil
}
