package harness

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Netns is a network namespace a test made, joined to the host by a veth
// pair on a /30 of 10.200.0.0/16: the host's side is HostIP, the
// namespace's IP. IP is neither loopback nor routed anywhere else (the
// namespace has no default route): a "remote" registry address on this
// machine, as go-containerregistry sees a private network's registry.
type Netns struct {
	Name       string
	IP, HostIP string
	ip         string // the ip command
	hostLink   string
}

// netnsMu serialises picking a subnet within this process.
var netnsMu sync.Mutex

// NewNetns makes a network namespace with a veth pair to the host, on a
// /30 no interface of the host has yet; it is removed when the test
// ends. It needs root (CAP_NET_ADMIN) and iproute2's ip.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	ip := Need(t, "ip")
	netnsMu.Lock()
	defer netnsMu.Unlock()
	taken, err := exec.Command(ip, "-4", "-o", "addr", "show").Output()
	if err != nil {
		Missing(t, "ip addr show: %v", err)
	}
	id := randomHex(4)
	n := &Netns{Name: "hoist-test-" + id, ip: ip, hostLink: "hv" + id + "h"}
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
	nsLink := "hv" + id + "n"
	run := func(args ...string) error {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("netns", "add", n.Name); err != nil {
		Missing(t, "a network namespace cannot be made here (root and CAP_NET_ADMIN are needed): %v", err)
	}
	t.Cleanup(func() {
		// Deleting one end of the pair deletes both.
		run("link", "del", n.hostLink)
		run("netns", "del", n.Name)
	})
	for _, args := range [][]string{
		{"link", "add", n.hostLink, "type", "veth", "peer", "name", nsLink},
		{"link", "set", nsLink, "netns", n.Name},
		{"addr", "add", n.HostIP + "/30", "dev", n.hostLink},
		{"link", "set", n.hostLink, "up"},
		{"-n", n.Name, "addr", "add", n.IP + "/30", "dev", nsLink},
		{"-n", n.Name, "link", "set", nsLink, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
	} {
		if err := run(args...); err != nil {
			t.Fatalf("network namespace %s: %v", n.Name, err)
		}
	}
	return n
}
