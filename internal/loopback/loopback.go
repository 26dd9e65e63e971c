// Package loopback tells whether an HTTP request's Host header names this
// machine's loopback. A local server that checks it cannot be reached by DNS
// rebinding: a web page whose own name was made to resolve to 127.0.0.1
// still sends that name in Host, and is refused.
//
// Name is the rule for one name; Host and HostPort read a Host header with
// it, HostPort (and Request, for an *http.Request) also wanting the port the
// connection reached. The daemon's API and web UI use Request; the HTTP
// gateway, which is read-only and may sit behind a forwarded port, uses Host.
// All are pure functions, safe for concurrent use.
package loopback

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Name reports whether name, with no port and no brackets, is "localhost"
// or a loopback IP address as net.ParseIP reads it: "127.0.0.1", "::1",
// "::ffff:127.0.0.1". It is exact: "LOCALHOST", "localhost." and "127.1"
// are not loopback names to it.
func Name(name string) bool {
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// Host reports whether host, an HTTP Host header, names this machine's
// loopback on any port or none: "localhost", "LOCALHOST:8080",
// "127.0.0.1", "[::1]:80". The name "localhost" may be in any ASCII case
// (as DNS compares names); an IPv6 address must be in brackets; a port, if
// there is a colon, must be a decimal number below 65536.
func Host(host string) bool {
	name, port, ok := split(host)
	if !ok || (port != "" && !validPort(port)) {
		return false
	}
	return Name(name) || asciiLower(name) == "localhost"
}

// HostPort reports whether host, an HTTP Host header, names this
// machine's loopback with the port of local, the address the request's
// connection reached ("127.0.0.1:5001"): a loopback name without a port, or
// with another one, is refused, as is "localhost" in upper case.
func HostPort(host, local string) bool {
	name, port, ok := split(host)
	if !ok || port == "" || !Name(name) {
		return false
	}
	_, lport, err := net.SplitHostPort(local)
	return err == nil && lport == port
}

// Request is HostPort of r's Host and the local address of r's connection
// (http.LocalAddrContextKey, which net/http's server sets); a request
// without one is refused.
func Request(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && HostPort(r.Host, local.String())
}

// split cuts a Host header into its name and port ("" when it has none).
// Brackets go around an IPv6 address, and only around one.
func split(host string) (name, port string, ok bool) {
	if rest, found := strings.CutPrefix(host, "["); found {
		name, rest, found = strings.Cut(rest, "]")
		if !found || !strings.Contains(name, ":") {
			return "", "", false
		}
		if rest == "" {
			return name, "", true
		}
		port, found = strings.CutPrefix(rest, ":")
		return name, port, found && port != ""
	}
	name, port, found := strings.Cut(host, ":")
	if strings.ContainsAny(name, "[]") || strings.Contains(port, ":") || (found && port == "") {
		return "", "", false
	}
	return name, port, true
}

// validPort reports whether p is a port number: 1 to 5 decimal digits,
// below 65536.
func validPort(p string) bool {
	_, err := strconv.ParseUint(p, 10, 16)
	return err == nil && len(p) <= 5
}

// asciiLower is s with its ASCII letters in lower case and nothing else
// changed: strings.ToLower and strings.EqualFold would also take
// "localhoſt" (a long s) for "localhost".
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
