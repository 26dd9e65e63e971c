package main

// End-to-end tests: they build the peer binary and run real daemons and
// commands as processes on 127.0.0.1 (no mDNS: loopback only).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"go/build"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peer-project/peer/daemon"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm/wire"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// peerBin builds the binary once per test run.
func peerBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds the binary and runs processes")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "peer-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "peer")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(build.Default.GOROOT, "bin", "go")
		}
		out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	ipfsChildMain() // an IPFS node of the small internet: exits when PEER_IPFS_CHILD is set
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// cleanEnv is the environment without PEER_* variables, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEER_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

// peerCmd runs one command to its end (at most a minute).
func peerCmd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, peerBin(t), args...)
	cmd.Env = cleanEnv(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("peer %v: %v", args, err)
	}
	return r
}

// ok runs a command that must succeed.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := peerCmd(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("peer %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must fail with a message containing says.
func fails(t *testing.T, says string, args ...string) result {
	t.Helper()
	r := peerCmd(t, nil, args...)
	if r.code == 0 || !strings.Contains(r.stderr, says) {
		t.Fatalf("peer %s: exit %d, stderr %q; want a failure saying %q", strings.Join(args, " "), r.code, r.stderr, says)
	}
	return r
}

// lockedBuffer collects a process's stderr for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a running peer process whose stdout is read line by line.
type proc struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, closed at EOF
	stderr *lockedBuffer
	done   chan struct{}
	err    error
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(peerBin(t), args...))
}

// startCmd starts cmd (a peer command, perhaps wrapped) as startProc does.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	cmd.Env = cleanEnv()
	p := &proc{cmd: cmd, lines: make(chan string, 1024), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// line returns the next line of stdout, failing after d.
func (p *proc) line(t *testing.T, d time.Duration) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		return l, ok
	case <-time.After(d):
		t.Fatalf("%v: no output in %v; stderr:\n%s", p.cmd.Args, d, p.stderr)
		return "", false
	}
}

// signal sends sig and waits (at most 30 s) for the process to end.
func (p *proc) signal(t *testing.T, sig os.Signal) int {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%v did not stop in 30 s after %v; stderr:\n%s", p.cmd.Args, sig, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
	default:
		p.signal(t, syscall.SIGTERM)
	}
}

type daemonProc struct {
	*proc
	home string
	info daemonInfo
}

// startDaemon runs `peer daemon` on 127.0.0.1 and waits for its one line of
// JSON.
func startDaemon(t *testing.T, extra ...string) *daemonProc {
	t.Helper()
	return startDaemonIn(t, t.TempDir(), extra...)
}

// startDaemonIn is startDaemon on a home the caller prepared.
func startDaemonIn(t *testing.T, home string, extra ...string) *daemonProc {
	t.Helper()
	args := append([]string{"daemon", "--home", home, "--json", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--log-level", "warn"}, extra...)
	p := startProc(t, args...)
	l, ok := p.line(t, 30*time.Second)
	if !ok {
		<-p.done
		t.Fatalf("daemon exited: %v\n%s", p.err, p.stderr)
	}
	d := &daemonProc{proc: p, home: home}
	if err := json.Unmarshal([]byte(l), &d.info); err != nil {
		t.Fatalf("daemon's first line %q: %v", l, err)
	}
	return d
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sameTree fails unless the files under got equal want (path → bytes).
func sameTree(t *testing.T, got string, want map[string][]byte) {
	t.Helper()
	n := 0
	filepath.Walk(got, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
		}
		return nil
	})
	if n != len(want) {
		t.Errorf("%s holds %d files, want %d", got, n, len(want))
	}
	for rel, data := range want {
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(b, data) {
			t.Errorf("%s/%s: %d bytes (err %v), want %d equal bytes", got, rel, len(b), err, len(data))
		}
	}
}

// lastDone parses get --json output: progress events, then one done event.
func lastDone(t *testing.T, out string) daemon.GetResult {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ev struct {
		Event string `json:"event"`
		daemon.GetResult
	}
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d of get --json is not JSON: %q", i, l)
		}
		if ev.Event != "progress" && ev.Event != "done" {
			t.Fatalf("line %d: event %q", i, ev.Event)
		}
	}
	if ev.Event != "done" {
		t.Fatalf("get --json ended with %q, not a done event", lines[len(lines)-1])
	}
	return ev.GetResult
}

// TestShareGetByTicketAndDHT: daemon A shares a folder, daemon B gets it by
// ticket, daemon C by root through the DHT knowing only B; then the other
// commands look at the result, and /metrics answers.
func TestShareGetByTicketAndDHT(t *testing.T) {
	a := startDaemon(t)
	b := startDaemon(t, "--bootstrap", a.info.Addrs[0])
	c := startDaemon(t, "--bootstrap", b.info.Addrs[0], "--metrics", "127.0.0.1:0")

	src := filepath.Join(t.TempDir(), "album")
	files := map[string][]byte{
		"one.bin":       randomBytes(3<<20+12345, 1),
		"two.txt":       []byte("hello, peer\n"),
		"sub/three.bin": randomBytes(1<<20, 3),
		"sub/empty":     {},
	}
	for rel, data := range files {
		writeFile(t, filepath.Join(src, rel), data)
	}
	var sh daemon.ShareInfo
	if err := json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", src)), &sh); err != nil {
		t.Fatal(err)
	}
	if !sh.Dir || sh.Files != 4 || !strings.HasPrefix(sh.Ticket, "peer1") {
		t.Fatalf("share: %+v", sh)
	}

	// B by ticket.
	destB := filepath.Join(t.TempDir(), "album")
	res := lastDone(t, ok(t, "get", "--home", b.home, "--json", "-o", destB, sh.Ticket))
	if res.Root != sh.Root || res.Dest != destB {
		t.Fatalf("get by ticket: %+v", res)
	}
	sameTree(t, destB, files)

	// A file inside, streamed to stdout in order while C fetches it (flags
	// after the target work too).
	if out := ok(t, "get", "--home", c.home, sh.Root+"/sub/three.bin", "-o", "-"); out != string(files["sub/three.bin"]) {
		t.Fatalf("get -o -: %d bytes, want %d equal bytes", len(out), len(files["sub/three.bin"]))
	}
	// C by root alone: it knows B, and finds providers through the DHT.
	destC := filepath.Join(t.TempDir(), "album")
	res = lastDone(t, ok(t, "get", "--home", c.home, "--json", "-o", destC, sh.Root))
	sameTree(t, destC, files)
	t.Logf("C got the root from %v", res.FromPeers)

	// Without -o, the target's own name in the working directory.
	wd := t.TempDir()
	cmd := exec.Command(peerBin(t), "get", "--home", b.home, sh.Root+"/two.txt")
	cmd.Dir, cmd.Env = wd, cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("get into the working directory: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(wd, "two.txt")); !bytes.Equal(got, files["two.txt"]) {
		t.Fatalf("two.txt: %q", got)
	}

	// inspect: the manifest's files and chunk CIDs.
	var m daemon.ListingInfo
	if err := json.Unmarshal([]byte(ok(t, "inspect", "--home", a.home, "--json", sh.Root)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Root != sh.Root || !m.Dir || len(m.Files) != 4 {
		t.Fatalf("inspect: %+v", m)
	}
	for _, f := range m.Files {
		data := files[f.Path]
		var off int64
		for _, ch := range f.Chunks {
			if ch.Offset != off || integrity.Chunk(data[off:off+int64(ch.Size)]).String() != ch.CID {
				t.Fatalf("inspect: %s chunk at %d: %+v", f.Path, off, ch)
			}
			off += int64(ch.Size)
		}
		if off != int64(len(data)) || f.Size != off {
			t.Fatalf("inspect: %s covers %d bytes, want %d", f.Path, off, len(data))
		}
	}

	// status, peers, ls, id.
	var st daemon.StatusInfo
	if err := json.Unmarshal([]byte(ok(t, "status", "--home", b.home, "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.ID != b.info.ID || st.Peers < 1 || st.BytesDown < int64(len(files["one.bin"])) || st.Shares < 1 {
		t.Fatalf("status of B: %+v", st)
	}
	var peers []daemon.PeerInfo
	if err := json.Unmarshal([]byte(ok(t, "peers", "--home", a.home, "--json")), &peers); err != nil {
		t.Fatal(err)
	}
	if !hasPeer(peers, b.info.ID) {
		t.Fatalf("A's peers %+v lack B", peers)
	}
	var id daemon.IDInfo
	if err := json.Unmarshal([]byte(ok(t, "id", "--home", a.home, "--json")), &id); err != nil || id.ID != a.info.ID {
		t.Fatalf("id: %+v, %v; want %s", id, err, a.info.ID)
	}

	// /metrics on C names every metric; C looked the root up in the DHT.
	resp, err := http.Get("http://" + c.info.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"peer_bytes_up_total", "peer_bytes_down_total", "peer_chunks_verified_total", "peer_chunks_rejected_total 0",
		"peer_peers", "peer_banned_peers 0", "peer_bans_total 0", `peer_dht_lookups_total{result="found"}`,
		"peer_dht_lookup_seconds_bucket", "peer_dht_lookup_seconds_count", `peer_active_transfers{direction="download"} 0`,
		`peer_active_transfers{direction="upload"}`, "peer_chokes_total 0",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// C's fetch looked the root up (whether the lookup or a connected peer
	// answered first is a race, so found and none are summed).
	lookups := metricValue(t, body, `peer_dht_lookups_total{result="found"}`) + metricValue(t, body, `peer_dht_lookups_total{result="none"}`)
	if lookups < 1 || metricValue(t, body, "peer_dht_lookup_seconds_count") != lookups || metricValue(t, body, "peer_bytes_down_total") < float64(len(files["one.bin"])) {
		t.Errorf("/metrics: %v lookups, %v timed, %v bytes down", lookups, metricValue(t, body, "peer_dht_lookup_seconds_count"), metricValue(t, body, "peer_bytes_down_total"))
	}
	// The bytes by protocol: the exchange's carried the file, the DHT's
	// the lookup.
	if in := metricValue(t, body, `peer_protocol_bytes_total{direction="in",protocol="`+wire.ProtocolID+`"}`); in < float64(len(files["one.bin"])) {
		t.Errorf("/metrics: %v bytes in over %s, want at least %d", in, wire.ProtocolID, len(files["one.bin"]))
	}
	if out := metricValue(t, body, `peer_protocol_bytes_total{direction="out",protocol="/peer/kad/1.0.0"}`); out == 0 {
		t.Error("/metrics: no bytes out over /peer/kad/1.0.0")
	}

	// unshare: A stops sharing; its files stay.
	ok(t, "unshare", "--home", a.home, sh.Root)
	var shares []daemon.ShareInfo
	if err := json.Unmarshal([]byte(ok(t, "ls", "--home", a.home, "--json")), &shares); err != nil || len(shares) != 0 {
		t.Fatalf("ls after unshare: %+v, %v", shares, err)
	}
	sameTree(t, src, files)
	fails(t, "does not share", "unshare", "--home", a.home, sh.Root)

	// A wrong token is refused, and the message says what to do.
	tokFile := filepath.Join(b.home, daemon.TokenFile)
	good, _ := os.ReadFile(tokFile)
	os.WriteFile(tokFile, []byte("0123456789abcdef\n"), 0o600)
	fails(t, "refused the API token", "status", "--home", b.home)
	fails(t, "refused the API token", "get", "--home", b.home, "-o", filepath.Join(t.TempDir(), "x"), sh.Root)
	os.WriteFile(tokFile, good, 0o600)
	ok(t, "status", "--home", b.home)

	// SIGTERM stops a daemon cleanly: exit 0, api.addr removed.
	if code := a.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon exit %d after SIGTERM; stderr:\n%s", code, a.stderr)
	}
	if _, err := os.Stat(filepath.Join(a.home, daemon.AddrFile)); !os.IsNotExist(err) {
		t.Fatalf("api.addr after stop: %v", err)
	}
	fails(t, "no daemon runs", "status", "--home", a.home)
}

func hasPeer(ps []daemon.PeerInfo, id string) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}

// metricValue reads the value of the sample whose name (with labels) is
// name from Prometheus text.
func metricValue(t *testing.T, body []byte, name string) float64 {
	t.Helper()
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	t.Errorf("/metrics has no sample %s", name)
	return -1
}

// TestGetResumesAfterSIGINT: a get interrupted by Ctrl-C leaves its partial
// file, and the same command again fetches only what is missing; through a
// daemon, and with a node of its own when no daemon runs.
func TestGetResumesAfterSIGINT(t *testing.T) {
	a := startDaemon(t)
	data := randomBytes(64<<20, 9)
	src := filepath.Join(t.TempDir(), "big.bin")
	writeFile(t, src, data)
	var sh daemon.ShareInfo
	if err := json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", "--chunk-size", "256KiB", src)), &sh); err != nil {
		t.Fatal(err)
	}
	t.Run("daemon", func(t *testing.T) {
		b := startDaemon(t)
		resumeAfterSIGINT(t, data, func(dest string) []string {
			return []string{"get", "--home", b.home, "--json", "-o", dest, sh.Ticket}
		}, func() { waitNoTransfers(t, b.home) })
	})
	t.Run("foreground", func(t *testing.T) {
		home := t.TempDir()
		resumeAfterSIGINT(t, data, func(dest string) []string {
			return []string{"get", "--home", home, "--listen", "/ip4/127.0.0.1/tcp/0", "--dht", "off", "--json", "-o", dest, sh.Ticket}
		}, func() {})
	})
}

func resumeAfterSIGINT(t *testing.T, data []byte, argsFor func(dest string) []string, settle func()) {
	dir := t.TempDir()
	// The fetch runs at loopback speed: it is interrupted at its first
	// report of verified bytes. Should a try finish before the signal
	// lands, try again with another destination.
	for try := 0; ; try++ {
		if try == 3 {
			t.Fatal("three fetches finished before SIGINT reached them")
		}
		dest := filepath.Join(dir, fmt.Sprintf("big%d.bin", try))
		args := argsFor(dest)
		p := startProc(t, args...)
		finished := false
		for {
			l, more := p.line(t, time.Minute)
			if !more {
				finished = true
				break
			}
			var ev struct {
				Event string `json:"event"`
				daemon.ProgressInfo
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("get --json line %q: %v", l, err)
			}
			if ev.Event == "done" || ev.Done {
				finished = true
				break
			}
			if ev.Bytes > 0 {
				break
			}
		}
		code := p.signal(t, os.Interrupt)
		if finished {
			t.Logf("try %d finished before the interrupt", try)
			continue
		}
		if code != 130 || !strings.Contains(p.stderr.String(), "resume") {
			t.Fatalf("interrupted get: exit %d, stderr %q", code, p.stderr)
		}
		if _, err := os.Stat(dest); !os.IsNotExist(err) {
			t.Fatalf("dest exists after an interrupted get: %v", err)
		}
		settle()
		res := lastDone(t, ok(t, args...))
		if res.Resumed == 0 || res.Resumed >= res.Chunks {
			t.Fatalf("second get resumed %d of %d chunks", res.Resumed, res.Chunks)
		}
		got, err := os.ReadFile(dest)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("resumed copy differs (err %v)", err)
		}
		t.Logf("resumed with %d of %d chunks on disk", res.Resumed, res.Chunks)
		return
	}
}

func waitNoTransfers(t *testing.T, home string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st daemon.StatusInfo
		if err := json.Unmarshal([]byte(ok(t, "status", "--home", home, "--json")), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Transfers) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("transfers still running 30 s after the interrupt: %+v", st.Transfers)
		}
		time.Sleep(50 * time.Millisecond) // polling the daemon, bounded above
	}
}

// TestBadInput: each mistake gets a clear message, a non-zero exit, and
// loses nothing.
func TestBadInput(t *testing.T) {
	a := startDaemon(t, "--find-timeout", "2s", "--dht", "off")
	b := startDaemon(t, "--find-timeout", "2s", "--dht", "off")
	src := filepath.Join(t.TempDir(), "doc.txt")
	writeFile(t, src, []byte("a small document\n"))
	var sh daemon.ShareInfo
	if err := json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", src)), &sh); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()

	// --peer names a source: B has no DHT and knows no one yet.
	viaPeer := filepath.Join(out, "via-peer.txt")
	ok(t, "get", "--home", b.home, sh.Root, "-o", viaPeer, "--peer", a.info.Addrs[0])
	if got, _ := os.ReadFile(viaPeer); string(got) != "a small document\n" {
		t.Fatalf("get --peer: %q", got)
	}
	fails(t, "peer address", "get", "--home", b.home, sh.Root, "-o", filepath.Join(out, "y"), "--peer", "/ip4/127.0.0.1/tcp/1")

	fails(t, "neither a root CID nor a ticket", "get", "--home", b.home, "-o", filepath.Join(out, "x"), "not-a-root")
	fails(t, "ticket", "get", "--home", b.home, "-o", filepath.Join(out, "x"), "peer1aaaaaaaa")
	// A DAG-CBOR CID (the roots of peer before UnixFS): not a UnixFS root.
	fails(t, "not a root peer can fetch", "get", "--home", b.home, "-o", filepath.Join(out, "x"), "bafyreifohasyreq5b4cmr3hdtnyuad6lotal26fjqm5hhnt4vff63jrj4y")
	fails(t, "name one ROOT", "get", "--home", b.home)

	// A root nobody provides: a bounded wait, then a message saying so.
	other := filepath.Join(t.TempDir(), "unshared.bin")
	writeFile(t, other, randomBytes(1000, 4))
	var oh onlyHash
	if err := json.Unmarshal([]byte(ok(t, "share", "--only-hash", "--json", other)), &oh); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fails(t, "no peer provides", "get", "--home", b.home, "-o", filepath.Join(out, "nobody"), oh.Root)
	fails(t, "no peer provides", "get", "--home", b.home, oh.Root) // no -o: resolving the name waits as long
	fails(t, "no peer provides", "inspect", "--home", b.home, oh.Root)
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("two gets and an inspect of a root nobody has took %v", d)
	}

	// DEST exists: kept as it was.
	exists := filepath.Join(out, "exists.txt")
	writeFile(t, exists, []byte("mine"))
	fails(t, "exists: pass --force", "get", "--home", b.home, "-o", exists, sh.Ticket)
	if b, _ := os.ReadFile(exists); string(b) != "mine" {
		t.Fatalf("existing DEST changed to %q", b)
	}
	ok(t, "get", "--home", b.home, "--force", "-o", exists, sh.Ticket)
	if b, _ := os.ReadFile(exists); string(b) != "a small document\n" {
		t.Fatalf("--force: DEST holds %q", b)
	}
	// DEST unwritable.
	fails(t, "cannot write", "get", "--home", b.home, "-o", filepath.Join(out, "no-such-folder", "x"), sh.Ticket)
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(out, "readonly")
		os.Mkdir(ro, 0o500)
		fails(t, "cannot write in", "get", "--home", b.home, "-o", filepath.Join(ro, "x"), sh.Ticket)
	}
	// -o - of a folder.
	dir := filepath.Join(t.TempDir(), "d")
	writeFile(t, filepath.Join(dir, "f"), []byte("f"))
	var dsh daemon.ShareInfo
	json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", dir)), &dsh)
	fails(t, "is a folder", "get", "--home", a.home, "-o", "-", dsh.Root)

	// No daemon.
	fresh := t.TempDir()
	fails(t, "no daemon runs", "status", "--home", fresh)
	fails(t, "no daemon runs", "peers", "--home", fresh)

	// A port in use, for the node and for the API; a second daemon on a
	// home; an API off loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	fails(t, "in use", "daemon", "--home", t.TempDir(), "--no-mdns", "--listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	fails(t, "in use", "daemon", "--home", t.TempDir(), "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", ln.Addr().String())
	fails(t, "already runs", "daemon", "--home", a.home, "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0")
	fails(t, "not on loopback", "daemon", "--home", t.TempDir(), "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "0.0.0.0:0")
	// The first daemon still works.
	ok(t, "status", "--home", a.home)

	// The API refuses a request without the token, or for another host.
	req, _ := http.NewRequest("GET", "http://"+readAddr(t, a.home)+"/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d", resp.StatusCode)
	}
	tok, _ := os.ReadFile(filepath.Join(a.home, daemon.TokenFile))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Host = "evil.example"
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("foreign Host: HTTP %d", resp.StatusCode)
	}
	if fi, err := os.Stat(filepath.Join(a.home, daemon.TokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi.Mode(), err)
	}
}

func readAddr(t *testing.T, home string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, daemon.AddrFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestForeground: with no daemon, share seeds in the foreground until
// Ctrl-C (and says so), and get runs a node for the fetch.
func TestForeground(t *testing.T) {
	homeA, homeB := t.TempDir(), t.TempDir()
	src := filepath.Join(t.TempDir(), "note.txt")
	writeFile(t, src, []byte("seeded from the foreground\n"))
	p := startProc(t, "share", "--home", homeA, "--json", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off", src)
	var buf strings.Builder
	for !json.Valid([]byte(buf.String())) {
		l, more := p.line(t, 30*time.Second)
		if !more {
			t.Fatalf("share exited: %s", p.stderr)
		}
		buf.WriteString(l)
	}
	var sh daemon.ShareInfo
	if err := json.Unmarshal([]byte(buf.String()), &sh); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "note.txt")
	ok(t, "get", "--home", homeB, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--dht", "off", "-o", dest, sh.Ticket)
	if b, _ := os.ReadFile(dest); string(b) != "seeded from the foreground\n" {
		t.Fatalf("got %q", b)
	}
	// The home is busy while it seeds.
	fails(t, "another peer process runs on this home", "ls", "--home", homeA)
	if code := p.signal(t, os.Interrupt); code != 0 {
		t.Fatalf("foreground share: exit %d after Ctrl-C; stderr:\n%s", code, p.stderr)
	}
	if s := p.stderr.String(); !strings.Contains(s, "seeds") || !strings.Contains(s, "Ctrl-C") {
		t.Fatalf("foreground share did not say it seeds until Ctrl-C: %q", s)
	}
}
