package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/unixfs"
)

// Errors that Import wraps, for errors.Is.
var (
	// ErrChanged: a file changed while it was read, so its chunks would
	// not describe one version of it.
	ErrChanged = errors.New("importer: file changed while it was read")
	// ErrLoop: following symbolic links leads back into a folder being
	// imported.
	ErrLoop = errors.New("importer: symbolic link loop")
	// ErrName: a file or folder name that cannot be shared (see
	// unixfs.ValidName).
	ErrName = errors.New("importer: name cannot be shared")
	// ErrNotShareable: the path is neither a regular file nor a folder.
	ErrNotShareable = errors.New("importer: not a regular file or folder")
	// ErrPrivate: the path is one of Options.Private (the node's home),
	// is inside one, or holds one.
	ErrPrivate = errors.New("importer: the node's home cannot be shared")
)

// batchSize is how many chunk locations are handed to the Sink at a time:
// large enough to make few store transactions, small enough that a 1 TiB
// file's million chunks never sit in memory together.
const batchSize = 4096

// Loc says where one chunk of a file lives.
type Loc struct {
	CID    cid.Cid
	Offset int64
	Size   uint32
}

// File describes one imported regular file as it was when it was read.
type File struct {
	Path    string    // absolute, cleaned
	Size    int64     // bytes
	ModTime time.Time // modification time when it was read
	Root    cid.Cid   // its UnixFS root: a dag-pb file node, or its one raw leaf
	Chunks  int64     // number of chunks
}

// Sink receives what Import produces. Calls come from the goroutine that
// called Import, one at a time. An error from the Sink stops the import and
// is returned, wrapped.
type Sink interface {
	// PutBlock keeps an interior node of the DAG (a file node, a folder,
	// a HAMT shard); leaves are never handed over, only their locations.
	PutBlock(b unixfs.Block) error
	// AddChunks records where chunks of the file at path live. It is
	// called in order, in batches, before FileDone for that path.
	AddChunks(path string, locs []Loc) error
	// FileDone says the file at path has been read whole, unchanged.
	FileDone(f File) error
}

// Options tune Import. The zero value chunks with chunker.DefaultParams on
// every core.
type Options struct {
	// Params say how files are cut; the zero value means
	// chunker.DefaultParams().
	Params chunker.Params
	// Workers hash chunks in parallel; 0 means one per core.
	Workers int
	// Progress, if not nil, is called after each file with the bytes read
	// so far. It must not block.
	Progress func(bytes int64)
	// Private are folders that are never shared, whole or in part: the
	// node passes its home, which holds its identity key and API token. A
	// path that is one of them, lies inside one or holds one (directly or
	// through a followed link) is refused with ErrPrivate. Folders are
	// compared by device and inode, so another path to the same folder
	// is caught too.
	Private []string
	// FollowLinks follows the symbolic links inside a shared folder: what
	// they lead to is shared in their place, wherever it lies. Without it,
	// a link whose target lies inside the shared folder is shared as a
	// UnixFS symlink (its target as written, as Kubo's `ipfs add -r`
	// does: a fetch writes the link, and nothing is shared twice), and a
	// link that leads out of it is left out and listed in
	// Result.SkippedLinks (its target would not be there at the fetcher,
	// and its path says where the sharer's files live).
	FollowLinks bool
	// PreserveMode and PreserveMtime store each file's and folder's
	// permission bits (with setuid, setgid and sticky) and modification
	// time as UnixFS 1.5 metadata, as Kubo's --preserve-mode and
	// --preserve-mtime do. The roots then differ from the unixfs-v1-2025
	// ones (Result.Standard is false); a file of one chunk gets a dag-pb
	// root of its own, since a raw leaf holds no metadata.
	PreserveMode, PreserveMtime bool
	// Reuse, if not nil, is asked before a regular file is read: given
	// the file's path and its os.Stat, it returns the file's root and the
	// chunks that an earlier import recorded for it, in order, when it
	// can vouch that the file still holds the bytes they were hashed from
	// (node passes store.Reuser's File). The file's DAG is then built from
	// them without reading the file; when they do not cover the file
	// exactly or do not give that root (records cut short or cut another
	// way, other metadata asked for), the file is read and hashed as
	// usual. It is called from the goroutine that called Import.
	Reuse func(path string, info fs.FileInfo) (root cid.Cid, chunks []Loc, ok bool)

	// Open opens a file for reading; nil means os.Open. node.Share opens
	// with it to tell its store each file before a byte is read (a read
	// lease may seal it: store.ShareTx.Opened); tests to count what is
	// read, or to reach read errors that root's privileges would hide.
	Open func(name string) (io.ReadCloser, error)
}

// Result describes an import.
type Result struct {
	Root cid.Cid // the UnixFS root people pass around
	// Standard says whether Root is the unixfs-v1-2025 root that Kubo and
	// other careful IPFS implementations compute for the same bytes: it
	// is with the default chunking (fixed, 1 MiB), and with another only
	// where it cut every file as that would (files of one chunk).
	Standard bool
	Name     string   // the base name of the imported path
	Dir      bool     // a folder, not a single file
	Size     int64    // bytes in all files
	Files    int      // regular files imported
	Chunks   int64    // chunks in all files (a chunk in two files counts twice)
	Blocks   int      // interior nodes built (file nodes, folders, shards)
	Skipped  []string // special files inside a folder that were left out
	// Reused counts the files whose chunks Options.Reuse gave, which were
	// not read, and ReusedBytes their bytes.
	Reused      int
	ReusedBytes int64
	// SkippedLinks are the symbolic links inside a folder that lead out of
	// it and were left out (see Options.FollowLinks).
	SkippedLinks []string
	// Symlinks counts the links shared as UnixFS symlinks.
	Symlinks int
}

// Import imports the file or folder at path and returns its root. It blocks
// until every file has been read and hashed, honouring ctx between chunks.
// It is safe to run several Imports at once with different sinks.
func Import(ctx context.Context, path string, opt Options, sink Sink) (Result, error) {
	if opt.Params == (chunker.Params{}) {
		opt.Params = chunker.DefaultParams()
	}
	if err := opt.Params.Validate(); err != nil {
		return Result{}, err
	}
	if opt.Open == nil {
		opt.Open = func(name string) (io.ReadCloser, error) { return os.Open(name) }
	}
	if sink == nil {
		sink = discard{}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return Result{}, fmt.Errorf("import %s: %w", path, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return Result{}, fmt.Errorf("import: %w", describe(err))
	}
	name := filepath.Base(abs)
	if err := unixfs.ValidName(name); err != nil {
		return Result{}, fmt.Errorf("import %s: %w: %w (rename it, or share the folder it is in)", abs, ErrName, err)
	}
	// The shared tree is where abs really is: links inside it are judged
	// against that.
	top, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return Result{}, fmt.Errorf("import: %w", describe(err))
	}
	im := &run{ctx: ctx, opt: opt, sink: sink, top: top, private: privateDirs(opt.Private)}
	if err := im.checkPrivate(abs, top); err != nil {
		return Result{}, err
	}
	var res Result
	switch {
	case info.Mode().IsRegular():
		f, err := im.file(abs, name, info)
		if err != nil {
			return Result{}, err
		}
		res = Result{Root: f.link.CID, Name: name, Size: int64(f.size), Files: 1}
	case info.IsDir():
		d, err := im.dir(abs, name, info)
		if err != nil {
			return Result{}, err
		}
		res = Result{Root: d.link.CID, Name: name, Dir: true, Size: int64(d.size), Files: im.files}
	default:
		return Result{}, fmt.Errorf("import %s: %w (it is a %s)", abs, ErrNotShareable, kind(info.Mode()))
	}
	res.Chunks, res.Blocks, res.Skipped, res.SkippedLinks = im.chunks, im.blocks, im.skipped, im.skippedLinks
	res.Symlinks = im.links
	res.Reused, res.ReusedBytes = im.reused, im.reusedBytes
	res.Standard = !im.nonStandard && !opt.PreserveMode && !opt.PreserveMtime
	return res, nil
}

// run is the state of one Import.
type run struct {
	ctx          context.Context
	opt          Options
	sink         Sink
	visiting     []fs.FileInfo // folders on the current path, to catch loops
	top          string        // the shared path with every link resolved
	private      []privateDir  // Options.Private that exist
	bytes        int64
	files        int
	chunks       int64
	blocks       int
	skipped      []string
	skippedLinks []string
	links        int // symlinks shared as UnixFS symlinks
	reused       int // files whose chunks Options.Reuse gave
	reusedBytes  int64
	nonStandard  bool // a file was not cut as fixed 1 MiB chunks would cut it
}

// sameAny reports whether info (from os.Stat) is the same file as one of
// infos, across links: os.SameFile compares device and inode on Unix,
// volume and file index on Windows, on every system Go builds for.
func sameAny(info fs.FileInfo, infos ...fs.FileInfo) bool {
	for _, i := range infos {
		if os.SameFile(info, i) {
			return true
		}
	}
	return false
}

// meta returns the builder options that store what Options ask to keep of
// info.
func (im *run) meta(info fs.FileInfo) []unixfs.Option {
	var m unixfs.Meta
	if im.opt.PreserveMode {
		m.Mode = info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	}
	if im.opt.PreserveMtime {
		m.Mtime = info.ModTime()
	}
	if m.IsZero() {
		return nil
	}
	return []unixfs.Option{unixfs.WithMeta(m)}
}

func (im *run) putBlock(b unixfs.Block) error {
	im.blocks++
	if err := im.sink.PutBlock(b); err != nil {
		return fmt.Errorf("import: keeping node %s: %w", b.CID, err)
	}
	return nil
}

// entry is what a file or folder adds to its parent: its root link, and
// the bytes of the files in it.
type entry struct {
	link unixfs.Link
	size uint64
}

// file imports one regular file and returns its entry for a directory.
func (im *run) file(path, name string, before fs.FileInfo) (entry, error) {
	fb := unixfs.NewFileBuilder(im.putBlock, im.meta(before)...)
	reuse := im.reusable(path, before)
	var r io.ReadCloser
	if reuse == nil {
		var err error
		if r, err = im.opt.Open(path); err != nil {
			return entry{}, fmt.Errorf("import: %w", describe(err))
		}
		defer r.Close()
	}

	var (
		read  int64
		count int64
		short bool // a chunk shorter than the profile's came: it must be the last
		batch = make([]Loc, 0, min(batchSize, before.Size()/int64(im.opt.Params.MinChunk())+1))
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := im.sink.AddChunks(path, batch); err != nil {
			return fmt.Errorf("import %s: recording chunks: %w", path, err)
		}
		batch = batch[:0]
		return nil
	}
	onChunk := func(c chunker.Chunk) error {
		if c.Offset+int64(c.Size) > before.Size() {
			return fmt.Errorf("import %s: %w: it grew past %d bytes while being read; share it again once it is no longer written to",
				path, ErrChanged, before.Size())
		}
		if err := fb.Add(unixfs.Leaf(c.CID, c.Size)); err != nil {
			return fmt.Errorf("import %s: %w", path, err)
		}
		batch = append(batch, Loc{CID: c.CID, Offset: c.Offset, Size: uint32(c.Size)})
		read += int64(c.Size)
		count++
		im.chunks++
		// The root is the profile's if every file's leaves are those of
		// fixed 1 MiB chunks: all of 1 MiB but the last, whatever cut them
		// (a file of one chunk is one leaf under any chunker).
		if short || c.Size > unixfs.ChunkSize {
			im.nonStandard = true
		}
		short = short || c.Size < unixfs.ChunkSize
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	}
	var err error
	switch {
	case reuse != nil:
		// The chunks an earlier import hashed, checked by reusable: they
		// go where read ones would, and the file is not read.
		for _, l := range reuse {
			if err = onChunk(chunker.Chunk{CID: l.CID, Offset: l.Offset, Size: int(l.Size)}); err != nil {
				break
			}
		}
	case before.Size() <= int64(im.opt.Params.MinChunk()):
		// A file of one chunk at most (most files of a big folder): read
		// and hashed here, without the Splitter's pipeline and its
		// buffers of a few MiB, which cost more than the file.
		err = im.smallFile(r, before.Size(), onChunk)
	default:
		sp := chunker.Splitter{Params: im.opt.Params, Workers: im.opt.Workers}
		err = sp.Split(im.ctx, r, onChunk)
	}
	if err != nil {
		if errors.Is(err, ErrChanged) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return entry{}, err
		}
		return entry{}, fmt.Errorf("import %s: %w", path, err)
	}
	after, err := os.Stat(path)
	if err != nil {
		return entry{}, fmt.Errorf("import: %w", describe(err))
	}
	if read != before.Size() || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return entry{}, fmt.Errorf("import %s: %w (size %d → %d, read %d bytes); share it again once it is no longer written to",
			path, ErrChanged, before.Size(), after.Size(), read)
	}
	if err := flush(); err != nil {
		return entry{}, err
	}
	root, err := fb.Finish()
	if err != nil {
		return entry{}, fmt.Errorf("import %s: %w", path, err)
	}
	if err := im.sink.FileDone(File{Path: path, Size: read, ModTime: before.ModTime(), Root: root.CID, Chunks: count}); err != nil {
		return entry{}, fmt.Errorf("import %s: %w", path, err)
	}
	im.files++
	im.bytes += read
	if reuse != nil {
		im.reused++
		im.reusedBytes += read
	}
	if im.opt.Progress != nil {
		im.opt.Progress(im.bytes)
	}
	return entry{link: root, size: uint64(read)}, nil
}

// reusable returns the chunks Options.Reuse gives for the file at path,
// if they cover its before.Size() bytes in order without a gap and build
// the root Reuse gave (with the metadata this import stores): nil if not,
// and the file is to be read.
func (im *run) reusable(path string, before fs.FileInfo) []Loc {
	if im.opt.Reuse == nil {
		return nil
	}
	root, locs, ok := im.opt.Reuse(path, before)
	if !ok {
		return nil
	}
	fb := unixfs.NewFileBuilder(func(unixfs.Block) error { return nil }, im.meta(before)...)
	end := int64(0)
	for _, l := range locs {
		if l.Offset != end || l.Size == 0 || int64(l.Size) > before.Size()-end {
			return nil
		}
		if err := fb.Add(unixfs.Leaf(l.CID, int(l.Size))); err != nil {
			return nil
		}
		end += int64(l.Size)
	}
	if end != before.Size() {
		return nil
	}
	got, err := fb.Finish()
	if err != nil || !got.CID.Equals(root) {
		return nil
	}
	if locs == nil {
		locs = []Loc{} // an empty file: reused, with no chunk
	}
	return locs
}

// smallFile reads a file of size bytes, at most one chunk, from r and hands
// it to fn as its one chunk (none when empty). A byte past size goes to fn
// too, which refuses the file as grown.
func (im *run) smallFile(r io.Reader, size int64, fn func(chunker.Chunk) error) error {
	if err := im.ctx.Err(); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	return fn(chunker.Chunk{CID: integrity.Chunk(data), Size: len(data), Data: data})
}

// dir imports a folder and everything below it, following symbolic links.
func (im *run) dir(path, name string, info fs.FileInfo) (entry, error) {
	for _, p := range im.private {
		if os.SameFile(info, p.info) {
			return entry{}, privateError(path, p.path)
		}
	}
	if sameAny(info, im.visiting...) {
		return entry{}, fmt.Errorf("import %s: %w: it leads back to a folder that contains it; remove the link or share a folder inside the loop", path, ErrLoop)
	}
	im.visiting = append(im.visiting, info)
	defer func() { im.visiting = im.visiting[:len(im.visiting)-1] }()
	if err := im.ctx.Err(); err != nil {
		return entry{}, err
	}
	des, err := os.ReadDir(path)
	if err != nil {
		return entry{}, fmt.Errorf("import: %w", describe(err))
	}
	sort.Slice(des, func(i, j int) bool { return des[i].Name() < des[j].Name() })
	db, err := unixfs.NewDirBuilder(im.putBlock, im.meta(info)...)
	if err != nil {
		return entry{}, fmt.Errorf("import %s: %w", path, err)
	}
	var size uint64
	for _, de := range des {
		child := filepath.Join(path, de.Name())
		if err := unixfs.ValidName(de.Name()); err != nil {
			return entry{}, fmt.Errorf("import %s: %w: %w (rename it or move it out of the folder)", child, ErrName, err)
		}
		if de.Type()&fs.ModeSymlink != 0 && !im.opt.FollowLinks {
			l, ok, err := im.symlink(child)
			if err != nil {
				return entry{}, err
			}
			if !ok {
				im.skippedLinks = append(im.skippedLinks, child)
				continue
			}
			if err := db.Add(im.ctx, de.Name(), l); err != nil {
				return entry{}, fmt.Errorf("import %s: %w", child, err)
			}
			im.links++
			continue
		}
		ci, err := os.Stat(child) // follows links
		if err != nil {
			if errors.Is(err, syscall.ELOOP) {
				return entry{}, fmt.Errorf("import %s: %w: the link points back at itself; remove it", child, ErrLoop)
			}
			return entry{}, fmt.Errorf("import: %w", describe(err))
		}
		if de.Type()&fs.ModeSymlink != 0 {
			follow, err := im.link(child)
			if err != nil {
				return entry{}, err
			}
			if !follow {
				im.skippedLinks = append(im.skippedLinks, child)
				continue
			}
		}
		var e entry
		switch {
		case ci.Mode().IsRegular():
			e, err = im.file(child, de.Name(), ci)
		case ci.IsDir():
			e, err = im.dir(child, de.Name(), ci)
		default:
			im.skipped = append(im.skipped, child)
			continue
		}
		if err != nil {
			return entry{}, err
		}
		if err := db.Add(im.ctx, de.Name(), e.link); err != nil {
			return entry{}, fmt.Errorf("import %s: %w", child, err)
		}
		size += e.size
	}
	root, err := db.Finish(im.ctx)
	if err != nil {
		return entry{}, fmt.Errorf("import %s: %w", path, err)
	}
	return entry{link: root, size: size}, nil
}

// symlink makes the UnixFS symlink of the link at path, whose target (as
// written) is kept, when that target lies inside the shared tree: resolved
// if it can be, else (a link that dangles or loops) as written, from the
// link's folder. It reports false, and makes nothing, for a link that
// leads out of the tree: such a link is left out (or followed, with
// FollowLinks, which never calls this).
func (im *run) symlink(path string) (unixfs.Link, bool, error) {
	target, err := os.Readlink(path)
	if err != nil {
		return unixfs.Link{}, false, fmt.Errorf("import: %w", describe(err))
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		// Dangling or looping: judged as written, from the link's
		// folder without links (as im.top is).
		real = filepath.Clean(target)
		if !filepath.IsAbs(target) {
			dir, err := filepath.EvalSymlinks(filepath.Dir(path))
			if err != nil {
				return unixfs.Link{}, false, fmt.Errorf("import: %w", describe(err))
			}
			real = filepath.Join(dir, target)
		}
	}
	if !within(im.top, real) {
		return unixfs.Link{}, false, nil
	}
	var opts []unixfs.Option
	if im.opt.PreserveMtime {
		if fi, err := os.Lstat(path); err == nil {
			opts = append(opts, unixfs.WithMeta(unixfs.Meta{Mtime: fi.ModTime()}))
		}
	}
	l, err := unixfs.Symlink(target, im.putBlock, opts...)
	if err != nil {
		return unixfs.Link{}, false, fmt.Errorf("import %s: %w", path, err)
	}
	return l, true, nil
}

// link decides whether to follow the symbolic link at path: yes when its
// target lies inside the shared tree, or with FollowLinks; an error when
// the target is private.
func (im *run) link(path string) (bool, error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false, fmt.Errorf("import: %w", describe(err))
	}
	if !within(im.top, target) && !im.opt.FollowLinks {
		return false, nil
	}
	return true, im.checkPrivate(path, target)
}

// within reports whether path is dir or lies below it (both cleaned,
// without links).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// privateDir is one of Options.Private.
type privateDir struct {
	path string
	info fs.FileInfo // from os.Stat
}

// privateDirs returns the folders of paths that exist, as os.Stat found them.
func privateDirs(paths []string) []privateDir {
	var out []privateDir
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			continue // nothing there to protect
		}
		out = append(out, privateDir{path: p, info: info})
	}
	return out
}

// checkPrivate refuses path (whose target, links resolved, is real) when
// real is a private folder or lies inside one: the folders from real up to
// the root are compared with them.
func (im *run) checkPrivate(path, real string) error {
	if len(im.private) == 0 {
		return nil
	}
	for dir := real; ; dir = filepath.Dir(dir) {
		if info, err := os.Stat(dir); err == nil {
			for _, p := range im.private {
				if os.SameFile(info, p.info) {
					return privateError(path, p.path)
				}
			}
		}
		if parent := filepath.Dir(dir); parent == dir {
			return nil
		}
	}
}

func privateError(path, home string) error {
	if path == home {
		return fmt.Errorf("import %s: %w: it is the node's home (identity key, API token, database), which must never be shared; share the folders you mean to share instead", path, ErrPrivate)
	}
	return fmt.Errorf("import %s: %w: it is, holds or leads into %s, the node's home (identity key, API token, database), which must never be shared; share the folders you mean to share instead, or move the home out of the way with --home", path, ErrPrivate, home)
}

// describe turns a file-system error into one that says what to do.
func describe(err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if errors.As(err, &pe) {
			return fmt.Errorf("%s does not exist: check the path: %w", pe.Path, fs.ErrNotExist)
		}
	case errors.Is(err, fs.ErrPermission):
		if errors.As(err, &pe) {
			return fmt.Errorf("%s cannot be read: permission denied; fix its permissions or share as its owner: %w", pe.Path, fs.ErrPermission)
		}
	case errors.Is(err, syscall.ELOOP):
		if errors.As(err, &pe) {
			return fmt.Errorf("%s: %w: a symbolic link points back at itself; remove it", pe.Path, ErrLoop)
		}
	}
	return err
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "special file"
	}
}

// discard is the Sink of an import that only computes the root.
type discard struct{}

func (discard) PutBlock(unixfs.Block) error   { return nil }
func (discard) AddChunks(string, []Loc) error { return nil }
func (discard) FileDone(File) error           { return nil }
