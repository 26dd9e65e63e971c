package loopback

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	for name, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.255.0.9": true, "::1": true,
		"0:0:0:0:0:0:0:1": true, "::ffff:127.0.0.1": true, // IPv4-mapped IPv6
		"":           false,
		"LOCALHOST":  false, // exact; Host takes any case
		"localhost.": false, // a fully qualified form: no browser sends it
		"127.1":      false, // not a form net.ParseIP reads (browsers send 127.0.0.1)
		"127.0.0.01": false, "0x7f.0.0.1": false, "2130706433": false,
		"[::1]": false, "::1%lo": false, "::ffff:10.0.0.1": false,
		"0.0.0.0": false, "::": false, "10.0.0.1": false,
		"localhost.evil.example": false, "evil.example": false,
		"127.0.0.1.nip.io": false, "localtest.me": false, // names that resolve to 127.0.0.1
	} {
		if got := Name(name); got != want {
			t.Errorf("Name(%q) = %v, want %v", name, got, want)
		}
	}
}

// hostCases holds, for each Host header, what Host and HostPort (with the
// connection on port 8080) answer.
var hostCases = []struct {
	host           string
	loose, exactly bool
}{
	{"localhost:8080", true, true},
	{"127.0.0.1:8080", true, true},
	{"[::1]:8080", true, true},
	{"[::ffff:127.0.0.1]:8080", true, true},
	{"localhost", true, false}, // no port: Host takes it, HostPort does not
	{"127.0.0.1", true, false},
	{"[::1]", true, false},
	{"localhost:1", true, false}, // another port
	{"127.0.0.1:80", true, false},
	{"LOCALHOST:8080", true, false}, // upper case
	{"LocalHost", true, false},
	{"localhoſt:8080", false, false}, // a long s, which strings.EqualFold takes for s
	{"", false, false},
	{":8080", false, false},
	{"localhost:", false, false},
	{"localhost:http", false, false},
	{"localhost:65536", false, false},
	{"localhost:080800", false, false},
	{"localhost.:8080", false, false},
	{"127.1:8080", false, false},
	{"127.0.0.01:8080", false, false},
	{"::1", false, false}, // IPv6 without brackets
	{"::1:8080", false, false},
	{"[::1]8080", false, false},
	{"[::1]:", false, false},
	{"[::1", false, false},
	{"[localhost]:8080", false, false}, // brackets only around IPv6
	{"[127.0.0.1]:8080", false, false},
	{"[[::1]]:8080", false, false},
	{"localhost:8080:8080", false, false},
	{"evil.example", false, false}, // DNS rebinding: the page's own name
	{"evil.example:8080", false, false},
	{"localhost.evil.example:8080", false, false},
	{"127.0.0.1.nip.io:8080", false, false},
	{"0.0.0.0:8080", false, false},
	{"[::]:8080", false, false},
	{"192.0.2.1:8080", false, false},
	{"user@localhost:8080", false, false},
	{"localhost:8080/x", false, false},
}

func TestHost(t *testing.T) {
	for _, c := range hostCases {
		if got := Host(c.host); got != c.loose {
			t.Errorf("Host(%q) = %v, want %v", c.host, got, c.loose)
		}
		for _, local := range []string{"127.0.0.1:8080", "[::1]:8080"} {
			if got := HostPort(c.host, local); got != c.exactly {
				t.Errorf("HostPort(%q, %q) = %v, want %v", c.host, local, got, c.exactly)
			}
		}
	}
	if HostPort("localhost:8080", "") || HostPort("localhost:8080", "garbage") {
		t.Error("HostPort took a local address without a port")
	}
}

func TestRequest(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	for _, c := range hostCases {
		r, err := http.NewRequest("GET", "http://127.0.0.1:8080/", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = c.host
		if Request(r) {
			t.Errorf("Request with Host %q and no local address passed", c.host)
		}
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
		if got := Request(r); got != c.exactly {
			t.Errorf("Request with Host %q = %v, want %v", c.host, got, c.exactly)
		}
	}
}

// FuzzHost checks Host and HostPort against net/url's reading of the same
// header: whatever they take, url.Parse takes too, with a loopback name and
// the same port.
func FuzzHost(f *testing.F) {
	for _, c := range hostCases {
		f.Add(c.host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		loose, exactly := Host(host), HostPort(host, "127.0.0.1:8080")
		if exactly && !loose {
			t.Fatalf("HostPort took %q, Host did not", host)
		}
		if !loose {
			return
		}
		u, err := url.Parse("http://" + host + "/")
		if err != nil || u.Host != host {
			t.Fatalf("Host took %q, which url.Parse reads as %q, %v", host, u.Host, err)
		}
		name := u.Hostname()
		if !Name(name) && strings.ToLower(name) != "localhost" {
			t.Fatalf("Host took %q, whose name %q is not loopback", host, name)
		}
		if exactly && (u.Port() != "8080" || !Name(name)) {
			t.Fatalf("HostPort took %q: name %q, port %q", host, name, u.Port())
		}
		if !Host(strings.ToUpper(host)) {
			t.Fatalf("Host took %q but not in upper case", host)
		}
	})
}
