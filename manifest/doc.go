// Package manifest is peer's data model above the chunks: file manifests,
// the pages of long chunk lists, and directory manifests, encoded as
// DAG-CBOR blocks (codec 0x71) so that standard IPLD tools can decode them.
// The CID of the root manifest (a file's or a directory's) is what users
// pass around.
//
// # Writing
//
// A FileBuilder takes a file's chunks in order and emits the blocks of its
// manifest as it goes, pages first and the root last; EncodeDir encodes a
// directory from its children's roots. Encode encodes any node.
//
// # Reading
//
// Decode checks a block against its CID and decodes it, refusing anything
// that is not strict, canonical DAG-CBOR in the schema below, so one node
// has exactly one encoding and one CID. Decoding is hostile by default: the
// block size, fan-out, depth, name lengths, file size and chunk sizes have
// hard limits, each checked before anything sized by the input is
// allocated; a manifest that claims a petabyte is only a number, refused
// unless its chunk count, chunk sizes and entries agree with it. Load,
// Chunks, ChunkAt, Locate, Resolve and Walk fetch blocks through a Getter
// and check each page against its parent and each child against its
// directory entry, so a tree that lies anywhere is refused where it lies.
//
// A few blocks can claim a huge tree (a page or a folder linked many
// times; honest trees do it too), so a walk is bounded by what it visits,
// not by the blocks that exist: a Walker charges every node, chunk, block,
// block byte and path byte to one budget, its Limits, checked before what
// it counts is loaded or handed out. Walk, Chunks and Resolve are a
// Walker's with DefaultLimits; a caller that walks a tree and its files'
// chunks uses one Walker for both.
//
// # Schema
//
// In IPLD schema notation, with the encoding spelled out. Every block is a
// map with every field present (no optional fields, no others), keys in
// DAG-CBOR order (shorter first, then bytewise), integers unsigned and in
// their shortest form, lengths definite, no floats, links as tag 42 over a
// byte string of 0x00 and the binary CID (CIDv1, sha2-256).
//
//	type Block union {
//	  | File "file"
//	  | Page "page"
//	  | Dir  "dir"
//	} representation inline { discriminantKey "t" }
//
//	type File struct {
//	  v       Int       # format version: 1
//	  name    String    # ValidName
//	  size    Int       # bytes; ≤ 2^50 (1 PiB)
//	  count   Int       # chunks; 0 iff size is 0
//	  depth   Int       # 0..4
//	  chunker Chunker
//	  entries [Entry]   # ≤ 8192; ChunkEntry at depth 0, else PageEntry
//	}
//
//	type Chunker union {
//	  | Fixed   "fixed"     # {"alg":"fixed","size":N}
//	  | FastCDC "fastcdc"   # {"alg":"fastcdc","avg":A,"max":X,"min":M}
//	} representation inline { discriminantKey "alg" }
//	type Fixed struct { size Int }            # 16 KiB..4 MiB
//	type FastCDC struct { avg Int  max Int  min Int }
//	                       # 16 KiB ≤ min ≤ avg ≤ max ≤ 4 MiB, avg a power of 2
//
//	type ChunkEntry struct {      # a chunk
//	  link &Raw                   # CIDv1 raw 0x55 sha2-256
//	  size Int                    # bytes, 1..4 MiB
//	} representation tuple
//
//	type PageEntry struct {       # a page of depth d-1, in a node of depth d
//	  link  &Page                 # CIDv1 dag-cbor 0x71 sha2-256
//	  size  Int                   # bytes the page covers
//	  count Int                   # chunks the page covers, 1..8192^d
//	} representation tuple
//
//	type Page struct {
//	  v       Int       # 1
//	  depth   Int       # 0..3, one less than its parent's
//	  entries [Entry]   # 1..8192, shaped as in File by depth
//	}
//
//	type Dir struct {
//	  v       Int         # 1
//	  name    String      # ValidName
//	  size    Int         # sum of the entries' sizes; ≤ 2^50
//	  entries [DirEntry]  # ≤ 8192, sorted bytewise by name, names unique
//	}
//	type DirEntry struct {
//	  dir  Bool           # the link is a Dir (else a File)
//	  link &Any           # CIDv1 dag-cbor: the child's File or Dir
//	  name String         # ValidName; equals the child's own name
//	  size Int            # the child's size
//	}
//
// Keys in encoded order: File t, v, name, size, count, depth, chunker,
// entries; Page t, v, depth, entries; Dir t, v, name, size, entries;
// DirEntry dir, link, name, size; Fixed alg, size; FastCDC alg, avg, max,
// min.
//
// # Rules beyond the shapes
//
//   - Every block is at most MaxBlockSize (1 MiB) encoded. A directory too
//     big for one block is refused: directory sharding does not exist yet.
//   - Chunk sizes follow the file's chunker: every chunk but the file's
//     last is at least MinChunk (exactly Size for fixed chunking), none is
//     larger than MaxChunk, none is empty. An empty file has size 0,
//     count 0, depth 0 and no entries.
//   - A node of depth d covers at most 8192^(d+1) chunks. Entries of a
//     node sum to what the node (or, for a page, its parent's entry)
//     claims, in bytes and in chunks; so the chunks of a file sum to its
//     size and count.
//   - Each page's depth is exactly one less than its parent's, so a tree
//     cannot loop.
//   - The tree a FileBuilder writes is canonical (pages filled from the
//     left, no level more than needed), but readers accept any tree that
//     keeps these rules. A tree of depth 1 with 128 pages holds a 1 TiB
//     file of 1 MiB chunks; with 8192 × 8192 × 4 MiB chunks, depth 1 covers
//     256 TiB and depth 2 the 1 PiB cap at any chunk size.
//
// Every exported function is pure or blocks only on its Getter; none keeps
// state between calls, and all are safe for concurrent use unless their
// documentation says otherwise (FileBuilder is not).
package manifest
