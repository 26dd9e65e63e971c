package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/integrity"
)

// Environment of the child process of TestKill9.
const (
	envCrashDB    = "PEER_STORE_CRASH_DB"
	envCrashFile  = "PEER_STORE_CRASH_FILE"
	envCrashStart = "PEER_STORE_CRASH_START"
)

func crashShareRoot(i int) cid.Cid { return integrity.Block(fmt.Appendf(nil, "crash share %d", i)) }

func crashBlock(i int) []byte { return fmt.Appendf(nil, "crash block %d", i) }

// TestKill9 re-runs the test binary as a child that shares, unshares, stores
// blocks in a loop, with fsync on, and reports each
// finished iteration on stdout. After a few reports it is killed with
// SIGKILL in the middle of whatever it is doing; the database must then open,
// pass every consistency check, and hold everything reported.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "peer.db")
	shared := filepath.Join(dir, "shared")
	file := writeFile(t, shared, "f", content("crash", 6*testChunk+100))
	start := 0
	for round, after := range []int{0, 1, 2, 3, 5} {
		last := runCrashChild(t, db, file.path, start, start+after)
		t.Logf("round %d: killed after iteration %d was reported", round, last)
		checkAfterCrash(t, db, file, start, last)
		start = last + 10
	}
}

// runCrashChild runs the child from iteration start, kills it once it has
// reported iteration until, and returns the last iteration it reported.
func runCrashChild(t *testing.T, db, file string, start, until int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), envCrashDB+"="+db, envCrashFile+"="+file, envCrashStart+"="+strconv.Itoa(start))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	last := -1
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "progress ")
		if !ok {
			continue
		}
		if last, err = strconv.Atoi(n); err != nil {
			t.Errorf("bad progress line %q", sc.Text())
		}
		if last >= until && !killed {
			cmd.Process.Kill() // SIGKILL: no deferred function, no Close
			killed = true
		}
	}
	// The child runs on while the kill is on its way (on a busy machine,
	// for several iterations), and what it reported in that time sits in
	// the pipe: it is read above, to EOF, so last is the last iteration the
	// child reported before it died, not the one that triggered the kill.
	if !killed {
		cmd.Process.Kill()
	}
	werr := cmd.Wait()
	if last < until {
		t.Fatalf("child stopped after iteration %d (wanted %d): %v\n%s", last, until, werr, stderr.String())
	}
	return last
}

// checkAfterCrash opens the database a killed child left and checks it.
func checkAfterCrash(t *testing.T, db string, file testFile, start, last int) {
	t.Helper()
	logger, logs := logBuffer()
	s, err := Open(db, Options{Logger: logger})
	if err != nil {
		t.Fatalf("Open after kill -9: %v", err)
	}
	defer s.Close()
	if strings.Contains(logs.String(), "removed unfinished shares") {
		t.Logf("the kill interrupted a share; Open removed it")
	}
	if err := checkConsistent(s); err != nil {
		t.Fatalf("inconsistent after kill -9: %v", err)
	}
	shares, err := s.Shares()
	if err != nil {
		t.Fatal(err)
	}
	// Iteration i commits share i and unshares share i-2, so after the
	// report of last, only last-1, last and last+1 can be there.
	possible := map[cid.Cid]bool{crashShareRoot(last - 1): true, crashShareRoot(last): true, crashShareRoot(last + 1): true}
	found := false
	for _, sh := range shares {
		if !possible[sh.Root] {
			t.Errorf("share %s survived; only iterations %d..%d may be shared", sh.Root, last-1, last+1)
		}
		found = found || sh.Root == crashShareRoot(last)
	}
	if !found {
		t.Errorf("share of iteration %d, reported committed, is gone", last)
	}
	ctx := context.Background()
	for i := range file.chunks {
		if got, err := s.ReadChunk(ctx, file.chunks[i].CID, nil); err != nil || !bytes.Equal(got, file.chunkData(i)) {
			t.Errorf("ReadChunk %d after kill -9: %v", i, err)
		}
	}
	for i := start; i <= last; i++ {
		if _, err := s.GetBlock(ctx, integrity.Block(crashBlock(i))); err != nil {
			t.Errorf("block of iteration %d: %v", i, err)
		}
	}
	// Start the next round with no shares.
	for _, sh := range shares {
		if err := s.Unshare(sh.Root); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKill9Child is the child process of TestKill9; run alone it skips.
func TestKill9Child(t *testing.T) {
	db := os.Getenv(envCrashDB)
	if db == "" {
		t.Skip("child process of TestKill9")
	}
	start, err := strconv.Atoi(os.Getenv(envCrashStart))
	if err != nil {
		t.Fatal(err)
	}
	f, err := cutFile(os.Getenv(envCrashFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := start; i < start+1<<14; i++ {
		tx, err := s.BeginShare(filepath.Dir(f.path))
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range f.chunks {
			if err := tx.AddFile(f.path, int64(len(f.data)), f.mtime, f.root, []ChunkLoc{ch}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(crashShareRoot(i), ShareInfo{Name: "shared", Size: int64(len(f.data)), Files: 1,
			Dir: true, Chunking: testParams()}); err != nil {
			t.Fatal(err)
		}
		if i-2 >= start {
			if err := s.Unshare(crashShareRoot(i - 2)); err != nil {
				t.Fatal(err)
			}
		}
		b := crashBlock(i)
		if err := s.PutBlock(integrity.Block(b), b); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("progress %d\n", i)
	}
	t.Fatal("ran out of iterations without being killed")
}
