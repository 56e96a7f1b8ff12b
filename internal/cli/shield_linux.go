package cli

import (
	"crypto/x509"
	"fmt"

	"golang.org/x/sys/unix"
)

// shield is the real binary's Env.Shield, called before the Kaniko
// executor starts: from then on the Dockerfile's RUN steps run as root in
// hoist's own container, and so may processes they leave behind, until
// the container ends. It changes the process for good, which is why only
// the command layer sets it (OSEnv), never a library call or a test that
// runs hoist in-process.
//
// hoist makes itself non-dumpable, so that they cannot read its
// environment or memory (/proc/PID/environ, /proc/PID/mem, which hold the
// step's secrets): the kernel then lets only a process with CAP_SYS_PTRACE
// in, which a container does not have unless it runs privileged or is
// given it. And it reads the system's CA certificates now, before a RUN
// step can add its own to the bundle: the push after the build trusts the
// certificates that were there before it.
func shield() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keep the build's RUN steps out of hoist's memory (prctl PR_SET_DUMPABLE): %w", err)
	}
	_, _ = x509.SystemCertPool()
	return nil
}
