package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	ipns_pb "github.com/ipfs/boxo/ipns/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/proto"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/names"
	"github.com/peer-project/peer/store"
)

// writeTree makes the files of tree (slash paths → contents) below dir;
// a nil content... there is none: every entry is a file.
func writeTree(t *testing.T, dir string, tree map[string]string) {
	t.Helper()
	for p, s := range tree {
		fp := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns the files below dir but the follow's own folder.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == FollowDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, who, dir string, want map[string]string) {
	t.Helper()
	if got := readTree(t, dir); !maps.Equal(got, want) {
		t.Fatalf("%s: %s holds %v; want %v", who, dir, got, want)
	}
}

// follow runs Follow on n in the background; its events arrive on the
// channel returned. It stops when the test's ctx ends.
func follow(t *testing.T, ctx context.Context, n *Node, name, dir string, opts FollowOptions) <-chan FollowEvent {
	t.Helper()
	ch := make(chan FollowEvent, 64)
	opts.OnEvent = func(e FollowEvent) {
		select {
		case ch <- e:
		default:
		}
	}
	done := make(chan error, 1)
	go func() { done <- n.Follow(ctx, name, dir, opts) }()
	t.Cleanup(func() {
		if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Follow: %v", err)
		}
	})
	return ch
}

// waitEvent waits for an event that ok accepts and returns it; it fails
// the test on ctx's end, listing what came.
func waitEvent(t *testing.T, ctx context.Context, who string, ch <-chan FollowEvent, ok func(FollowEvent) bool) FollowEvent {
	t.Helper()
	var seen []string
	for {
		select {
		case e := <-ch:
			if ok(e) {
				return e
			}
			seen = append(seen, fmtEvent(e))
		case <-ctx.Done():
			t.Fatalf("%s: no such event; saw %v", who, seen)
		}
	}
}

func fmtEvent(e FollowEvent) string {
	s := e.Root.String()
	if e.Err != nil {
		s += " err: " + e.Err.Error()
	}
	return s
}

func appliedRoot(root string) func(FollowEvent) bool {
	return func(e FollowEvent) bool { return e.Applied && e.Root.String() == root }
}

// connectMock links and connects every pair of nodes.
func connectMock(t *testing.T, mn mocknet.Mocknet, nodes ...*Node) {
	t.Helper()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			link(t, mn, a, b, 0)
			if _, err := mn.ConnectPeers(a.ID(), b.ID()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFollowConverges: A publishes a folder under a named key and watches
// it; B and C follow the name. A changes a file, adds one and deletes one:
// A's watch republishes, and B and C converge on the new version.
func TestFollowConverges(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 3)
		a, b, c := nodes[0], nodes[1], nodes[2]
		connectMock(t, mn, a, b, c)
		src := filepath.Join(t.TempDir(), "site")
		_, big := randomFile(t, t.TempDir(), "big", 1536<<10, 3) // six chunks of 256 KiB
		v1 := map[string]string{"a.txt": "alpha", "b.txt": "bravo", "sub/c.txt": "charlie", "big.bin": string(big)}
		writeTree(t, src, v1)
		os.MkdirAll(filepath.Join(src, "empty"), 0o755)
		pub1, err := a.Publish(ctx, src, PublishOptions{Key: "site", Watch: true, WatchInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(pub1.Name, "/ipns/k51") || pub1.Seq != 1 {
			t.Fatalf("Publish = %+v; want /ipns/k51… at sequence 1", pub1)
		}
		dirB, dirC := filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
		evB := follow(t, ctx, b, pub1.Name, dirB, FollowOptions{})
		evC := follow(t, ctx, c, pub1.Name, dirC, FollowOptions{})
		for who, ev := range map[string]<-chan FollowEvent{"B": evB, "C": evC} {
			e := waitEvent(t, ctx, who, ev, appliedRoot(pub1.Root.String()))
			if e.Written != 4 || len(e.Conflicts) != 0 {
				t.Errorf("%s: first version: %+v; want 4 files written, no conflict", who, e)
			}
		}
		sameTree(t, "B", dirB, v1)
		sameTree(t, "C", dirC, v1)
		if st, err := os.Stat(filepath.Join(dirB, "empty")); err != nil || !st.IsDir() {
			t.Errorf("the version's empty folder: %v, %v", st, err)
		}
		// DIR is made as any folder is, not private like the follow's own.
		plain := filepath.Join(t.TempDir(), "plain")
		os.Mkdir(plain, 0o755)
		if st, pst := mustStat(t, dirB), mustStat(t, plain); st.Mode().Perm() != pst.Mode().Perm() {
			t.Errorf("DIR has mode %v, a folder made with 0755 %v", st.Mode().Perm(), pst.Mode().Perm())
		}

		// Change one, add one, delete one; the watch republishes.
		big2 := []byte(v1["big.bin"])
		copy(big2[700<<10:], "an edit in the third chunk")
		v2 := map[string]string{"a.txt": "alpha, edited", "sub/c.txt": "charlie", "d.txt": "delta", "big.bin": string(big2)}
		writeTree(t, src, map[string]string{"a.txt": v2["a.txt"], "d.txt": v2["d.txt"], "big.bin": v2["big.bin"]})
		if err := os.Remove(filepath.Join(src, "b.txt")); err != nil {
			t.Fatal(err)
		}
		root2, err := Hash(ctx, src, HashOptions{Chunking: a.cfg.Chunking})
		if err != nil {
			t.Fatal(err)
		}
		for who, ev := range map[string]<-chan FollowEvent{"B": evB, "C": evC} {
			e := waitEvent(t, ctx, who, ev, appliedRoot(root2.Root.String()))
			if e.Seq <= pub1.Seq || e.Written != 3 || e.Removed != 1 || e.Kept != 1 || len(e.Conflicts) != 0 {
				t.Errorf("%s: second version: %+v; want a higher sequence, 3 files written, 1 removed, 1 kept, no conflict", who, e)
			}
		}
		sameTree(t, "B", dirB, v2)
		sameTree(t, "C", dirC, v2)
		if _, err := os.Stat(filepath.Join(dirB, "sub")); err != nil {
			t.Errorf("the folder sub went: %v", err)
		}
		cancel()
	})
}

// TestFollowConflicts: B's user edits a file the follow wrote, edits one
// that the next version deletes, and puts a file of theirs where the next
// version adds one. All three are reported and left alone; the rest of
// the version is applied. A symbolic link of the version is reported and
// left out.
func TestFollowConflicts(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		writeTree(t, src, map[string]string{"a.txt": "alpha", "b.txt": "bravo", "c.txt": "charlie"})
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		ev := follow(t, ctx, b, pub1.Name, dir, FollowOptions{})
		waitEvent(t, ctx, "B", ev, appliedRoot(pub1.Root.String()))

		writeTree(t, dir, map[string]string{"a.txt": "mine", "b.txt": "mine too", "d.txt": "my own d", "e.txt": "mine alone"})
		writeTree(t, src, map[string]string{"a.txt": "alpha 2", "c.txt": "charlie 2", "d.txt": "delta"})
		os.Remove(filepath.Join(src, "b.txt"))
		if err := os.Symlink("c.txt", filepath.Join(src, "link")); err != nil {
			t.Fatal(err)
		}
		pub2, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e := waitEvent(t, ctx, "B", ev, appliedRoot(pub2.Root.String()))
		var got []string
		for _, c := range e.Conflicts {
			got = append(got, c.Path)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"a.txt", "b.txt", "d.txt", "link"}) || e.Written != 1 || e.Removed != 0 {
			t.Errorf("event %+v; want conflicts a.txt, b.txt, d.txt and the symlink, c.txt written, nothing removed", e)
		}
		if _, err := os.Lstat(filepath.Join(dir, "link")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the symlink was written: %v", err)
		}
		sameTree(t, "B", dir, map[string]string{"a.txt": "mine", "b.txt": "mine too", "c.txt": "charlie 2", "d.txt": "my own d", "e.txt": "mine alone"})
		cancel()
	})
}

// rogue is a host that speaks the names protocol and, to whoever opens a
// session, sends the frames given.
func rogue(t *testing.T, mn mocknet.Mocknet, to *Node, frames [][]byte) peer.ID {
	t.Helper()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	h.SetStreamHandler(names.ProtocolID, func(s network.Stream) {
		for _, f := range frames {
			if _, err := s.Write(f); err != nil {
				s.Reset()
				return
			}
		}
		// Hold the stream open until the other end goes.
		var b [1]byte
		s.Read(b[:])
		s.Close()
	})
	t.Cleanup(func() { h.Close() })
	if _, err := mn.LinkPeers(h.ID(), to.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(to.ID(), h.ID()); err != nil {
		t.Fatal(err)
	}
	return h.ID()
}

// recordFrame is a RECORD message of the names protocol.
func recordFrame(name names.Name, raw []byte) []byte {
	nb := []byte(name.Peer())
	body := []byte{3}
	body = binary.AppendUvarint(body, uint64(len(nb)))
	body = append(body, nb...)
	body = binary.AppendUvarint(body, uint64(len(raw)))
	body = append(body, raw...)
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

func rewriteRecord(t *testing.T, raw []byte, f func(*ipns_pb.IpnsRecord)) []byte {
	t.Helper()
	var pb ipns_pb.IpnsRecord
	if err := proto.Unmarshal(raw, &pb); err != nil {
		t.Fatal(err)
	}
	f(&pb)
	out, err := proto.Marshal(&pb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFollowRefusesBadRecords: B follows A's name at version 2; a rogue
// peer then pushes a forged record, the replayed version 1 and a record of
// another key under A's name. Each is refused with its reason, reported to
// the follow, and B's folder stays at version 2.
func TestFollowRefusesBadRecords(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		writeTree(t, src, map[string]string{"a.txt": "v1"})
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		name, _ := names.ParseName(pub1.Name)
		rec1, _ := a.names.Best(name)
		v2 := map[string]string{"a.txt": "v2"}
		writeTree(t, src, v2)
		pub2, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		ev := follow(t, ctx, b, pub1.Name, dir, FollowOptions{})
		waitEvent(t, ctx, "B", ev, appliedRoot(pub2.Root.String()))

		sk := a.host.Peerstore().PrivKey(a.ID())
		evil := integrity.Chunk([]byte("evil"))
		good, err := names.NewRecord(sk, evil, 9, time.Now().Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		forged := rewriteRecord(t, good.Raw, func(pb *ipns_pb.IpnsRecord) { pb.SignatureV2[0] ^= 0x80 })
		other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		otherRec, err := names.NewRecord(other, evil, 10, time.Now().Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r := rogue(t, mn, b, [][]byte{recordFrame(name, forged), recordFrame(name, rec1.Raw), recordFrame(name, otherRec.Raw)})
		for _, want := range []error{names.ErrSignature, names.ErrStale, names.ErrWrongKey} {
			e := waitEvent(t, ctx, "B", ev, func(e FollowEvent) bool { return errors.Is(e.Err, want) })
			if e.Peer != r || !strings.Contains(e.Err.Error(), "refused a record from") {
				t.Errorf("refusal %v: from %s, want the rogue %s, and a message that says a record was refused", e.Err, e.Peer, r)
			}
			t.Logf("refused: %v", e.Err)
		}
		sameTree(t, "B", dir, v2)
		cancel()
	})
}

// TestFollowTargetIsFile: a folder that is a file, and a name that points
// at a single file, are refused with a message that says what to do.
func TestFollowTargetIsFile(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		file := filepath.Join(t.TempDir(), "one.txt")
		os.WriteFile(file, []byte("one file"), 0o644)
		pub, err := a.Publish(ctx, file, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dest := filepath.Join(t.TempDir(), "f")
		os.WriteFile(dest, []byte("a file of mine"), 0o644)
		if _, err := b.SyncName(ctx, pub.Name, dest, FollowOptions{}); !errors.Is(err, ErrFollowTarget) || !strings.Contains(err.Error(), "name a folder") {
			t.Errorf("follow into a file: %v; want ErrFollowTarget saying to name a folder", err)
		}
		if b, _ := os.ReadFile(dest); string(b) != "a file of mine" {
			t.Errorf("the file in the way now holds %q", b)
		}
		dir := filepath.Join(t.TempDir(), "d")
		_, err = b.SyncName(ctx, pub.Name, dir, FollowOptions{})
		if !errors.Is(err, ErrFollowTarget) || !strings.Contains(err.Error(), "single file") || !strings.Contains(err.Error(), "peer get") {
			t.Errorf("follow of a name of a file: %v; want ErrFollowTarget that says it is a single file and to use peer get", err)
		}
		if got := readTree(t, dir); len(got) != 0 {
			t.Errorf("the folder holds %v after a refused version", got)
		}
		cancel()
	})
}

// TestFollowDiskFull: a write that fails with ENOSPC while version 2 is
// moved into place (the k-th rename, for each k, then the state's write)
// fails the version with an error that says the disk is full, and leaves
// DIR exactly at version 1; once the disk has room, version 2 applies.
func TestFollowDiskFull(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		v1 := map[string]string{"a.txt": "alpha", "b.txt": "bravo", "sub/c.txt": "charlie"}
		writeTree(t, src, v1)
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, "B", dir, v1)
		// Version 2 replaces a.txt, adds d.txt and sub2/e.txt, deletes b.txt:
		// five renames (two for a.txt), then the state.
		writeTree(t, src, map[string]string{"a.txt": "alpha 2", "d.txt": "delta", "sub2/e.txt": "echo"})
		os.Remove(filepath.Join(src, "b.txt"))
		pub2, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		full := &os.PathError{Op: "rename", Path: "injected", Err: syscall.ENOSPC}
		for k := 1; k <= 6; k++ {
			calls := 0
			fsys := followFS{
				rename: func(from, to string) error {
					if calls++; calls == k {
						return full
					}
					return os.Rename(from, to)
				},
				writeFile: func(p string, data []byte) error {
					if strings.HasSuffix(p, "state.json") && k == 6 {
						return &os.PathError{Op: "write", Path: p, Err: syscall.ENOSPC}
					}
					return writeFileSync(p, data, 0o600)
				},
			}
			_, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{fsys: &fsys})
			if err == nil {
				t.Fatalf("k=%d: version 2 applied through a full disk", k)
			}
			if !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "left at version 1") {
				t.Errorf("k=%d: %v; want an error that says the disk is full and DIR is left at version 1", k, err)
			}
			sameTree(t, "B", dir, v1)
		}
		e, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{})
		if err != nil {
			t.Fatalf("with room again: %v", err)
		}
		if e.Root != pub2.Root {
			t.Fatalf("applied %s, want %s", e.Root, pub2.Root)
		}
		sameTree(t, "B", dir, map[string]string{"a.txt": "alpha 2", "d.txt": "delta", "sub/c.txt": "charlie", "sub2/e.txt": "echo"})
		cancel()
	})
}

// TestFollowCrashRollsBack: a crash (a panic here) after the third rename
// of version 2 leaves DIR a mix of versions and a journal; the next follow
// of DIR first puts it back at version 1, then applies version 2.
func TestFollowCrashRollsBack(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		v1 := map[string]string{"a.txt": "alpha", "b.txt": "bravo"}
		writeTree(t, src, v1)
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		v2 := map[string]string{"a.txt": "alpha 2", "c.txt": "charlie", "d.txt": "delta"}
		writeTree(t, src, map[string]string{"a.txt": v2["a.txt"], "c.txt": v2["c.txt"], "d.txt": v2["d.txt"]})
		os.Remove(filepath.Join(src, "b.txt"))
		if _, err := a.Publish(ctx, src, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		type crash struct{}
		calls := 0
		fsys := followFS{
			rename: func(from, to string) error {
				if calls++; calls == 4 {
					panic(crash{})
				}
				return os.Rename(from, to)
			},
			writeFile: func(p string, data []byte) error { return writeFileSync(p, data, 0o600) },
		}
		func() {
			defer func() {
				if r := recover(); r != (crash{}) {
					t.Fatalf("recovered %v, want the crash", r)
				}
			}()
			b.SyncName(ctx, pub1.Name, dir, FollowOptions{fsys: &fsys})
		}()
		if got := readTree(t, dir); maps.Equal(got, v1) || maps.Equal(got, v2) {
			t.Fatalf("after the crash DIR holds %v: the crash came too early or too late to test anything", got)
		}
		if _, err := os.Stat(filepath.Join(dir, FollowDir, "journal.json")); err != nil {
			t.Fatalf("no journal after the crash: %v", err)
		}
		f, err := b.newFollower(pub1.Name, dir, FollowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f.close()
		sameTree(t, "B after recovery", dir, v1)
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		sameTree(t, "B", dir, v2)
		cancel()
	})
}

// TestFollowFetchFails: a valid record of a version nobody serves (signed
// with the name's key, pushed by another peer) fails in its fetch, which
// writes only to the staging area: the error says the fetch failed and
// that DIR is left at version 1, which it is.
func TestFollowFetchFails(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		v1 := map[string]string{"a.txt": "v1"}
		writeTree(t, src, v1)
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		ev := follow(t, ctx, b, pub1.Name, dir, FollowOptions{})
		waitEvent(t, ctx, "B", ev, appliedRoot(pub1.Root.String()))

		name, _ := names.ParseName(pub1.Name)
		sk := a.host.Peerstore().PrivKey(a.ID())
		gone, err := names.NewRecord(sk, integrity.Chunk([]byte("a version nobody serves")), 5, time.Now().Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		rogue(t, mn, b, [][]byte{recordFrame(name, gone.Raw)})
		e := waitEvent(t, ctx, "B", ev, func(e FollowEvent) bool { return e.Err != nil && e.Seq == 5 })
		if !errors.Is(e.Err, ErrNoProviders) || !strings.Contains(e.Err.Error(), "left at version 1") {
			t.Errorf("a version nobody serves: %v; want ErrNoProviders and DIR left at version 1", e.Err)
		}
		t.Logf("%v", e.Err)
		sameTree(t, "B", dir, v1)
		cancel()
	})
}

// TestFollowOneDir: a folder is followed by one follow at a time.
func TestFollowOneDir(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		writeTree(t, src, map[string]string{"a.txt": "v1"})
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		ev := follow(t, ctx, b, pub1.Name, dir, FollowOptions{})
		waitEvent(t, ctx, "B", ev, appliedRoot(pub1.Root.String()))
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); !errors.Is(err, ErrFollowTarget) || !strings.Contains(err.Error(), "already") {
			t.Errorf("a second follow of the folder: %v; want ErrFollowTarget saying it is followed already", err)
		}
		cancel()
	})
}

// TestFollowFileBecomesFolder: version 2 has a folder where version 1 had
// a file. With a write error at its last step the version rolls back to
// version 1 exactly; then it applies.
func TestFollowFileBecomesFolder(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		v1 := map[string]string{"a": "a file", "z.txt": "zulu"}
		writeTree(t, src, v1)
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(src, "a"))
		v2 := map[string]string{"a/b.txt": "now a folder", "z.txt": "zulu"}
		writeTree(t, src, v2)
		if _, err := a.Publish(ctx, src, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		fsys := followFS{
			rename: os.Rename,
			writeFile: func(p string, data []byte) error {
				if strings.HasSuffix(p, "state.json") {
					return &os.PathError{Op: "write", Path: p, Err: syscall.ENOSPC}
				}
				return writeFileSync(p, data, 0o600)
			},
		}
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{fsys: &fsys}); err == nil || strings.Contains(err.Error(), "rolling back") {
			t.Fatalf("version 2 through a failing state write: %v; want an error and a clean roll-back", err)
		}
		sameTree(t, "B after the roll-back", dir, v1)
		e, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Conflicts) != 0 || e.Removed != 1 || e.Written != 1 {
			t.Errorf("event %+v; want a removed, a/b.txt written, no conflict", e)
		}
		sameTree(t, "B", dir, v2)
		cancel()
	})
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestFollowLockedByAnotherProcess: a folder whose lock another process
// holds is refused (the lock is taken here through another open file
// description, as another process's would be).
func TestFollowLockedByAnotherProcess(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoDHT = true
	n := startNode(t, cfg)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, FollowDir), 0o700)
	unlock, err := lockFile(filepath.Join(dir, FollowDir, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.newFollower("/ipns/"+n.ID().String(), dir, FollowOptions{})
	if !errors.Is(err, ErrFollowTarget) || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("a locked folder: %v; want ErrFollowTarget saying another process follows it", err)
	}
	unlock()
	f, err := n.newFollower("/ipns/"+n.ID().String(), dir, FollowOptions{})
	if err != nil {
		t.Fatalf("once unlocked: %v", err)
	}
	f.close()
}

// TestFollowFetchesOnlyChanged: version 2 changes one small file and adds
// one; the big file and the file in a folder are unchanged. The follow
// fetches the two files alone: the bytes it received or copied are theirs,
// and the unchanged files stay where they were (the same inode).
func TestFollowFetchesOnlyChanged(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		_, big := randomFile(t, t.TempDir(), "big", 1536<<10, 5) // six chunks of 256 KiB
		v1 := map[string]string{"a.txt": "alpha", "sub/c.txt": "charlie", "big.bin": string(big)}
		writeTree(t, src, v1)
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		before := inode(mustStat(t, filepath.Join(dir, "big.bin")))
		v2 := map[string]string{"a.txt": "alpha, edited", "sub/c.txt": "charlie", "big.bin": string(big), "d.txt": "delta"}
		writeTree(t, src, map[string]string{"a.txt": v2["a.txt"], "d.txt": v2["d.txt"]})
		if _, err := a.Publish(ctx, src, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		e, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		changed := int64(len(v2["a.txt"]) + len(v2["d.txt"]))
		if got := e.Received + e.Local; got != changed || e.Written != 2 || e.Kept != 2 {
			t.Errorf("version 2: received %d bytes and copied %d, wrote %d files, kept %d; want the %d bytes of the 2 files changed, 2 kept",
				e.Received, e.Local, e.Written, e.Kept, changed)
		}
		sameTree(t, "B", dir, v2)
		if after := inode(mustStat(t, filepath.Join(dir, "big.bin"))); after != before {
			t.Errorf("the unchanged big.bin was replaced (inode %d, was %d)", after, before)
		}
		cancel()
	})
}

// noStagedShare fails if a share of n points into dir's follow folder,
// whose files a follow moves away or removes.
func noStagedShare(t *testing.T, n *Node, dir string) []store.Share {
	t.Helper()
	shares, err := n.store.Shares()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shares {
		if strings.HasPrefix(sh.Path, filepath.Join(dir, FollowDir)) {
			t.Errorf("share %s points into the follow's own folder: %s", sh.Root, sh.Path)
		}
	}
	return shares
}

// TestFollowIndexesOnce: each version is indexed once, at DIR: no share
// points into the staging area, after a version applied whole or one a
// conflict left a file out of (the user's file "sub" stands where the
// version has the folder sub).
func TestFollowIndexesOnce(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		writeTree(t, src, map[string]string{"a.txt": "alpha"})
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		if shares := noStagedShare(t, b, dir); len(shares) != 1 || shares[0].Path != dir || shares[0].Root != pub1.Root {
			t.Errorf("shares after version 1: %+v; want one, of %s at %s", shares, pub1.Root, dir)
		}
		writeTree(t, dir, map[string]string{"sub": "my file"})
		writeTree(t, src, map[string]string{"sub/x.txt": "x-ray"})
		if _, err := a.Publish(ctx, src, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		e, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Conflicts) != 1 || e.Conflicts[0].Path != "sub/x.txt" {
			t.Errorf("conflicts %+v; want sub/x.txt", e.Conflicts)
		}
		noStagedShare(t, b, dir)
		cancel()
	})
}

// TestFollowHashesOnce: a file of the user's that already holds what a new
// version adds there is taken as the follow's after one read of it, which
// both compares it and hashes it for the state.
func TestFollowHashesOnce(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		writeTree(t, src, map[string]string{"a.txt": "alpha"})
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		_, d := randomFile(t, dir, "d.bin", 600<<10, 9) // the user's, as version 2 has it
		writeTree(t, src, map[string]string{"d.bin": string(d)})
		if _, err := a.Publish(ctx, src, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		opened := map[string]int{}
		fsys := followFS{
			rename:    os.Rename,
			writeFile: func(p string, data []byte) error { return writeFileSync(p, data, 0o600) },
			open: func(p string) (*os.File, error) {
				opened[p]++
				return os.Open(p)
			},
		}
		e, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{fsys: &fsys})
		if err != nil {
			t.Fatal(err)
		}
		if e.Kept != 2 || e.Written != 0 || len(e.Conflicts) != 0 {
			t.Errorf("event %+v; want d.bin and a.txt kept, nothing written, no conflict", e)
		}
		if n := opened[filepath.Join(dir, "d.bin")]; n != 1 {
			t.Errorf("d.bin was read %d times; want once", n)
		}
		// The state holds its hash, from that one read.
		raw, err := os.ReadFile(filepath.Join(dir, FollowDir, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		var st followState
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(d); st.Files["d.bin"] == nil || st.Files["d.bin"].Sum != hex.EncodeToString(sum[:]) {
			t.Errorf("the state of d.bin is %+v; want its SHA-256 %x", st.Files["d.bin"], sum)
		}
		cancel()
	})
}

// TestFollowHearsOnlyItsName: B follows two names; a rogue peer pushes a
// forged record of the first, a record of another key under the second,
// then a forged record of the first again. Each follow hears of the
// refusals of its own name only.
func TestFollowHearsOnlyItsName(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src1, src2 := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two")
		writeTree(t, src1, map[string]string{"a.txt": "one"})
		writeTree(t, src2, map[string]string{"b.txt": "two"})
		pub1, err := a.Publish(ctx, src1, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pub2, err := a.Publish(ctx, src2, PublishOptions{Key: "two"})
		if err != nil {
			t.Fatal(err)
		}
		ev1 := follow(t, ctx, b, pub1.Name, filepath.Join(t.TempDir(), "1"), FollowOptions{})
		ev2 := follow(t, ctx, b, pub2.Name, filepath.Join(t.TempDir(), "2"), FollowOptions{})
		waitEvent(t, ctx, "follow 1", ev1, appliedRoot(pub1.Root.String()))
		waitEvent(t, ctx, "follow 2", ev2, appliedRoot(pub2.Root.String()))

		name1, _ := names.ParseName(pub1.Name)
		name2, _ := names.ParseName(pub2.Name)
		sk := a.host.Peerstore().PrivKey(a.ID())
		evil := integrity.Chunk([]byte("evil"))
		forged := func(seq uint64) []byte {
			rec, err := names.NewRecord(sk, evil, seq, time.Now().Add(time.Hour), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return rewriteRecord(t, rec.Raw, func(pb *ipns_pb.IpnsRecord) { pb.SignatureV2[0] ^= 0x80 })
		}
		other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		otherRec, err := names.NewRecord(other, evil, 10, time.Now().Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		rogue(t, mn, b, [][]byte{recordFrame(name1, forged(9)), recordFrame(name2, otherRec.Raw), recordFrame(name1, forged(11))})
		refusal := func(e FollowEvent) bool { return e.Err != nil && e.Peer != "" }
		for i, want := range []error{names.ErrSignature, names.ErrSignature} {
			if e := waitEvent(t, ctx, "follow 1", ev1, refusal); !errors.Is(e.Err, want) || e.Name != pub1.Name {
				t.Errorf("follow 1, refusal %d: %v (of %s); want %v, of its name", i, e.Err, e.Name, want)
			}
		}
		if e := waitEvent(t, ctx, "follow 2", ev2, refusal); !errors.Is(e.Err, names.ErrWrongKey) || e.Name != pub2.Name {
			t.Errorf("follow 2 heard first of %v; want its own record of another key", e.Err)
		}
		cancel()
	})
}

// TestFollowAppliesMeta: a version shared with its files' modes and times
// (UnixFS 1.5) is followed with them, as get writes them: a file written,
// and a file of the same content whose mode or time the new version
// changed, and the folders.
func TestFollowAppliesMeta(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		writeTree(t, src, map[string]string{"run.sh": "#!/bin/sh", "sub/c.txt": "charlie"})
		os.Chmod(filepath.Join(src, "run.sh"), 0o755)
		old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		os.Chtimes(filepath.Join(src, "sub", "c.txt"), old, old)
		os.Chmod(filepath.Join(src, "sub"), 0o750)
		os.Chtimes(filepath.Join(src, "sub"), old, old)
		popts := PublishOptions{Share: ShareOptions{PreserveMode: true, PreserveMtime: true}}
		pub1, err := a.Publish(ctx, src, popts)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		check := func(v string, p string, mode os.FileMode, mtime time.Time) {
			t.Helper()
			st := mustStat(t, filepath.Join(dir, filepath.FromSlash(p)))
			if st.Mode().Perm() != mode || !st.ModTime().Equal(mtime) {
				t.Errorf("%s: %s has mode %v, time %v; want %v, %v", v, p, st.Mode().Perm(), st.ModTime().UTC(), mode, mtime)
			}
		}
		check("version 1", "run.sh", 0o755&^umaskForTest(), mustStat(t, filepath.Join(src, "run.sh")).ModTime())
		check("version 1", "sub/c.txt", 0o644&^umaskForTest(), old)
		check("version 1", "sub", 0o750&^umaskForTest(), old)
		// Version 2: c.txt gets another time and mode, the same bytes.
		newer := old.Add(time.Hour)
		os.Chmod(filepath.Join(src, "sub", "c.txt"), 0o600)
		os.Chtimes(filepath.Join(src, "sub", "c.txt"), newer, newer)
		os.Chtimes(filepath.Join(src, "sub"), old, old)
		pub2, err := a.Publish(ctx, src, popts)
		if err != nil {
			t.Fatal(err)
		}
		if pub2.Root == pub1.Root {
			t.Fatal("the new mode and time did not change the root")
		}
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		check("version 2", "sub/c.txt", 0o600, newer)
		check("version 2", "sub", 0o750&^umaskForTest(), old)
		cancel()
	})
}

// umaskForTest is the process's umask, as a file made with mode 0777 shows.
func umaskForTest() os.FileMode {
	p := filepath.Join(os.TempDir(), fmt.Sprintf("umask-%d", os.Getpid()))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o777)
	if err != nil {
		return 0o022
	}
	f.Close()
	defer os.Remove(p)
	st, err := os.Stat(p)
	if err != nil {
		return 0o022
	}
	return 0o777 &^ st.Mode().Perm()
}

// TestFollowSeesEditWithTimeSetBack: the user rewrites a file the follow
// wrote with other bytes of the same size and sets its modification time
// back (as cp -p or touch -r do). The change time still moved: when the
// next version changes the file, it is a conflict and the user's bytes
// stay.
func TestFollowSeesEditWithTimeSetBack(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		writeTree(t, src, map[string]string{"a.txt": "alpha", "b.txt": "bravo"})
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "a.txt")
		was := mustStat(t, p)
		if err := os.WriteFile(p, []byte("ALPHA"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, was.ModTime(), was.ModTime()); err != nil {
			t.Fatal(err)
		}
		if now := mustStat(t, p); now.Size() != was.Size() || !now.ModTime().Equal(was.ModTime()) || inode(now) != inode(was) {
			t.Fatal("the edit did not keep size, time and inode: it tests nothing")
		}
		writeTree(t, src, map[string]string{"a.txt": "alpha 2"})
		if _, err := a.Publish(ctx, src, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		e, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Conflicts) != 1 || e.Conflicts[0].Path != "a.txt" || e.Written != 0 {
			t.Errorf("event %+v; want a.txt a conflict, nothing written", e)
		}
		sameTree(t, "B", dir, map[string]string{"a.txt": "ALPHA", "b.txt": "bravo"})
		cancel()
	})
}

// TestFollowIndexesWhatItPlaced: a follow indexes at DIR only the files it
// wrote or kept. A file a conflict left alone holds the user's bytes: its
// record would give it the version's chunks (and a stamp of the user's
// bytes), so that a later share of DIR reused them and published the
// version's root for other content. A conflict whose file is missing (the
// user's file stands where the version has a folder) leaves the rest of
// the version served.
//
// It runs on the wall clock, not in a bubble: B's clock runs two minutes
// ahead of it, so that the files written here are old enough at once to be
// stamped and sealed (store/index.go), with no wait. (A bubble's clock
// starts in 2000, before any file's change time, and would stamp none; and
// B's clock cannot run ahead of A's in one, because names' Publisher dates
// records by time.Now, not the node's clock.) Nothing here waits on time:
// each step is one call that returns when done.
func TestFollowIndexesWhatItPlaced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var nodes []*Node
	for i := range 3 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(t)
		cfg.Host, cfg.NoDHT = h, true
		if i == 1 {
			cfg.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	a, b, fresh := nodes[0], nodes[1], nodes[2]
	connectMock(t, mn, a, b)
	src := filepath.Join(t.TempDir(), "site")
	writeTree(t, src, map[string]string{"a.txt": "alpha", "b.txt": "bravo", "c.txt": "charlie"})
	pub1, err := a.Publish(ctx, src, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{}); err != nil {
		t.Fatal(err)
	}

	// The user's bytes, as long as the version's: only the stamp's
	// size could tell them apart.
	writeTree(t, dir, map[string]string{"a.txt": "mine 2!", "d.txt": "mydel"})
	writeTree(t, src, map[string]string{"a.txt": "alpha 2", "d.txt": "delta", "e.txt": "echo"})
	if _, err := a.Publish(ctx, src, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	e, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Conflicts) != 2 || e.Written != 1 {
		t.Fatalf("event %+v; want conflicts a.txt and d.txt, e.txt written", e)
	}
	files, err := b.store.SharedFilesAt(dir)
	if err != nil {
		t.Fatal(err)
	}
	var indexed []string
	for _, sf := range files {
		rel, _ := filepath.Rel(dir, sf.Path)
		indexed = append(indexed, filepath.ToSlash(rel))
	}
	slices.Sort(indexed)
	if want := []string{"b.txt", "c.txt", "e.txt"}; !slices.Equal(indexed, want) {
		t.Errorf("files indexed at %s: %v; want %v (not the conflicts)", dir, indexed, want)
	}
	// The share counts what it indexes: its Files and its Size alike.
	shares, err := b.Shares()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(shares, func(sh Share) bool { return sh.Root == e.Root })
	if i < 0 {
		t.Fatalf("version 2 (%s) is not among B's shares %+v", e.Root, shares)
	}
	if sh, size := shares[i], int64(len("bravo")+len("charlie")+len("echo")); sh.Files != 3 || sh.Size != size {
		t.Errorf("the share of version 2 has %d files of %d bytes; want 3 of %d (b.txt, c.txt, e.txt)", sh.Files, sh.Size, size)
	}
	got, err := b.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := fresh.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Root != want.Root {
		t.Errorf("B shares %s as %s (%d files reused); a fresh node as %s", dir, got.Root, got.Reused, want.Root)
	}

	writeTree(t, dir, map[string]string{"sub": "my file"})
	writeTree(t, src, map[string]string{"sub/x.txt": "x-ray"})
	pub3, err := a.Publish(ctx, src, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err = b.SyncName(ctx, pub1.Name, dir, FollowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(e.Conflicts, func(c Conflict) bool { return c.Path == "sub/x.txt" }) {
		t.Fatalf("conflicts %+v; want sub/x.txt among them", e.Conflicts)
	}
	if _, err := b.store.Share(pub3.Root); err != nil {
		t.Errorf("version 3 is not shared from %s: %v", dir, err)
	}
	if _, err := b.store.ReadChunk(ctx, integrity.Chunk([]byte("echo")), nil); err != nil {
		t.Errorf("e.txt of version 3 is not served: %v", err)
	}
	if _, err := b.store.ReadChunk(ctx, integrity.Chunk([]byte("x-ray")), nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadChunk of sub/x.txt, which B does not hold: %v; want ErrNotFound", err)
	}
}
