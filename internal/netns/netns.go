package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Check reports why this process can't make network namespaces, or nil
// when it can: it needs root, ip and iptables, and makes and removes one
// namespace to be sure.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("netns: not root (network namespaces need root; CI runs as root)")
	}
	for _, cmd := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return fmt.Errorf("netns: no %s command (.ci/run installs iproute2 and iptables): %w", cmd, err)
		}
	}
	name := "peercheck-" + strconv.Itoa(os.Getpid()) + "-" + suffix()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netns: ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	defer exec.Command("ip", "netns", "del", name).Run()
	if out, err := exec.Command("ip", "netns", "exec", name, "iptables", "-t", "nat", "-L", "-n").CombinedOutput(); err != nil {
		return fmt.Errorf("netns: iptables in a namespace: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Require skips t when Check fails, with Check's reason, unless the CI
// variable is "true": there it fails t.
func Require(t testing.TB) {
	t.Helper()
	if err := Check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI must run the network-namespace tests)", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

func suffix() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Lab is a set of network namespaces that one test made. Its methods call
// t.Fatal on failure, so call them from the test's goroutine only.
type Lab struct {
	t      testing.TB
	prefix string
	names  []string
}

// New returns an empty Lab whose namespaces t.Cleanup removes (killing
// whatever still runs in them first). Call Require before.
func New(t testing.TB) *Lab {
	t.Helper()
	l := &Lab{t: t, prefix: "peer" + strconv.Itoa(os.Getpid()) + suffix()}
	t.Cleanup(l.close)
	return l
}

// close kills the processes left in the Lab's namespaces and deletes them.
func (l *Lab) close() {
	for i := len(l.names) - 1; i >= 0; i-- {
		ns := l.names[i]
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
					if p, err := os.FindProcess(pid); err == nil {
						p.Kill()
					}
				}
			}
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			l.t.Logf("netns: removing %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
		}
	}
	l.names = nil
}

// Add makes a namespace with its loopback up and IPv6 off (no router
// solicitations or other chatter), and returns its full name.
func (l *Lab) Add(name string) string {
	l.t.Helper()
	ns := l.prefix + "-" + name
	l.run("ip", "netns", "add", ns)
	l.names = append(l.names, ns)
	l.Run(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
	l.Run(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
	l.Run(ns, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs a command inside namespace ns and fails the test if it fails.
func (l *Lab) Run(ns string, args ...string) {
	l.t.Helper()
	l.run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func (l *Lab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("netns: %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// Command returns a command that runs name with args inside namespace ns.
func (l *Lab) Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Veth links namespace nsA's interface ifA to nsB's ifB and sets both up.
// addrA and addrB (CIDR, e.g. "10.0.1.1/24") are assigned unless empty.
func (l *Lab) Veth(nsA, ifA, addrA, nsB, ifB, addrB string) {
	l.t.Helper()
	l.run("ip", "-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	for _, side := range [][3]string{{nsA, ifA, addrA}, {nsB, ifB, addrB}} {
		if side[2] != "" {
			l.run("ip", "-n", side[0], "addr", "add", side[2], "dev", side[1])
		}
		l.run("ip", "-n", side[0], "link", "set", side[1], "up")
	}
}

// NATKind is how a NAT router maps and filters.
type NATKind int

const (
	// ConeNAT is Linux masquerade as it comes: an inside address and port
	// keeps its port outside when it is free, whatever the destination
	// (endpoint-independent mapping), and only replies to what the inside
	// sent come back in (address- and port-dependent filtering): a
	// "port-restricted cone" NAT, like most home routers. Unsolicited
	// packets from outside are dropped.
	ConeNAT NATKind = iota
	// SymmetricNAT is masquerade --random-fully: every new connection gets
	// a new random port outside (endpoint-dependent mapping), so the port
	// one peer observes is not the one another will see; filtering as
	// ConeNAT. Hole punching can't guess such ports.
	SymmetricNAT
)

// String names the kind.
func (k NATKind) String() string {
	switch k {
	case ConeNAT:
		return "port-restricted cone NAT (masquerade)"
	case SymmetricNAT:
		return "symmetric NAT (masquerade --random-fully)"
	}
	return fmt.Sprintf("NATKind(%d)", int(k))
}

// Site is a test host behind its own NAT router.
type Site struct {
	NS       string // the host's namespace
	NAT      string // the router's namespace
	IP       string // the host's address, behind the NAT
	PublicIP string // the router's outside address
}

// Topology is an "internet" (one bridge) with a public host on it and two
// sites, each behind its own NAT.
type Topology struct {
	Public   string // namespace of the internet's bridge and its public host
	PublicIP string // the public host's address
	Sites    [2]Site
}

// TwoNATs builds a Topology: namespace "pub" holds a bridge with address
// 192.0.0.129/26; routers "nat0" and "nat1" sit on it as 192.0.0.130 and
// .131 and masquerade for hosts "host0" (10.0.1.2) and "host1" (10.0.2.2)
// as kinds says. Hosts behind one NAT can't reach the other's private
// addresses (no route): only the public ones.
func (l *Lab) TwoNATs(kinds [2]NATKind) Topology {
	l.t.Helper()
	pub := l.Add("pub")
	l.Run(pub, "ip", "link", "add", "br0", "type", "bridge")
	l.Run(pub, "ip", "addr", "add", "192.0.0.129/26", "dev", "br0")
	l.Run(pub, "ip", "link", "set", "br0", "up")
	top := Topology{Public: pub, PublicIP: "192.0.0.129"}
	for i, kind := range kinds {
		nat := l.Add("nat" + strconv.Itoa(i))
		host := l.Add("host" + strconv.Itoa(i))
		site := Site{NS: host, NAT: nat, IP: fmt.Sprintf("10.0.%d.2", i+1), PublicIP: fmt.Sprintf("192.0.0.%d", 130+i)}
		port := "p" + strconv.Itoa(i)
		l.Veth(nat, "wan", site.PublicIP+"/26", pub, port, "")
		l.Run(pub, "ip", "link", "set", port, "master", "br0")
		l.Veth(nat, "lan", fmt.Sprintf("10.0.%d.1/24", i+1), host, "eth0", site.IP+"/24")
		l.Run(host, "ip", "route", "add", "default", "via", fmt.Sprintf("10.0.%d.1", i+1))
		l.Run(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		masq := []string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"}
		if kind == SymmetricNAT {
			masq = append(masq, "--random-fully")
		}
		l.Run(nat, masq...)
		for _, chain := range []string{"FORWARD", "INPUT"} {
			l.Run(nat, "iptables", "-A", chain, "-i", "wan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
			l.Run(nat, "iptables", "-A", chain, "-i", "wan", "-j", "DROP")
		}
		top.Sites[i] = site
	}
	return top
}
