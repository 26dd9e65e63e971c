package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/importer"
	"github.com/peer-project/peer/unixfs"
)

// HashOptions tune Hash.
type HashOptions struct {
	// Chunking is how files are cut; the zero value means
	// DefaultConfig().Chunking. A root depends on it: hash with the
	// chunking the node shares with to get the root it will announce.
	Chunking Chunking
	// Progress, if not nil, is called after each file with the bytes
	// read so far. It must not block.
	Progress func(bytes int64)
	// FollowLinks follows symbolic links that lead out of the folder, as
	// ShareOptions.FollowLinks does.
	FollowLinks bool
	// PreserveMode and PreserveMtime store metadata, as
	// ShareOptions.PreserveMode and PreserveMtime do.
	PreserveMode, PreserveMtime bool
	// Private are folders that must not be hashed, whole or in part (a
	// path in one, or holding one, fails with ErrPrivate); a node's Share
	// passes its home.
	Private []string
}

// HashResult is what Hash returns: a root and the chunks under it.
type HashResult struct {
	Root     cid.Cid // the root Share would announce for the same bytes and chunking
	Name     string  // the base name of the path
	Dir      bool    // a folder, not a single file
	Size     int64   // bytes in all files
	Files    int     // regular files read
	Chunking string  // as Chunking.String says
	// Standard: Root is the unixfs-v1-2025 root that Kubo and other
	// IPFS implementations compute for the same bytes (every file was cut
	// as fixed 1 MiB chunks cut it); false when another chunking made
	// the root differ.
	Standard bool
	// Chunks are every file's chunks, in the order the files were read
	// (one entry per chunk of each file: a chunk in two files is listed
	// twice).
	Chunks []HashedChunk
	// Skipped are special files inside a folder that were left out;
	// SkippedLinks symbolic links that lead out of it, left out.
	Skipped, SkippedLinks []string
}

// HashedChunk is one chunk of a file that Hash read.
type HashedChunk struct {
	CID cid.Cid
	// Path is the file's path on disk (the hashed folder's path joined
	// with its path in the folder); "" when a single file was hashed.
	Path   string
	Offset int64 // in the file
	Size   uint32
}

// Hash computes the root of the file or folder at path, and the CID of each
// of its chunks, without a node: nothing is stored, served or announced
// (`peer share --only-hash`). It blocks until every byte has been read and
// hashed, honouring ctx between chunks. It keeps one small record per
// chunk in memory. It is safe for concurrent use.
func Hash(ctx context.Context, path string, opts HashOptions) (*HashResult, error) {
	params := opts.Chunking
	if params == (Chunking{}) {
		params = DefaultConfig().Chunking
	}
	list := &chunkList{}
	res, err := importer.Import(ctx, path, importer.Options{
		Params: params, Progress: opts.Progress, FollowLinks: opts.FollowLinks, Private: opts.Private,
		PreserveMode: opts.PreserveMode, PreserveMtime: opts.PreserveMtime,
	}, list)
	if err != nil {
		return nil, translate(fmt.Errorf("hash %s: %w", path, err))
	}
	if !res.Dir {
		for i := range list.chunks {
			list.chunks[i].Path = ""
		}
	}
	return &HashResult{
		Root: res.Root, Name: res.Name, Dir: res.Dir, Size: res.Size, Files: res.Files,
		Chunking: params.String(), Standard: res.Standard, Chunks: list.chunks, Skipped: res.Skipped, SkippedLinks: res.SkippedLinks,
	}, nil
}

// chunkList is an importer sink that keeps only the chunk list.
type chunkList struct {
	chunks []HashedChunk
}

func (l *chunkList) PutBlock(unixfs.Block) error  { return nil }
func (l *chunkList) FileDone(importer.File) error { return nil }
func (l *chunkList) AddChunks(path string, locs []importer.Loc) error {
	for _, x := range locs {
		l.chunks = append(l.chunks, HashedChunk{CID: x.CID, Path: path, Offset: x.Offset, Size: x.Size})
	}
	return nil
}
