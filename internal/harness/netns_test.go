package harness

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The test binary's main goroutine keeps the main thread, which Go never
// ends: a goroutine that ends locked to its thread ends that thread.
func init() { runtime.LockOSThread() }

// The namespace outlives the goroutine that made it, even one that ends
// locked to its thread (Go then ends the thread, and Pdeathsig, tied to
// the thread that started the namespace's holder, would kill the holder
// and the namespace with it).
func TestNetnsOutlivesItsMakersThread(t *testing.T) {
	t.Parallel()
	made := make(chan *Netns)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		made <- NewNetns(t)
	}()
	n := <-made
	time.Sleep(500 * time.Millisecond) // the thread has ended, and any signal its end sends arrived
	out, err := exec.Command(n.Enter[0], append(n.Enter[1:], "ip", "-4", "-o", "addr", "show")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), " "+n.IP+"/30") {
		t.Errorf("the namespace is gone after its maker's thread ended: %v\n%s", err, out)
	}
}
