//go:build linux

package netns

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// roleEnv makes the test binary a tiny TCP endpoint inside a namespace:
// "listen ADDR" accepts connections and prints each peer's address;
// "dial FROMPORT ADDR" dials from a fixed local port and prints "ok" or
// "fail".
const roleEnv = "NETNS_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(child(strings.Fields(role)))
	}
	os.Exit(m.Run())
}

func child(args []string) int {
	switch args[0] {
	case "listen":
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			fmt.Println("ERR", err)
			return 1
		}
		fmt.Println("LISTENING")
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			fmt.Println("FROM", c.RemoteAddr())
			c.Close()
		}
	case "dial":
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{Port: atoi(args[1])},
			Control: func(_, _ string, c syscall.RawConn) error {
				var err error
				c.Control(func(fd uintptr) {
					err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
				})
				return err
			}}
		c, err := d.Dial("tcp", args[2])
		if err != nil {
			fmt.Println("fail")
			return 0
		}
		c.Close()
		fmt.Println("ok")
		return 0
	}
	return 2
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// start runs the test binary in ns with role and returns a scanner of its
// output; t.Cleanup kills it.
func start(t *testing.T, l *Lab, ns, role string) *bufio.Scanner {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := l.Command(ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return bufio.NewScanner(out)
}

func line(t *testing.T, s *bufio.Scanner) string {
	t.Helper()
	if !s.Scan() {
		t.Fatalf("child ended: %v", s.Err())
	}
	return s.Text()
}

// TestTwoNATs checks the topology: a host behind each NAT reaches the
// public host, which sees the NAT's address; the same inside port keeps
// its port outside behind ConeNAT and gets a new one per connection behind
// SymmetricNAT; nothing outside reaches inside unsolicited, and a site
// can't reach the other's private address.
func TestTwoNATs(t *testing.T) {
	Require(t)
	l := New(t)
	top := l.TwoNATs([2]NATKind{ConeNAT, SymmetricNAT})
	var seen [2][]string
	for _, port := range []string{"7000", "7001"} {
		ln := start(t, l, top.Public, "listen "+top.PublicIP+":"+port)
		if got := line(t, ln); got != "LISTENING" {
			t.Fatal(got)
		}
		for s, site := range top.Sites {
			dial := start(t, l, site.NS, "dial 5555 "+top.PublicIP+":"+port)
			if got := line(t, dial); got != "ok" {
				t.Fatalf("site %d to the public host: %s", s, got)
			}
			from := strings.TrimPrefix(line(t, ln), "FROM ")
			host, p, _ := net.SplitHostPort(from)
			if host != site.PublicIP {
				t.Fatalf("public host saw site %d as %s, want its NAT's %s", s, from, site.PublicIP)
			}
			seen[s] = append(seen[s], p)
		}
	}
	t.Logf("outside ports of inside port 5555: cone %v, symmetric %v", seen[0], seen[1])
	if seen[0][0] != "5555" || seen[0][1] != "5555" {
		t.Errorf("cone NAT changed the port: %v", seen[0])
	}
	if seen[1][0] == seen[1][1] {
		t.Errorf("symmetric NAT kept one outside port for two destinations: %v", seen[1])
	}
	ln := start(t, l, top.Sites[0].NS, "listen 0.0.0.0:7002")
	if got := line(t, ln); got != "LISTENING" {
		t.Fatal(got)
	}
	if got := line(t, start(t, l, top.Public, "dial 0 "+top.Sites[0].PublicIP+":7002")); got != "fail" {
		t.Errorf("unsolicited connection through the NAT: %s", got)
	}
	if got := line(t, start(t, l, top.Sites[1].NS, "dial 0 "+top.Sites[0].IP+":7002")); got != "fail" {
		t.Errorf("site 1 reached site 0's private address: %s", got)
	}
}
