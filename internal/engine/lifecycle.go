package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Close disconnects and, when this run started the engine and Keep is not
// set, stops it.
func (e *Engine) Close() error {
	if e.Client != nil {
		e.Client.Close()
	}
	if e.users == nil {
		return nil // a remote builder
	}
	unlockFile(e.users)
	e.users = nil
	// The last run using an engine that a run (not hoist engine start)
	// started stops it: it is the one that gets the lock exclusively.
	if _, err := os.Stat(filepath.Join(e.opts.Dir, "ephemeral")); err != nil {
		if e.Started {
			e.detach()
		}
		return nil
	}
	last, err := os.OpenFile(filepath.Join(e.opts.Dir, "users.lock"), os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	defer last.Close()
	if syscall.Flock(int(last.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if e.Started {
			e.detach()
		}
		return nil // another run still uses it; the last one stops it
	}
	defer syscall.Flock(int(last.Fd()), syscall.LOCK_UN)
	os.Remove(filepath.Join(e.opts.Dir, "ephemeral"))
	if e.Started {
		return e.stop()
	}
	return Stop(e.opts.Dir)
}

// detach leaves a daemon this run started running for others.
func (e *Engine) detach() {
	if e.cmd != nil && e.cmd.Process != nil {
		e.cmd.Process.Release()
	}
}

func (e *Engine) stop() error {
	if e.cmd == nil || e.cmd.Process == nil {
		return nil
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(20 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
	os.Remove(filepath.Join(e.opts.Dir, "buildkitd.pid"))
	return nil
}

// Status reports whether the embedded engine of dir answers, and its pid.
func Status(ctx context.Context, dir string) (pid int, err error) {
	pid, _ = recordedPid(dir)
	c, _, err := connect(ctx, Socket(dir), Options{}, 2*time.Second, nil)
	if err != nil {
		return pid, err
	}
	c.Close()
	return pid, nil
}

// Stop stops a long-lived embedded engine started by `hoist engine start`.
func Stop(dir string) error {
	pid, err := recordedPid(dir)
	if err != nil {
		return err
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		os.Remove(filepath.Join(dir, "buildkitd.pid"))
		return fmt.Errorf("engine pid %d: %w", pid, err)
	}
	for i := 0; i < 100; i++ {
		if p.Signal(syscall.Signal(0)) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Remove(filepath.Join(dir, "buildkitd.pid"))
	return nil
}
