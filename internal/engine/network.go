package engine

// The network of RUN steps in the embedded engine. Left to itself, a
// buildkitd with no CNI configuration runs every RUN step in the host's
// network namespace, where it reaches each service on the machine's
// loopback (a local registry that takes unauthenticated pushes, a
// database, an agent's API). hoist starts its engine the way `docker
// build` runs a RUN step: in a network namespace of its own, on a bridge
// with NAT to whatever the machine can reach (BuildKit's "bridge" worker
// network, made by the CNI plugins bridge, host-local, loopback and
// firewall). The host's network is used only when a run asks for it
// (PLUGIN_NETWORK=host).

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hoist-build/hoist/internal/envlist"
)

// defaultCNIDirs are where the embedded engine looks for the CNI plugins:
// Debian's containernetworking-plugins (and hoist's BuildKit image),
// Fedora's, and the CNI project's own default.
var defaultCNIDirs = []string{"/usr/lib/cni", "/usr/libexec/cni", "/opt/cni/bin"}

// cniPlugins are the plugins BuildKit's bridge network runs.
var cniPlugins = []string{"bridge", "host-local", "loopback", "firewall"}

// bridgePool holds the subnets of the engines' bridges, one /24 each: a
// range that Docker, BuildKit's own default (10.10.0.0/16), Podman and the
// usual Kubernetes networks leave alone. A subnet already routed on the
// machine is skipped.
var bridgePool = netip.MustParsePrefix("10.177.0.0/16")

// Network is how the embedded engine's worker gives RUN steps a network
// (buildkitd.toml's [worker.oci] network settings).
type Network struct {
	// Mode is "bridge" (a namespace of its own, on Bridge) or "host".
	Mode string
	// Bridge is the Linux bridge's name, Subnet its IPv4 subnet, CNIDir
	// the directory of the CNI plugins.
	Bridge, Subnet, CNIDir string
}

// isolated reports whether a worker network label, as BuildKit reports it
// (org.mobyproject.buildkit.worker.network), gives RUN steps a network
// namespace of their own: "cni" does; "host" is the host's network.
func isolated(workerNetwork string) bool { return workerNetwork == "cni" }

// hostAllowed reports whether a run's RUN network (PLUGIN_NETWORK) may be
// served by an engine whose default is the host's network: host uses it
// by choice, none never uses the default.
func hostAllowed(runNetwork string) bool { return runNetwork == "host" || runNetwork == "none" }

// ErrNoBridge marks a machine where RUN steps cannot get a network of
// their own.
var ErrNoBridge = errors.New("RUN steps cannot get a network of their own on this machine")

// BridgeFor plans the bridge network of the engine whose state directory
// is dir: a bridge named after the directory (so that engines of several
// directories do not share, and remove, one another's bridge) on a /24 of
// bridgePool that no route of this machine covers. It fails with
// ErrNoBridge when the CNI plugins are missing, or iptables is not on
// pathList (the PATH buildkitd, and so the CNI plugins, run with).
func BridgeFor(dir string, cniDirs []string, pathList string) (Network, error) {
	if cniDirs == nil {
		cniDirs = defaultCNIDirs
	}
	cniDir, err := findCNI(cniDirs)
	if err != nil {
		return Network{}, err
	}
	// The bridge plugin masquerades, and the firewall plugin filters,
	// with iptables.
	if _, ok := envlist.LookPath("iptables", pathList); !ok {
		return Network{}, fmt.Errorf("%w: iptables is not on PATH (the CNI bridge and firewall plugins run it)", ErrNoBridge)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Network{}, err
	}
	sum := sha256.Sum256([]byte(abs))
	name := "hoist-" + hex.EncodeToString(sum[:4]) // 14 of the 15 characters an interface name may have
	routes := hostRoutes(name)
	first := int(binary.BigEndian.Uint16(sum[4:6]))
	for i := 0; i < 256; i++ {
		subnet := subnetAt((first + i) % 256)
		if !overlapsAny(subnet, routes) {
			return Network{Mode: "bridge", Bridge: name, Subnet: subnet.String(), CNIDir: cniDir}, nil
		}
	}
	return Network{}, fmt.Errorf("%w: every /24 of %s is already routed on this machine", ErrNoBridge, bridgePool)
}

func findCNI(dirs []string) (string, error) {
	var missing []string
	for _, d := range dirs {
		ok := true
		for _, p := range cniPlugins {
			if fi, err := os.Stat(filepath.Join(d, p)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				ok = false
				break
			}
		}
		if ok {
			return d, nil
		}
		missing = append(missing, d)
	}
	return "", fmt.Errorf("%w: the CNI plugins %s are in none of %s", ErrNoBridge, strings.Join(cniPlugins, ", "), strings.Join(missing, ", "))
}

// subnetAt is the i-th /24 of bridgePool.
func subnetAt(i int) netip.Prefix {
	a := bridgePool.Addr().As4()
	a[2] = byte(i)
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

func overlapsAny(p netip.Prefix, routes []netip.Prefix) bool {
	for _, r := range routes {
		if r.Overlaps(p) {
			return true
		}
	}
	return false
}

// hostRoutes lists the IPv4 routes of this network namespace (the default
// route aside), except those on the bridge named own (left by an engine of
// the same directory that did not stop cleanly, and reused).
func hostRoutes(own string) []netip.Prefix {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil
	}
	defer f.Close()
	var routes []netip.Prefix
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...,
		// addresses in hex, in the machine's (little-endian) byte order.
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[0] == own {
			continue
		}
		dst, err1 := strconv.ParseUint(fields[1], 16, 32)
		mask, err2 := strconv.ParseUint(fields[7], 16, 32)
		if err1 != nil || err2 != nil || mask == 0 {
			continue
		}
		var d, m [4]byte
		binary.LittleEndian.PutUint32(d[:], uint32(dst))
		binary.LittleEndian.PutUint32(m[:], uint32(mask))
		bits := 0
		for _, b := range m {
			for ; b&0x80 != 0; b <<= 1 {
				bits++
			}
		}
		routes = append(routes, netip.PrefixFrom(netip.AddrFrom4(d), bits).Masked())
	}
	return routes
}

// dropNamespaces unmounts and removes the network namespaces that a
// buildkitd which could not set up its bridge left under the engine's
// directory (BuildKit cleans them only when it next starts with CNI).
func dropNamespaces(dir string) {
	nsDir := filepath.Join(dir, "root", "net", "cni")
	entries, _ := os.ReadDir(nsDir)
	for _, e := range entries {
		p := filepath.Join(nsDir, e.Name())
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		_ = os.Remove(p)
	}
}
