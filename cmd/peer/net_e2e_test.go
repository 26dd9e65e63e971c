package main

// End-to-end tests of the network settings: caps, the swarm key, and the
// stale shares status reports.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peer-project/peer/daemon"
)

// shareJSON shares path through the daemon on home and returns the share.
func shareJSON(t *testing.T, home, path string) daemon.ShareInfo {
	t.Helper()
	var sh daemon.ShareInfo
	if err := json.Unmarshal([]byte(ok(t, "share", "--home", home, "--json", path)), &sh); err != nil {
		t.Fatal(err)
	}
	return sh
}

func statusJSON(t *testing.T, home string) daemon.StatusInfo {
	t.Helper()
	var st daemon.StatusInfo
	if err := json.Unmarshal([]byte(ok(t, "status", "--home", home, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRateCaps: a daemon started with --upload-rate 1MiB sends a 4 MiB
// file no faster than that, and a foreground get with --download-rate
// 1MiB receives no faster than that from two sources. Only upper bounds
// are asserted: a slow machine makes a transfer slower, never faster.
func TestRateCaps(t *testing.T) {
	const size, capBps = 4 << 20, 1 << 20
	a := startDaemon(t, "--upload-rate", "1MiB", "--dht", "off")
	b := startDaemon(t, "--dht", "off")
	if st := statusJSON(t, a.home); st.Limits.UploadRate != capBps || st.Limits.DownloadRate != 0 {
		t.Fatalf("status of A: limits %+v, want an upload cap of %d", st.Limits, capBps)
	}
	src := filepath.Join(t.TempDir(), "four.bin")
	data := randomBytes(size, 11)
	writeFile(t, src, data)
	sh := shareJSON(t, a.home, src)

	destB := filepath.Join(t.TempDir(), "four.bin")
	res := lastDone(t, ok(t, "get", "--home", b.home, "--json", "-o", destB, sh.Ticket))
	sameTree(t, filepath.Dir(destB), map[string][]byte{"four.bin": data})
	rate := float64(size) / res.Seconds
	t.Logf("upload cap %d B/s: B fetched %d bytes in %.2f s, %.0f B/s (%.2f× the cap)", capBps, size, res.Seconds, rate, rate/capBps)
	if rate > 1.1*capBps {
		t.Errorf("A sent %.0f B/s with --upload-rate 1MiB: %.2f× the cap", rate, rate/capBps)
	}

	// C, in the foreground, from A (capped) and B (not): its own cap holds.
	destC := filepath.Join(t.TempDir(), "four.bin")
	res = lastDone(t, ok(t, "get", "--home", t.TempDir(), "--json", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off",
		"--download-rate", "1MiB", "--peer", b.info.Addrs[0], "-o", destC, sh.Ticket))
	sameTree(t, filepath.Dir(destC), map[string][]byte{"four.bin": data})
	rate = float64(size) / res.Seconds
	t.Logf("download cap %d B/s: C fetched from %d peers in %.2f s, %.0f B/s (%.2f× the cap)", capBps, len(res.FromPeers), res.Seconds, rate, rate/capBps)
	if rate > 1.1*capBps {
		t.Errorf("C received %.0f B/s with --download-rate 1MiB: %.2f× the cap", rate, rate/capBps)
	}
}

// writeSwarmKey writes a new swarm.key to path with mode perm.
func writeSwarmKey(t *testing.T, path string, perm os.FileMode) []byte {
	t.Helper()
	var k [32]byte
	rand.Read(k[:])
	text := []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(k[:]) + "\n")
	if err := os.WriteFile(path, text, perm); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, perm) // past the umask
	return text
}

// TestSwarmKey: daemons with the same swarm key (one by --swarm-key, one
// from swarm.key in its home) exchange a file; a node without it, or with
// another key, cannot fetch it. A key readable by others is refused.
func TestSwarmKey(t *testing.T) {
	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, "net.key")
	text := writeSwarmKey(t, keyFile, 0o600)

	// A key readable by others: refused with what to do.
	loose := filepath.Join(keyDir, "loose.key")
	writeSwarmKey(t, loose, 0o644)
	fails(t, "chmod 600", "daemon", "--home", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--swarm-key", loose)

	a := startDaemon(t, "--swarm-key", keyFile, "--dht", "off")
	homeB := t.TempDir()
	if err := os.WriteFile(filepath.Join(homeB, daemon.SwarmKeyFile), text, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startDaemonIn(t, homeB, "--dht", "off")
	for _, d := range []*daemonProc{a, b} {
		if st := statusJSON(t, d.home); !st.PrivateNetwork {
			t.Fatalf("status of %s: not a private network", d.home)
		}
		for _, addr := range d.info.Addrs {
			if !strings.Contains(addr, "/tcp/") {
				t.Fatalf("a keyed daemon listens on %s", addr)
			}
		}
	}
	src := filepath.Join(t.TempDir(), "secret.bin")
	data := randomBytes(300<<10, 5)
	writeFile(t, src, data)
	sh := shareJSON(t, a.home, src)
	destB := filepath.Join(t.TempDir(), "secret.bin")
	lastDone(t, ok(t, "get", "--home", b.home, "--json", "-o", destB, sh.Ticket))
	sameTree(t, filepath.Dir(destB), map[string][]byte{"secret.bin": data})

	// No key, or another key: the ticket's address does not answer them.
	other := filepath.Join(keyDir, "other.key")
	writeSwarmKey(t, other, 0o600)
	for _, extra := range [][]string{nil, {"--swarm-key", other}} {
		args := append([]string{"get", "--home", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off",
			"--find-timeout", "2s", "-o", filepath.Join(t.TempDir(), "secret.bin")}, extra...)
		r := peerCmd(t, nil, append(args, sh.Ticket)...)
		if r.code == 0 || !strings.Contains(r.stderr, "no peer provides") {
			t.Fatalf("get %v without A's key: exit %d, stderr %q; want no peer found", extra, r.code, r.stderr)
		}
	}
}

// TestStatusStaleShare: once a shared file is edited (and a read finds
// it changed), status lists the share as stale and says what to do; after
// sharing it again and unsharing the old root, nothing is stale.
func TestStatusStaleShare(t *testing.T) {
	a := startDaemon(t, "--dht", "off")
	src := filepath.Join(t.TempDir(), "draft.txt")
	writeFile(t, src, []byte(strings.Repeat("first draft\n", 1000)))
	sh := shareJSON(t, a.home, src)
	if st := statusJSON(t, a.home); len(st.StaleShares) != 0 {
		t.Fatalf("stale before any edit: %+v", st.StaleShares)
	}
	writeFile(t, src, []byte(strings.Repeat("second draft, longer\n", 1000)))
	// Reading the share finds the edit: the old content is not served.
	if r := peerCmd(t, nil, "get", "--home", a.home, "-o", "-", sh.Root); r.code == 0 {
		t.Fatalf("streaming an edited share served %d bytes", len(r.stdout))
	}
	st := statusJSON(t, a.home)
	if len(st.StaleShares) != 1 || st.StaleShares[0].Root != sh.Root || st.StaleShares[0].Path != src || !st.StaleShares[0].Stale {
		t.Fatalf("stale shares %+v, want %s at %s", st.StaleShares, sh.Root, src)
	}
	text := ok(t, "status", "--home", a.home)
	for _, want := range []string{"changed on disk since shared", sh.Root + "  " + src, "peer share PATH"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	again := shareJSON(t, a.home, src)
	ok(t, "unshare", "--home", a.home, sh.Root)
	if st := statusJSON(t, a.home); len(st.StaleShares) != 0 || st.Shares != 1 || again.Root == sh.Root {
		t.Fatalf("after sharing again: stale %+v, %d shares, root %s (was %s)", st.StaleShares, st.Shares, again.Root, sh.Root)
	}
}
