package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
)

// TLSHint says what to do about a registry whose certificate did not
// verify: give its CA, or, knowingly, skip the check. PLUGIN_INSECURE is
// named because users migrating from docker's insecure-registries expect
// it to do that, and it does not.
const TLSHint = "give the registry's CA with PLUGIN_REGISTRY_CERTIFICATE (or, unsafely, PLUGIN_SKIP_TLS_VERIFY=true; PLUGIN_INSECURE allows plain HTTP only and does not skip this check)"

// IsCertError reports whether err is, or wraps, a certificate that did
// not verify: Go's TLS client's CertificateVerificationError, or one of
// crypto/x509's verification errors (an unknown authority, a name the
// certificate is not for, an expired or otherwise invalid certificate,
// no system roots). Other TLS failures (a handshake refused, a server
// that does not speak TLS) are not: giving a CA would not mend them.
func IsCertError(err error) bool {
	if err == nil {
		return false
	}
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		roots   x509.SystemRootsError
		crit    x509.UnhandledCriticalExtension
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) ||
		errors.As(err, &invalid) || errors.As(err, &roots) || errors.As(err, &crit)
}

// CertError is an error of a registry whose certificate did not verify,
// with what to do about it (TLSHint).
type CertError struct{ Err error }

func (e *CertError) Error() string { return e.Err.Error() + "; " + TLSHint }
func (e *CertError) Unwrap() error { return e.Err }

// TLSAdvice is err with TLSHint when it is a certificate error
// (IsCertError), once; err as it is otherwise. Every client hoist makes of
// a registry (the push, a registry source, the vulnerability database)
// says it so.
func TLSAdvice(err error) error {
	var done *CertError
	if !IsCertError(err) || errors.As(err, &done) {
		return err
	}
	return &CertError{Err: err}
}

// TLSAdviceText is TLSAdvice for an error known only by its text:
// BuildKit's, which reaches hoist over gRPC as a message. Its certificate
// errors read as Go prints them ("tls: failed to verify certificate:
// x509: ..." or "x509: ...").
func TLSAdviceText(msg string) string {
	if strings.Contains(msg, "tls: failed to verify certificate") || strings.Contains(msg, "x509: ") {
		return msg + "; " + TLSHint
	}
	return msg
}
