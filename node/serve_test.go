package node

// What a node answers to a peer that names a root: only roots it serves
// (shared, inside a share, or being downloaded), and of those only their
// own DAG nodes (issue 15, findings 5 and 7).

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/multiformats/go-multihash"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/swarm/wire"
	"github.com/peer-project/peer/unixfs"
)

// probe is a bare libp2p host that speaks the wire protocol by hand.
func probe(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// answer is what a node said to a HELLO of a root and a WANT_NODE.
type answer struct {
	first wire.Msg // a HAVE, or an ERROR
	node  wire.Msg // NODE or NODE_MISSING for the block asked, nil if none came
}

// ask opens a session with n for root, and if n takes it, asks for block
// want and reads until the answer to it (or the end of the stream).
func ask(t *testing.T, ctx context.Context, h host.Host, n *Node, root, want cid.Cid) answer {
	t.Helper()
	if err := h.Connect(ctx, n.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	st, err := h.NewStream(ctx, n.ID(), wire.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	st.SetDeadline(time.Now().Add(20 * time.Second))
	r, w := wire.NewReader(st, 0), wire.NewWriter(st)
	if err := w.Write(&wire.Hello{Version: wire.Version, Root: root}); err != nil || w.Flush() != nil {
		t.Fatalf("hello: %v", err)
	}
	var a answer
	if a.first, err = r.Read(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	if _, ok := a.first.(*wire.Error); ok {
		return a
	}
	if err := w.Write(&wire.WantNode{CID: want}); err != nil || w.Flush() != nil {
		t.Fatalf("want node: %v", err)
	}
	for {
		m, err := r.Read()
		if err != nil {
			return a
		}
		switch m := m.(type) {
		case *wire.Node:
			if m.CID.Equals(want) {
				a.node = m
				return a
			}
		case *wire.NodeMissing:
			if m.CID.Equals(want) {
				a.node = m
				return a
			}
		case *wire.Error:
			return a
		}
	}
}

// notFound checks that n answered a HELLO of root with ERROR not found.
func notFound(t *testing.T, what string, a answer) {
	t.Helper()
	e, ok := a.first.(*wire.Error)
	if !ok || e.Code != wire.CodeNotFound {
		t.Errorf("%s: answered %T %v, then %T; want ERROR not found", what, a.first, a.first, a.node)
	}
}

// TestUnshareAnswersNothing is finding 7 of issue 15: after unshare, a
// peer that has the root (or the root of a folder in it) learned nothing
// more: no HAVE, no DAG node (its names and sizes), no chunk.
func TestUnshareAnswersNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	randomFile(t, dir, "top.bin", 300<<10, 1)
	randomFile(t, dir, "private/plans.bin", 600<<10, 2)
	a := startNode(t, testConfig(t))
	sh, err := a.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := a.Describe(ctx, Target{Root: sh.Root, Path: "private"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := probe(t)
	// While shared: both roots are served, DAG nodes answered.
	for _, root := range []cid.Cid{sh.Root, sub.Root} {
		got := ask(t, ctx, h, a, root, root)
		if _, ok := got.first.(*wire.HaveAll); !ok {
			t.Fatalf("shared %s: first message %T, want HAVE_ALL", root, got.first)
		}
		if _, ok := got.node.(*wire.Node); !ok {
			t.Fatalf("shared %s: WANT_NODE answered %T, want NODE", root, got.node)
		}
	}
	if err := a.Unshare(sh.Root); err != nil {
		t.Fatal(err)
	}
	notFound(t, "the unshared root", ask(t, ctx, h, a, sh.Root, sh.Root))
	notFound(t, "a folder of the unshared root", ask(t, ctx, h, a, sub.Root, sub.Root))
}

// TestUnshareKeepsWhatAnotherShareHolds: a folder shared on its own too
// is still answered once the share it is part of goes.
func TestUnshareKeepsWhatAnotherShareHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	randomFile(t, dir, "top.bin", 300<<10, 1)
	randomFile(t, dir, "both/kept.bin", 600<<10, 2)
	a := startNode(t, testConfig(t))
	sh, err := a.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := a.Share(ctx, filepath.Join(dir, "both"), ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Unshare(sh.Root); err != nil {
		t.Fatal(err)
	}
	h := probe(t)
	got := ask(t, ctx, h, a, inner.Root, inner.Root)
	if _, ok := got.first.(*wire.HaveAll); !ok {
		t.Fatalf("the folder still shared: first message %T %v, want HAVE_ALL", got.first, got.first)
	}
	notFound(t, "the unshared root", ask(t, ctx, h, a, sh.Root, sh.Root))
}

// TestStoredRootNotServed is finding 5 of issue 15: a root whose manifest
// a node has stored but does not serve (inspected, unshared or failed) is
// refused at HELLO, at once, however big the tree it claims: here a file
// of 2 Mi chunks in two blocks, whose layout a node built three times a
// session (about 250 MB each) before it found it could not serve it. And
// a session for a root that is served answers only that root's blocks.
func TestStoredRootNotServed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startNode(t, testConfig(t))
	// An inspected root: its blocks are in the store, its chunks nowhere.
	stored, count := reusedPageRoot(t, a, 256)
	// A share, to ask for the inspected root's blocks in its session.
	dir := t.TempDir()
	randomFile(t, dir, "shared.bin", 300<<10, 3)
	sh, err := a.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := probe(t)
	ask(t, ctx, h, a, sh.Root, sh.Root) // connected, warmed up

	const sessions = 4
	var (
		wg      sync.WaitGroup
		answers [sessions]answer
	)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = askNoFatal(ctx, h, a, stored, stored)
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d sessions for a stored root of %d chunks: %d MiB allocated", sessions, count, alloc>>20)
	for i, got := range answers {
		notFound(t, "session "+string(rune('0'+i))+" for a stored root", got)
	}
	if alloc > 32<<20 {
		t.Errorf("%d sessions for a root not served allocated %d MiB (limit 32)", sessions, alloc>>20)
	}
	// A session for the shared root does not hand out other roots'
	// blocks.
	got := ask(t, ctx, h, a, sh.Root, stored)
	if _, ok := got.node.(*wire.NodeMissing); !ok {
		t.Errorf("a block of another root in a session of %s: answered %T, want NODE_MISSING", sh.Root, got.node)
	}
}

// askNoFatal is ask for a goroutine other than the test's: a failure is an
// empty answer.
func askNoFatal(ctx context.Context, h host.Host, n *Node, root, want cid.Cid) answer {
	st, err := h.NewStream(ctx, n.ID(), wire.ProtocolID)
	if err != nil {
		return answer{}
	}
	defer st.Reset()
	st.SetDeadline(time.Now().Add(30 * time.Second))
	r, w := wire.NewReader(st, 0), wire.NewWriter(st)
	if w.Write(&wire.Hello{Version: wire.Version, Root: root}) != nil || w.Flush() != nil {
		return answer{}
	}
	var a answer
	a.first, _ = r.Read()
	if _, ok := a.first.(*wire.Error); ok || a.first == nil {
		return a
	}
	if w.Write(&wire.WantNode{CID: want}) != nil || w.Flush() != nil {
		return a
	}
	for {
		m, err := r.Read()
		if err != nil {
			return a
		}
		switch m.(type) {
		case *wire.Node, *wire.NodeMissing, *wire.Error:
			a.node = m
			return a
		}
	}
}

// reusedPageRoot stores in n a UnixFS file of two levels whose root's
// pages links all name one node of 1024 leaves of 1 MiB: two blocks that
// claim pages GiB. (A sparse file's zero leaves make such a DAG honestly.)
func reusedPageRoot(t *testing.T, n *Node, pages int) (cid.Cid, uint64) {
	t.Helper()
	node := func(links []*ipld.Link, sizes []uint64) *dag.ProtoNode {
		fs := ft.NewFSNode(ft.TFile)
		pn := new(dag.ProtoNode)
		if err := pn.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}); err != nil {
			t.Fatal(err)
		}
		for i, l := range links {
			if err := pn.AddRawLink("", l); err != nil {
				t.Fatal(err)
			}
			fs.AddBlockSize(sizes[i])
		}
		data, err := fs.GetBytes()
		if err != nil {
			t.Fatal(err)
		}
		pn.SetData(data)
		return pn
	}
	var (
		links []*ipld.Link
		sizes []uint64
	)
	for i := range unixfs.MaxLinks {
		links = append(links, &ipld.Link{Cid: integrity.Chunk(binary.BigEndian.AppendUint64(nil, uint64(i))), Size: 1 << 20})
		sizes = append(sizes, 1<<20)
	}
	page := node(links, sizes)
	links, sizes = nil, nil
	for range pages {
		links = append(links, &ipld.Link{Cid: page.Cid(), Size: 1 << 30})
		sizes = append(sizes, 1<<30)
	}
	root := node(links, sizes)
	if err := n.store.PutBlocks([]store.Block{{CID: page.Cid(), Data: page.RawData()}, {CID: root.Cid(), Data: root.RawData()}}); err != nil {
		t.Fatal(err)
	}
	return root.Cid(), uint64(pages) * unixfs.MaxLinks
}

// TestInspectCapped is finding 2 of issue 15: inspect of a 2-block root
// that claims more chunks than a walk may name (16385 pages of 1024
// chunks, 16 Mi + 1024) is refused with unixfs.ErrLimit before its leaves
// are listed; before, inspect listed every chunk (2.25 GB for a root of 64 Mi
// chunks). Open and Describe of it end as cheaply.
func TestInspectCapped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startNode(t, testConfig(t))
	root, count := reusedPageRoot(t, a, swarm.MaxLayoutChunks/unixfs.MaxLinks+1)
	var (
		m   *Listing
		err error
	)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err = a.Inspect(ctx, Target{Root: root}, nil)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("inspect of a root of %d chunks: %d KiB allocated: %v", count, alloc>>10, err)
	if err == nil || !errors.Is(err, unixfs.ErrLimit) {
		files := 0
		if m != nil {
			files = len(m.Files)
		}
		t.Fatalf("inspect = %d files, %v; want ErrLimit", files, err)
	}
	if alloc > 16<<20 {
		t.Errorf("refusing it allocated %d MiB (limit 16)", alloc>>20)
	}
	if _, err := a.Open(ctx, Target{Root: root}, FetchOptions{}); err == nil || !errors.Is(err, unixfs.ErrLimit) {
		t.Errorf("open = %v, want ErrLimit", err)
	}
}
