// Package importer turns a file or a folder on disk into chunks and a UnixFS
// DAG, without copying any of it.
//
// Import walks the path, cuts each regular file into chunks with the
// chunker, lays each file's chunks out as the raw leaves of a balanced
// UnixFS file and each folder as a UnixFS directory (HAMT-sharded when
// large) with package unixfs, and hands everything to a Sink: the interior
// nodes to keep (the leaves stay in the user's files), and
// for every file where each of its chunks lives (path, offset, size) together
// with the file's size and modification time, so that a store can serve the
// chunks straight from the user's files and notice when one is edited.
// A nil Sink only computes the root (`peer share --only-hash`).
//
// Bad input is refused with an error that names the path and says what to
// do: a missing path, an unreadable file, a file that changes while it is
// read, a symbolic-link loop, a name that cannot be shared safely
// (unixfs.ValidName).
//
// With the default chunking (fixed, 1 MiB) the root is the one of the
// IPIP-499 unixfs-v1-2025 profile, which Kubo computes for the same bytes
// (Result.Standard); with any other it is a valid UnixFS root, but not that
// one, unless every file is cut as fixed 1 MiB chunks would cut it (a file
// of one chunk is one leaf whatever the chunker). Special
// files (sockets, devices, pipes) inside a folder are skipped and listed in
// the Result.
//
// Metadata (Options.PreserveMode, PreserveMtime) is stored only when
// asked for, as Kubo's --preserve-mode and --preserve-mtime store it.
//
// Symbolic links: the path given is followed. A link inside the folder
// whose target lies inside the folder too is shared as a UnixFS symlink,
// its target as written (as `ipfs add -r` stores it; a fetch writes the
// link). A link that leads out of the folder is left out and listed in
// Result.SkippedLinks. With Options.FollowLinks every link is followed
// instead and what it leads to is shared (loops are caught). The
// folders in Options.Private (the node's home, with its identity key and
// API token) are never shared: a path that is one, lies inside one or holds
// one, even through a followed link, is refused with ErrPrivate.
//
// A file imported before need not be read again: Options.Reuse, asked
// before each file is read, may give the root and chunks an earlier import
// recorded for it (the node asks its store, which vouches for a file whose
// stamp did not move since). The file's DAG is then built from them, and
// checked to give that root, without reading a byte of the file.
//
// Import either succeeds or the Sink is told nothing is valid:
// callers commit what the Sink gathered only when Import returns nil.
package importer
