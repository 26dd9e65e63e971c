package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/carfile"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/unixfs"
)

// ErrBadCAR is wrapped by the error of an Import whose CAR is not a whole,
// valid CAR of UnixFS DAGs (it also wraps carfile's error, which says
// what is wrong): nothing of it is shared.
var ErrBadCAR = errors.New("node: bad CAR")

// importsDir is the folder of the home that holds imported leaves; a
// file of it goes when the last share that indexes it is unshared.
const importsDir = "imports"

// ExportOptions tune Export.
type ExportOptions struct {
	// Peers are asked first, besides a ticket's provider, for what the
	// node lacks.
	Peers []peer.AddrInfo
}

// ExportResult says what Export wrote.
type ExportResult struct {
	Root    cid.Cid // the CAR's root: the target's root, or the node below it
	Blocks  int64   // blocks in the CAR
	Bytes   int64   // bytes of those blocks
	Fetched bool    // the node lacked part of the DAG and fetched it first
}

// Export writes a CARv1 of the whole DAG that target names (its root, or
// the node at its path) to w, through carfile.Export: every block is
// verified again as it is read. What the node lacks, interior nodes and
// leaves, is first fetched from the swarm (as Fetch does, from every peer
// that has it) into a folder of the home, which is removed afterwards. It
// blocks until the CAR is written; on an error after the first byte, w
// holds a CAR cut short. It is safe for concurrent use.
func (n *Node) Export(ctx context.Context, target Target, w io.Writer, opts ExportOptions) (*ExportResult, error) {
	target, err := n.resolveName(ctx, target, opts.Peers)
	if err != nil {
		return nil, err
	}
	res, err := n.export(ctx, target, w, opts)
	return res, translate(err)
}

func (n *Node) export(ctx context.Context, target Target, w io.Writer, opts ExportOptions) (*ExportResult, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	src := n.sourcesOf(target, opts.Peers)
	root := target.Root
	if target.Path != "" {
		sub, _, err := n.resolve(ctx, target, src)
		if err != nil {
			return nil, err
		}
		root = sub.link.CID
	}
	res := &ExportResult{Root: root}
	if !n.holds(ctx, root) {
		dir, err := os.MkdirTemp(n.cfg.Home, "export-*")
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", root, err)
		}
		defer os.RemoveAll(dir)
		if _, err := n.fetch(ctx, root, filepath.Join(dir, "dag"), FetchOptions{}, src, fetchHooks{}); err != nil {
			return nil, fmt.Errorf("export %s: fetching what this node lacks: %w", root, err)
		}
		// The fetched copy is adopted as a share; it goes with its folder.
		defer func() {
			if err := n.Unshare(root); err != nil {
				n.log.Warn("export: dropping the fetched copy", "root", root, "err", err)
			}
		}()
		res.Fetched = true
	}
	st, err := carfile.Export(ctx, localBlocks{n.store}, root, w)
	res.Blocks, res.Bytes = st.Blocks, st.Bytes
	if err != nil {
		return res, fmt.Errorf("export %s: %w", root, err)
	}
	return res, nil
}

// localBlocks reads the blocks of a DAG the node holds; the empty raw
// leaf (an empty file's root), which no share indexes since it has no
// byte to read, is known by its CID alone.
type localBlocks struct{ s *store.Store }

func (g localBlocks) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := g.s.GetBlock(ctx, c)
	if err != nil && c.Prefix().Codec == cid.Raw && integrity.Verify(c, nil) == nil {
		return []byte{}, nil
	}
	return data, err
}

// holds reports whether the node has every block of root's DAG: its nodes
// in the store and its leaves in a share.
func (n *Node) holds(ctx context.Context, root cid.Cid) bool {
	l, err := swarm.BuildLayout(ctx, localBlocks{n.store}, root)
	if err != nil {
		return false
	}
	for _, c := range l.Chunks {
		if ok, _ := n.store.HasBlock(c.CID); ok {
			continue
		}
		if ok, err := n.store.HasChunk(c.CID); err != nil || !ok {
			return false
		}
	}
	return true
}

// ImportResult says what Import took in.
type ImportResult struct {
	Roots  []cid.Cid // the CAR's roots, each shared now
	Blocks int64     // blocks in the CAR
	Bytes  int64     // bytes of those blocks
	Path   string    // the file of the home that holds the CAR's leaves
}

// Import reads a CAR (v1, or v2's v1 payload) from r through
// carfile.Import, which verifies every block, and shares each of its
// roots. Interior nodes go to the store; the leaves, which lie in no
// user's file, are written one after the other into one file of the
// home's imports folder (named by the first root), which is indexed in
// place like any shared file: the store re-verifies each leaf it serves,
// and the share's staleness and Unshare work as for other shares. A CAR
// that is invalid, or does not hold the whole DAG of each of its roots,
// is refused with an error wrapping ErrBadCAR that says what is wrong;
// nothing of it is shared then and its leaves are dropped (interior nodes
// already verified stay in the store, as a fetch's do). It blocks until r
// ends; it is safe for concurrent use.
func (n *Node) Import(ctx context.Context, r io.Reader) (*ImportResult, error) {
	res, err := n.importCAR(ctx, r)
	return res, translate(err)
}

// leafLoc is where an imported leaf lies in the imports file.
type leafLoc struct {
	off  int64
	size uint32
}

func (n *Node) importCAR(ctx context.Context, r io.Reader) (_ *ImportResult, err error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	dir := filepath.Join(n.cfg.Home, importsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	f, err := os.CreateTemp(dir, ".import-*")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	leaves := map[cid.Cid]leafLoc{}
	var off int64
	var blocks []store.Block
	flush := func() error {
		err := n.store.PutBlocks(blocks)
		blocks = blocks[:0]
		return err
	}
	put := func(b unixfs.Block) error {
		if b.CID.Prefix().Codec != cid.Raw {
			blocks = append(blocks, store.Block{CID: b.CID, Data: b.Data})
			if len(blocks) >= 256 {
				return flush()
			}
			return nil
		}
		if _, err := f.Write(b.Data); err != nil {
			return err
		}
		leaves[b.CID] = leafLoc{off: off, size: uint32(len(b.Data))}
		off += int64(len(b.Data))
		return nil
	}
	cr, err := carfile.Import(ctx, r, put)
	if err == nil {
		err = flush()
	}
	if err != nil {
		var inc *carfile.IncompleteError
		if errors.As(err, &inc) {
			m := inc.Missing[0]
			return nil, fmt.Errorf("%w: %w: root %s lacks block %s; nothing was shared: "+
				"export the CAR again with the whole DAG (peer export ROOT, or ipfs dag export ROOT)", ErrBadCAR, carfile.ErrIncomplete, m.Root, m.Block)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("import: %w", ctx.Err())
		}
		return nil, fmt.Errorf("%w: %w; nothing was shared", ErrBadCAR, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return nil, fmt.Errorf("import: %w", err)
	}
	f = nil
	path := filepath.Join(dir, cr.Roots[0].String()+".leaves")
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	tmp = path // removed if sharing fails
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	// The walk reads raw roots (a file of one leaf) from the new file.
	g := unixfs.GetterFunc(func(ctx context.Context, c cid.Cid) ([]byte, error) {
		if l, ok := leaves[c]; ok {
			return readLeaf(path, l)
		}
		return n.store.GetBlock(ctx, c)
	})
	var shared []cid.Cid
	defer func() {
		if err != nil {
			for _, root := range shared {
				n.Unshare(root)
			}
		}
	}()
	for _, root := range cr.Roots {
		if err := n.shareImported(ctx, g, root, path, fi, leaves); err != nil {
			return nil, fmt.Errorf("import: root %s: %w", root, err)
		}
		shared = append(shared, root)
	}
	return &ImportResult{Roots: cr.Roots, Blocks: cr.Blocks, Bytes: cr.Bytes, Path: path}, nil
}

// shareImported indexes root's leaves in the imports file at path and
// serves it. Like adopt (fetch.go, which says why), it does not call
// store.ShareTx.Opened: the file was just written, and is not read again.
func (n *Node) shareImported(ctx context.Context, g unixfs.Getter, root cid.Cid, path string, fi os.FileInfo, leaves map[cid.Cid]leafLoc) error {
	l, err := swarm.BuildLayout(ctx, g, root)
	if err != nil {
		return err
	}
	tx, err := n.store.BeginShare(path)
	if err != nil {
		return err
	}
	for _, f := range l.Files {
		locs := make([]store.ChunkLoc, 0, f.Count)
		for i := f.First; i < f.First+f.Count; i++ {
			c := l.Chunks[i].CID
			ll, ok := leaves[c]
			if !ok {
				tx.Abort()
				return fmt.Errorf("%w: leaf %s is not in the CAR", carfile.ErrIncomplete, c)
			}
			locs = append(locs, store.ChunkLoc{CID: c, Offset: ll.off, Size: ll.size})
		}
		if err := addFile(tx, path, fi.Size(), fi.ModTime(), f.CID, locs); err != nil {
			tx.Abort()
			return err
		}
	}
	info := store.ShareInfo{Name: root.String(), Size: l.Size, Files: int64(len(l.Files)), Dir: l.Dir, Chunking: chunkingOf(l, n.cfg.Chunking)}
	if err := tx.Commit(root, info); err != nil {
		return err
	}
	return n.serve(ctx, root)
}

// readLeaf reads an imported leaf back.
func readLeaf(path string, l leafLoc) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, l.size)
	if _, err := f.ReadAt(b, l.off); err != nil {
		return nil, err
	}
	return b, nil
}

// dropImported removes the imports file at path, the leaves of an import
// whose share is gone, once no share indexes it. A path outside the home's
// imports folder (a user's file) is never touched.
func (n *Node) dropImported(path string) {
	if filepath.Dir(path) != filepath.Join(n.cfg.Home, importsDir) || filepath.Ext(path) != ".leaves" {
		return
	}
	shares, err := n.store.Shares()
	if err != nil {
		return
	}
	for _, sh := range shares {
		if sh.Path == path {
			return
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.log.Warn("removing the leaves of an unshared import", "path", path, "err", err)
	}
}
