package simulate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/importer"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/unixfs"
)

func (r *runner) writeFile() error {
	if err := os.MkdirAll(filepath.Dir(r.src), 0o755); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	f, err := os.Create(r.src)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	g := rand.New(rand.NewPCG(r.sc.Seed, 0xf11e))
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := r.sc.FileSize; left > 0; {
		n := min(left, int64(len(buf)))
		for i := int64(0); i < n; i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], g.Uint64())
		}
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return fmt.Errorf("simulate: %w", err)
		}
		left -= n
	}
	copy(r.sum[:], h.Sum(nil))
	if err := f.Close(); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}

// blockSink keeps the interior nodes of an import in memory.
type blockSink struct{ m memBlocks }

func (s blockSink) PutBlock(b unixfs.Block) error          { s.m[b.CID] = b.Data; return nil }
func (s blockSink) AddChunks(string, []importer.Loc) error { return nil }
func (s blockSink) FileDone(importer.File) error           { return nil }

func (r *runner) importFile(ctx context.Context) error {
	r.blocks = memBlocks{}
	res, err := importer.Import(ctx, r.src, importer.Options{Params: chunker.FixedParams(r.sc.ChunkSize)}, blockSink{r.blocks})
	if err != nil {
		return fmt.Errorf("simulate: import: %w", err)
	}
	r.root = res.Root
	if r.root.Prefix().Codec == cid.Raw {
		// A file of one chunk: its root is that chunk, which the
		// seeders serve as the root's one node too.
		data, err := os.ReadFile(r.src)
		if err != nil {
			return fmt.Errorf("simulate: import: %w", err)
		}
		r.blocks[r.root] = data
	}
	if r.layout, err = swarm.BuildLayout(ctx, r.blocks, r.root); err != nil {
		return fmt.Errorf("simulate: layout: %w", err)
	}
	return nil
}

func fileSum(path string) ([32]byte, error) {
	var out [32]byte
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return out, err
	}
	copy(out[:], h.Sum(nil))
	return out, nil
}
