// Package netns builds throwaway Linux network namespaces for tests: a
// Lab makes namespaces, veth pairs and NAT routers (iptables masquerade)
// and runs commands inside them, and removes everything in t.Cleanup, also
// when the test fails.
//
// No namespace of a Lab is linked to the root namespace or to any real
// interface: its veth pairs join only namespaces of the same Lab, so a
// packet sent inside one can reach only the Lab's own test hosts and never
// leaves the machine. The "public" addresses of TwoNATs are taken from
// 192.0.0.128/26 (IANA's protocol-assignment block, which nothing on the
// internet answers, yet go-multiaddr counts as public, so libp2p's AutoNAT,
// AutoRelay and hole punching treat them as internet addresses).
//
// Making namespaces needs root and the ip (iproute2) and iptables commands.
// Require skips a test with a message saying what is missing, except under
// CI (CI=true), where it fails the test: CI runs as root and installs them.
//
// A Lab is not safe for concurrent use; each test makes its own (names
// carry the process ID and a counter, so parallel tests don't collide).
package netns
