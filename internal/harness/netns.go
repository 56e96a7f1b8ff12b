package harness

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Netns is a network namespace a test made, joined to the host by a veth
// pair on a /30 of 10.200.0.0/16: the host's side is HostIP, the
// namespace's IP. IP is neither loopback nor routed anywhere else (the
// namespace has no default route): a "remote" registry address on this
// machine, as go-containerregistry sees a private network's registry.
//
// The namespace lives as long as a process of the test's holds it (no
// name in /run/netns): should the test binary die, the kernel removes it
// with the veth pair.
type Netns struct {
	IP, HostIP string
	// Enter is the command prefix that runs a program in the namespace.
	Enter []string
}

// netnsMu serialises picking a subnet within this process.
var netnsMu sync.Mutex

// NewNetns makes a network namespace with a veth pair to the host, on a
// /30 no interface of the host has yet; it is removed when the test
// ends. It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2's ip
// and util-linux's nsenter.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	ip, nsenter, sleep := Need(t, "ip"), Need(t, "nsenter"), Need(t, "sleep")
	// The holder: a process in a network namespace of its own, killed
	// with the test binary. Pdeathsig fires when the thread that started
	// it ends, not the process, and Go ends a thread whose goroutine
	// exits locked to it: the holder is started from a goroutine locked to
	// its thread, which lives until the holder is killed.
	holder := exec.Command(sleep, "3600")
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	started, release := make(chan error), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := holder.Start()
		started <- err
		if err == nil {
			<-release
		}
	}()
	if err := <-started; err != nil {
		Missing(t, "a network namespace cannot be made here (root with CAP_SYS_ADMIN and CAP_NET_ADMIN is needed): %v", err)
	}
	exited := make(chan struct{})
	go func() { holder.Wait(); close(exited) }()
	pid := strconv.Itoa(holder.Process.Pid)
	n := &Netns{Enter: []string{nsenter, "-t", pid, "-n", "--"}}
	id := randomHex(4)
	hostLink, nsLink := "hv"+id+"h", "hv"+id+"n"
	t.Cleanup(func() {
		holder.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
		close(release)
		// Gone with the namespace, unless the namespace was never given
		// its end.
		exec.Command(ip, "link", "del", hostLink).Run()
	})
	run := func(args ...string) error {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	netnsMu.Lock()
	defer netnsMu.Unlock()
	taken, err := exec.Command(ip, "-4", "-o", "addr", "show").Output()
	if err != nil {
		t.Fatalf("ip addr show: %v", err)
	}
	for attempt := 0; ; attempt++ {
		a, b := rand.IntN(256), 4*rand.IntN(64)
		n.HostIP, n.IP = fmt.Sprintf("10.200.%d.%d", a, b+1), fmt.Sprintf("10.200.%d.%d", a, b+2)
		if !strings.Contains(string(taken), " "+n.HostIP+"/") && !strings.Contains(string(taken), " "+n.IP+"/") {
			break
		}
		if attempt > 100 {
			t.Fatalf("no free /30 in 10.200.0.0/16")
		}
	}
	in := func(args ...string) []string { return append(append([]string{}, n.Enter...), args...) }
	for _, args := range [][]string{
		{ip, "link", "add", hostLink, "type", "veth", "peer", "name", nsLink},
		{ip, "link", "set", nsLink, "netns", pid},
		{ip, "addr", "add", n.HostIP + "/30", "dev", hostLink},
		{ip, "link", "set", hostLink, "up"},
		in(ip, "addr", "add", n.IP+"/30", "dev", nsLink),
		in(ip, "link", "set", nsLink, "up"),
		in(ip, "link", "set", "lo", "up"),
	} {
		if err := run(args...); err != nil {
			t.Fatalf("network namespace of pid %s: %v", pid, err)
		}
	}
	return n
}
