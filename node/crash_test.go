package node

// Crash safety: a fetching process and a sharing process are killed with
// SIGKILL (no deferred function, no Close) at seeded random points; each
// restart must find everything consistent. The processes are this test
// binary run again in a child role (see crashChildMain).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
)

// Environment of a crash child.
const (
	crashRoleEnv   = "PEER_CRASH_ROLE" // "fetch" or "share"
	crashHomeEnv   = "PEER_CRASH_HOME"
	crashTicketEnv = "PEER_CRASH_TICKET"
	crashDestEnv   = "PEER_CRASH_DEST"
	crashPathEnv   = "PEER_CRASH_PATH"
)

// crashChunk is the chunk size of the crash tests (testConfig's).
const crashChunk = 256 << 10

// crashChildMain runs a child role of the crash tests and exits when
// PEER_CRASH_ROLE is set; otherwise it returns at once. A child speaks on
// stdout, one line per event, unbuffered, so that every line written before
// a SIGKILL reaches the parent:
//
//	READY                  the node is up
//	RESUMED n              (fetch) the first progress: n chunks found on disk
//	V i                    (fetch) chunk i was verified and written
//	DONE                   (fetch) the file is complete and renamed into place
//	P bytes                (share) a file was indexed, bytes read so far
//	ROOT cid               (share) the share is committed
func crashChildMain() {
	role := os.Getenv(crashRoleEnv)
	if role == "" {
		return
	}
	if err := crashChild(role); err != nil {
		fmt.Fprintf(os.Stderr, "crash child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func crashChild(role string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Home = os.Getenv(crashHomeEnv)
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.NoMDNS, cfg.NoDHT = true, true
	cfg.NoSync = false // the database syncs, as a daemon's does
	cfg.Chunking = chunker.FixedParams(crashChunk)
	cfg.FindTimeout = 20 * time.Second
	cfg.RequestTimeout = 2 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	n, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	say := func(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) } // os.Stdout is unbuffered
	say("READY")
	switch role {
	case "fetch":
		target, err := ParseTarget(os.Getenv(crashTicketEnv))
		if err != nil {
			return err
		}
		ctx, done, err := n.enter(ctx)
		if err != nil {
			return err
		}
		defer done()
		first := true
		// Fetch with the verified hook that Open uses: it runs right after
		// the chunk is written and recorded.
		_, err = n.fetch(ctx, target.Root, os.Getenv(crashDestEnv), FetchOptions{Progress: func(p Progress) {
			if first && p.Of > 0 {
				first = false
				say("RESUMED %d", p.Resumed)
			}
		}}, n.sourcesOf(target, nil), fetchHooks{verified: func(i int64) { say("V %d", i) }})
		if err != nil {
			return err
		}
		say("DONE")
	case "share":
		res, err := n.Share(ctx, os.Getenv(crashPathEnv), ShareOptions{Progress: func(b int64) { say("P %d", b) }})
		if err != nil {
			return err
		}
		say("ROOT %s", res.Root)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	return nil
}

// crashProc is a running crash child.
type crashProc struct {
	cmd    *exec.Cmd
	out    *bufio.Scanner
	stderr *bytes.Buffer
}

func startCrashChild(t *testing.T, role string, env ...string) *crashProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashRoleEnv+"="+role)
	cmd.Env = append(cmd.Env, env...)
	p := &crashProc{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	_, p.out = startPiped(t, cmd)
	return p
}

// kill sends SIGKILL and returns the lines the child wrote before it died.
func (p *crashProc) kill() []string {
	p.cmd.Process.Kill()
	var rest []string
	for p.out.Scan() {
		rest = append(rest, p.out.Text())
	}
	p.cmd.Wait()
	return rest
}

// crashLine splits "WORD n".
func crashLine(t *testing.T, line string) (string, int64) {
	t.Helper()
	word, arg, _ := strings.Cut(line, " ")
	if word == "READY" || word == "DONE" || word == "ROOT" {
		return word, 0
	}
	v, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		t.Fatalf("child said %q", line)
	}
	return word, v
}

// TestCrashFetchResumes kills a fetching process 20 times at seeded random
// points (right at its first progress report, or after it has verified a
// random few more chunks) and restarts it each time. After every kill: the
// destination holds nothing (only the staging path does), the database
// opens and every chunk it records as had is on disk and correct. Every
// restart resumes with at least every chunk verified before; no chunk is
// verified twice over all the runs; the seeder serves only what was missing
// plus what was in flight at each kill; the final file is bit-identical.
func TestCrashFetchResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 21 child processes")
	}
	const seed = 20261130
	const kills = 20
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 6))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The seeder runs here. Its upload cap (8 MiB/s, 32 chunks/s) keeps
	// the transfer slow enough for a kill to land in the middle of it, and
	// keeps what is in flight at a kill small.
	scfg := testConfig(t)
	scfg.NoDHT = true
	scfg.UploadRate = 8 << 20
	a := startNode(t, scfg)
	path, data := randomFile(t, t.TempDir(), "f.bin", 24<<20, 7)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nchunks := int64(len(data) / crashChunk)
	home := t.TempDir()
	dest := filepath.Join(t.TempDir(), "f.bin")
	env := []string{crashHomeEnv + "=" + home, crashTicketEnv + "=" + sh.Ticket, crashDestEnv + "=" + dest}

	verifiedIn := map[int64]int{} // chunk → run that verified it
	done, killed := false, 0
	for run := 0; run <= kills && !done; run++ {
		kill := run < kills
		after := rng.IntN(5) // 0: kill at the first progress report; k: after k more chunks
		before := int64(len(verifiedIn))
		p := startCrashChild(t, "fetch", env...)
		fresh, resumed := 0, int64(-1)
		handle := func(line string) {
			switch word, v := crashLine(t, line); word {
			case "RESUMED":
				resumed = v
				if v < before {
					t.Errorf("run %d resumed %d chunks; %d were verified by earlier runs", run, v, before)
				}
			case "V":
				if r, dup := verifiedIn[v]; dup {
					t.Errorf("chunk %d verified in run %d and again in run %d", v, r, run)
				}
				verifiedIn[v] = run
				fresh++
			case "DONE":
				done = true
			}
		}
		for !done && p.out.Scan() {
			handle(p.out.Text())
			if kill && resumed >= 0 && fresh >= after {
				break
			}
		}
		if kill && !done {
			for _, line := range p.kill() {
				handle(line)
			}
			killed++
		} else if err := p.cmd.Wait(); err != nil || !done {
			t.Fatalf("run %d: child ended (%v) without finishing:\n%s", run, err, p.stderr)
		}
		if t.Failed() {
			t.FailNow()
		}
		if done {
			break
		}
		if resumed < 0 {
			t.Fatalf("run %d: child died before it reported progress:\n%s", run, p.stderr)
		}
		t.Logf("run %d: resumed %d, killed after %d new chunks (%d verified in all)", run, resumed, fresh, len(verifiedIn))
		checkAfterFetchKill(t, home, dest, sh.Root, data)
	}
	if !done {
		t.Fatalf("not done after %d runs", kills+1)
	}
	if killed != kills {
		t.Fatalf("killed %d times, want %d (the file is too small or the link too fast)", killed, kills)
	}
	sameFile(t, dest, data)
	if _, err := os.Stat(swarm.PartialPath(dest, sh.Root)); !os.IsNotExist(err) {
		t.Errorf("staging path left after the fetch completed (err %v)", err)
	}
	// Everything the seeder sent was either verified once (printed) or in
	// flight at a kill. In flight at a kill: what the upload cap's burst
	// (0.1 s, 3 chunks) lets out plus the block being written; a bound of 8
	// chunks a kill is far below re-fetching what was on disk (the chunks
	// verified so far average 40).
	served := a.Stats().ChunksServed
	t.Logf("%d chunks; %d killed runs; %d chunks verified by the children; seeder served %d chunks", nchunks, killed, len(verifiedIn), served)
	if limit := nchunks + int64(killed)*8; served > limit {
		t.Errorf("seeder served %d chunks for a file of %d over %d kills, more than %d: verified chunks were fetched again", served, nchunks, killed, limit)
	}
}

// checkAfterFetchKill checks what a killed fetcher left: no file at dest, a
// database that opens and holds the root, and the staging file that the next
// run resumes from (by re-verifying it: the test above counts what the
// seeder served to show that nothing verified is fetched again).
func checkAfterFetchKill(t *testing.T, home, dest string, root cid.Cid, data []byte) {
	t.Helper()
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Fatalf("after a kill, the destination %s exists (err %v): only the staging path may", dest, err)
	}
	s, err := store.Open(filepath.Join(home, dbFile), store.Options{})
	if err != nil {
		t.Fatalf("the database does not open after a kill: %v", err)
	}
	defer s.Close()
	if _, err := s.GetBlock(context.Background(), root); err != nil {
		t.Fatalf("after a kill, the root manifest is gone from the database: %v", err)
	}
	st, err := os.Stat(swarm.PartialPath(dest, root))
	if err != nil {
		t.Fatalf("after a kill, no staging file: %v", err)
	}
	if st.Size() > int64(len(data)) {
		t.Fatalf("after a kill, the staging file holds %d bytes, more than the file's %d", st.Size(), len(data))
	}
}

// TestCrashWhileSharing kills a process while it indexes a folder of many
// files, at seeded random points, three times. Each time the database
// opens; a node started on the home lists no half share; and at the end
// sharing the folder again works and gives the root it should.
func TestCrashWhileSharing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	const seed = 20261131
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const files = 200
	dir := filepath.Join(t.TempDir(), "many")
	for i := range files {
		randomFile(t, dir, fmt.Sprintf("d%02d/f%03d.bin", i%10, i), 40<<10+i, uint64(100+i))
	}
	home := t.TempDir()
	for round := range 3 {
		after := 1 + rng.IntN(files-20)
		p := startCrashChild(t, "share", crashHomeEnv+"="+home, crashPathEnv+"="+dir)
		indexed := 0
		for p.out.Scan() {
			if strings.HasPrefix(p.out.Text(), "P ") {
				if indexed++; indexed >= after {
					break
				}
			}
			if strings.HasPrefix(p.out.Text(), "ROOT ") {
				t.Fatalf("round %d: the share finished before the kill", round)
			}
		}
		for _, line := range p.kill() {
			if strings.HasPrefix(line, "ROOT ") {
				t.Fatalf("round %d: the share finished before the kill", round)
			}
		}
		if indexed < after {
			t.Fatalf("round %d: child died after %d files:\n%s", round, indexed, p.stderr)
		}
		t.Logf("round %d: killed after %d of %d files were indexed", round, indexed, files)
		cfg := testConfig(t)
		cfg.Home, cfg.NoDHT = home, true
		n, err := New(ctx, cfg)
		if err != nil {
			t.Fatalf("round %d: the node does not start after a kill while sharing: %v", round, err)
		}
		shares, err := n.Shares()
		if err != nil || len(shares) != 0 {
			t.Errorf("round %d: after a kill while sharing, Shares() = %+v, %v; want none (a half share)", round, shares, err)
		}
		if round == 2 {
			want, err := Hash(ctx, dir, HashOptions{Chunking: cfg.Chunking})
			if err != nil {
				t.Fatal(err)
			}
			got, err := n.Share(ctx, dir, ShareOptions{})
			if err != nil {
				t.Fatalf("sharing again after the kills: %v", err)
			}
			shares, err := n.Shares()
			if err != nil || len(shares) != 1 || shares[0].Root != want.Root || got.Root != want.Root || shares[0].Files != files {
				t.Errorf("after sharing again: root %s, shares %+v, %v; want one share of %d files, root %s", got.Root, shares, err, files, want.Root)
			}
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
