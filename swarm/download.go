package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/unixfs"
)

// PartialSuffix marks a download in progress: ".NAME.ROOT.peer-partial"
// beside the destination NAME, where ROOT is the root's CID. A path with it
// is never a complete file.
const PartialSuffix = ".peer-partial"

// Errors of the staging area and the destination.
var (
	// ErrStagingBusy: another fetch, in this process or another, uses the
	// staging area of the same root and destination.
	ErrStagingBusy = errors.New("swarm: another fetch of this root to this destination is running")
	// ErrStagingUnsafe: the staging path is a symlink or not what a fetch
	// makes there, another user made it or can change it, or it holds what
	// the root does not list.
	ErrStagingUnsafe = errors.New("swarm: unsafe staging area")
	// ErrWontReplace: force was given, but the destination is not one that
	// a fetch replaces: a folder for a file or a file for a folder, or a
	// folder that holds what the root does not list.
	ErrWontReplace = errors.New("swarm: force does not replace this destination")
)

// writeBehindEvery is how many bytes a download writes between two calls of
// writeBehind, which start writing them to disk and drop from the page cache
// those written before.
const writeBehindEvery = 8 << 20

// syncEvery is how many bytes a download writes between two fsyncs of the
// file, each on a goroutine of its own while the download goes on. Data is
// on disk by then (writeBehind), but the file system's own work is not:
// without these, the fsync that ends a 1 GiB download took 0.1 to 0.5 s
// on ext4 here, with them under 1 ms.
const syncEvery = 128 << 20

// maxOpenFiles bounds the file handles one download keeps open; files past
// it are opened for each read or write.
const maxOpenFiles = 256

// PartialPath returns where the download of root to dest is staged: each
// root has its own staging area, so that two roots fetched to one name never
// mix. NAME is cut short if the whole name would be longer than 255 bytes.
func PartialPath(dest string, root cid.Cid) string {
	base, suffix := filepath.Base(dest), "."+root.String()+PartialSuffix
	if n := 255 - 1 - len(suffix); len(base) > n {
		for n > 0 && !utf8.RuneStart(base[n]) {
			n--
		}
		base = base[:n]
	}
	return filepath.Join(filepath.Dir(dest), "."+base+suffix)
}

// download is the on-disk side of one fetch: the staged files, which chunks
// they hold verified, and the final rename. It is a Source, so a node serves
// a root while it is still downloading it. Safe for concurrent use.
type download struct {
	layout  *Layout
	dest    string
	partial string

	// replaceable is FetchOptions.Replaceable (nil: nothing unlisted is).
	replaceable func(rel string) bool
	// skip marks the files not fetched (FetchOptions.Want; nil: none):
	// never opened, written, read or had.
	skip []bool

	old      []bool       // file fi was staged by an earlier fetch: recheck reads it
	unsynced atomic.Int64 // bytes written since the last writeBehind
	unsaved  atomic.Int64 // bytes written since the last background fsync began
	saveAt   int64        // syncEvery; tests lower it
	syncing  atomic.Bool  // a background fsync runs
	bg       sync.WaitGroup
	fsync    func(*os.File) error // nil means (*os.File).Sync; tests record

	// io is held (shared) over every read and write of the files and
	// (exclusive) while they are closed or moved; mu guards the state
	// below and is held only briefly, so that marking a chunk as had never
	// waits for a read or a write of another. Lock io before mu.
	io sync.RWMutex

	mu       sync.RWMutex
	have     *bitfield.Bitfield
	bytes    int64 // in verified chunks
	files    map[int]*os.File
	lock     *os.File // a folder root's staging folder, open and locked
	syncErr  error    // of a background fsync (syncBehind)
	complete bool     // renamed into place
	handoff  handoff  // chunks just written, for a streaming reader
}

// openDownload prepares the staging area for l at dest: the partial file or
// folder, every file of it allocated to its size. A staging area left by an
// earlier fetch of the same root is kept: recheck finds what it already
// holds. The staging area is locked until closeFiles: a second download of
// the same root to dest fails with ErrStagingBusy meanwhile. A staging path
// that is a symlink, that another user made or can write, or (a folder)
// that holds what the root does not list is refused with ErrStagingUnsafe.
func openDownload(l *Layout, dest string) (*download, error) {
	return openDownloadOf(l, dest, nil)
}

// openDownloadOf is openDownload of the files of l that skip does not
// mark (nil: every file): see FetchOptions.Want.
func openDownloadOf(l *Layout, dest string, skip []bool) (*download, error) {
	if skip != nil && len(skip) != len(l.Files) {
		return nil, fmt.Errorf("swarm: %d files to skip or not, for %d files", len(skip), len(l.Files))
	}
	d := &download{layout: l, dest: dest, partial: PartialPath(dest, l.Root), have: bitfield.New(l.NumChunks()), files: map[int]*os.File{}, old: make([]bool, len(l.Files)), saveAt: syncEvery, skip: skip}
	d.handoff.max = handoffBytes
	if err := d.open(); err != nil {
		d.closeFiles()
		return nil, err
	}
	return d, nil
}

func (d *download) open() error {
	l := d.layout
	if l.Dir {
		// A folder of our own (0700 until finish), locked before anything
		// in it is touched.
		lock, err := stagingDir(d.partial)
		if err != nil {
			return err
		}
		d.lock = lock
		if err := lockStaging(lock); err != nil {
			return err
		}
		extra, err := unlisted(l, d.partial)
		if err != nil {
			return fmt.Errorf("swarm: staging %s: %w", d.partial, err)
		}
		if len(extra) > 0 {
			return fmt.Errorf("%w: %s holds %s, which the root does not list: move it out of there (a fetch never moves it into the destination), then fetch again", ErrStagingUnsafe, d.partial, listNames(extra))
		}
		for _, sub := range l.Dirs {
			if err := stagingSubdir(filepath.Join(d.partial, filepath.FromSlash(sub))); err != nil {
				return err
			}
		}
	}
	for fi, f := range l.Files {
		if d.skipped(fi) {
			// Not fetched: a copy an earlier fetch staged goes, so that
			// only what this one verifies is moved into place.
			if err := removeStaged(d.pathLocked(fi)); err != nil {
				return err
			}
			continue
		}
		fh, reused, err := openStaged(d.pathLocked(fi))
		if err != nil {
			return err
		}
		if !l.Dir {
			// The file is the staging area: lock it before it is
			// truncated.
			if err := lockStaging(fh); err != nil {
				fh.Close()
				return err
			}
		}
		st, err := fh.Stat()
		if err == nil {
			// A new file is all holes: nothing in it to recheck.
			d.old[fi] = reused && st.Size() > 0
			if st.Size() != f.Size {
				err = fh.Truncate(f.Size)
			}
		}
		if err != nil {
			fh.Close()
			return fmt.Errorf("swarm: allocating %s: %w", fh.Name(), err)
		}
		if len(d.files) < maxOpenFiles || !l.Dir {
			d.files[fi] = fh
		} else {
			fh.Close()
		}
	}
	return nil
}

// skipped reports whether file fi is not fetched (FetchOptions.Want).
func (d *download) skipped(fi int) bool { return d.skip != nil && d.skip[fi] }

// wanted returns the bytes and the chunks of the files fetched.
func (d *download) wanted() (bytes, chunks int64) {
	if d.skip == nil {
		return d.layout.Size, d.layout.NumChunks()
	}
	for fi, f := range d.layout.Files {
		if !d.skip[fi] {
			bytes, chunks = bytes+f.Size, chunks+f.Count
		}
	}
	return bytes, chunks
}

// schedBits is what the scheduler starts from: the chunks had, and those
// of the files not fetched, which it must never ask for.
func (d *download) schedBits() []byte {
	d.mu.RLock()
	b := d.have.Clone()
	d.mu.RUnlock()
	if d.skip != nil {
		for fi, f := range d.layout.Files {
			if d.skip[fi] {
				for i := f.First; i < f.First+f.Count; i++ {
					b.Set(i)
				}
			}
		}
	}
	return b.Bytes()
}

// removeStaged removes the regular file at path, if there is one; a
// missing one is no error, anything else there is ErrStagingUnsafe.
func removeStaged(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("swarm: staging: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a file a fetch staged: move it out of there, then fetch again", ErrStagingUnsafe, path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("swarm: staging: %w", err)
	}
	return nil
}

// stagingDir makes the staging folder at path (mode 0700), or opens the one
// an earlier fetch left there if it is a folder this user owns and no other
// can write, and returns it open.
func stagingDir(path string) (*os.File, error) {
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("swarm: staging: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("swarm: staging: %w", err)
	}
	if err := checkStagingType(path, fi, true); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("swarm: staging: %w", err)
	}
	if st, err := f.Stat(); err != nil || !os.SameFile(fi, st) {
		f.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened: fetch again", ErrStagingUnsafe, path)
	}
	return f, nil
}

// stagingSubdir makes a folder inside the staging folder, or checks that
// the one there is a folder and not a symlink.
func stagingSubdir(path string) error {
	err := os.Mkdir(path, 0o755)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("swarm: staging: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("swarm: staging: %w", err)
	}
	return checkStagingType(path, fi, true)
}

// openStaged opens a staged file for reading and writing: created (never
// through a symlink), or reused if it is a regular file this user owns, no
// other can write, with one link. It reports whether it was reused.
func openStaged(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|noFollow, 0o644)
	if err == nil {
		return f, false, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, fmt.Errorf("swarm: staging: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, false, fmt.Errorf("swarm: staging: %w", err)
	}
	if err := checkStagingType(path, fi, false); err != nil {
		return nil, false, err
	}
	if f, err = os.OpenFile(path, os.O_RDWR|noFollow, 0); err != nil {
		return nil, false, fmt.Errorf("swarm: staging: %w", err)
	}
	if st, err := f.Stat(); err != nil || !os.SameFile(fi, st) {
		f.Close()
		return nil, false, fmt.Errorf("%w: %s changed while it was opened: fetch again", ErrStagingUnsafe, path)
	}
	return f, true, nil
}

// checkStagingType refuses a staging path that is a symlink, not a folder
// (dir) or not a regular file (!dir), or not safely ours (checkOwned).
func checkStagingType(path string, fi fs.FileInfo, dir bool) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: %s is a symlink, and a fetch never writes through one: remove it, or choose another destination", ErrStagingUnsafe, path)
	case dir && !fi.IsDir():
		return fmt.Errorf("%w: %s is not a folder: remove it, or choose another destination", ErrStagingUnsafe, path)
	case !dir && !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file: remove it, or choose another destination", ErrStagingUnsafe, path)
	}
	return checkOwned(path, fi)
}

// unlisted returns what the folder dir holds that l does not list, as
// slash-separated paths below it: anything but l's folders (as folders) and
// l's files (as regular files). It does not look inside what it returns.
func unlisted(l *Layout, dir string) ([]string, error) {
	dirs := make(map[string]bool, len(l.Dirs))
	for _, p := range l.Dirs {
		dirs[p] = true
	}
	files := make(map[string]bool, len(l.Files))
	for _, f := range l.Files {
		files[f.Path] = true
	}
	links := make(map[string]string, len(l.Symlinks))
	for _, sl := range l.Symlinks {
		links[sl.Path] = sl.Target
	}
	var extra []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case e.IsDir() && dirs[rel]:
			return nil
		case e.Type().IsRegular() && files[rel]:
			return nil
		case e.Type()&fs.ModeSymlink != 0:
			// A symlink of l, as a fetch wrote it (never followed).
			if t, ok := links[rel]; ok {
				if got, err := os.Readlink(p); err == nil && got == t {
					return nil
				}
			}
		}
		extra = append(extra, rel)
		if e.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	return extra, err
}

// listNames names the first few of paths for an error message.
func listNames(paths []string) string {
	const show = 3
	s := strconv.Quote(paths[0])
	for _, p := range paths[1:min(len(paths), show)] {
		s += ", " + strconv.Quote(p)
	}
	if len(paths) > show {
		s += fmt.Sprintf(" and %d more", len(paths)-show)
	}
	return s
}

// pathLocked returns where file fi is now.
func (d *download) pathLocked(fi int) string {
	base := d.partial
	if d.complete {
		base = d.dest
	}
	if !d.layout.Dir {
		return base
	}
	return filepath.Join(base, filepath.FromSlash(d.layout.Files[fi].Path))
}

// syncFileLocked syncs file fi and checks its size. A file the download
// does not hold open is opened and closed again before it returns: a folder
// of 100,000 files must not hold 100,000 descriptors.
func (d *download) syncFileLocked(fi int) error {
	fh := d.files[fi]
	if fh == nil {
		var err error
		if fh, err = os.OpenFile(d.pathLocked(fi), os.O_RDWR|noFollow, 0); err != nil {
			return err
		}
		defer fh.Close()
	}
	if err := d.sync(fh); err != nil {
		return fmt.Errorf("swarm: syncing %s: %w", fh.Name(), err)
	}
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	if want := d.layout.Files[fi].Size; st.Size() != want {
		return fmt.Errorf("swarm: %s is %d bytes, but the root declares %d: something other than this fetch changed it; remove it and fetch again", fh.Name(), st.Size(), want)
	}
	return nil
}

// withFile runs fn on an open handle of file fi. It is used under io's read
// lock, which is what keeps closeFiles and finish from
// closing or renaming it in the middle of the read or write; the lock
// guards no other state during that I/O.
func (d *download) withFile(fi int, flag int, fn func(*os.File) error) error {
	d.io.RLock()
	defer d.io.RUnlock()
	d.mu.RLock()
	fh := d.files[fi]
	path := d.pathLocked(fi)
	d.mu.RUnlock()
	if fh != nil {
		return fn(fh)
	}
	fh, err := os.OpenFile(path, flag|noFollow, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	return fn(fh)
}

// recheck verifies every chunk the staging area holds, on every core, and
// marks those that match; files that openDownload created are skipped. Chunks are written only after they are verified,
// so this finds every chunk an interrupted fetch had, whatever it had
// recorded. It returns how many it found.
func (d *download) recheck(ctx context.Context) (int64, error) {
	n := d.layout.NumChunks()
	next := make(chan int64)
	var workers group
	for range runtime.GOMAXPROCS(0) {
		workers.Go(func() {
			var buf []byte
			for i := range next {
				c := d.layout.Chunks[i]
				buf = grow(buf, int(c.Size))
				err := d.withFile(int(c.File), os.O_RDONLY, func(f *os.File) error {
					_, err := f.ReadAt(buf, c.Offset)
					return err
				})
				if err == nil && integrity.Verify(c.CID, buf) == nil {
					d.mu.Lock()
					if d.have.Set(i) {
						d.bytes += int64(c.Size)
					}
					d.mu.Unlock()
				}
			}
		})
	}
	var err error
feed:
	for i := range n {
		if !d.old[d.layout.Chunks[i].File] {
			continue
		}
		select {
		case next <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	workers.wait()
	found, _ := d.counts()
	return found, err
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// write stores verified chunk i. It reports false when it was already had.
func (d *download) write(i int64, data []byte) (bool, error) {
	fresh, _, err := d.writeAt(i, data, false)
	return fresh, err
}

// writeOwned is write of a buffer from getBuf that the caller gives up
// when kept is true: the download then holds it for a streaming reader
// (see handoff) and gives it back to the pool itself; the caller must not
// use it again. When kept is false the buffer is still the caller's.
func (d *download) writeOwned(i int64, data []byte) (fresh, kept bool, err error) {
	return d.writeAt(i, data, true)
}

func (d *download) writeAt(i int64, data []byte, own bool) (fresh, kept bool, err error) {
	if d.Has(i) {
		return false, false, nil
	}
	c := d.layout.Chunks[i]
	if d.skipped(int(c.File)) {
		return false, false, nil // not fetched: nowhere to write it
	}
	if len(data) != int(c.Size) {
		// conn.block refuses such a block before it gets here.
		return false, false, fmt.Errorf("swarm: chunk %d is %d bytes, the root declares %d", i, len(data), c.Size)
	}
	err = d.withFile(int(c.File), os.O_WRONLY, func(f *os.File) error {
		if _, err := f.WriteAt(data, c.Offset); err != nil {
			return err
		}
		if d.unsynced.Add(int64(len(data))) >= writeBehindEvery {
			d.unsynced.Store(0)
			writeBehind(f)
		}
		if d.unsaved.Add(int64(len(data))) >= d.saveAt && d.syncing.CompareAndSwap(false, true) {
			d.unsaved.Store(0)
			d.bg.Add(1)
			go d.syncBehind(int(c.File))
		}
		return nil
	})
	if err != nil {
		return false, false, fmt.Errorf("swarm: writing chunk %d: %w", i, err)
	}
	// Kept in the same critical section as the chunk is marked had: a
	// reader that sees it had finds it kept, if it is.
	d.mu.Lock()
	fresh = d.have.Set(i)
	if fresh {
		d.bytes += int64(c.Size)
		kept = own && d.handoff.keepLocked(i, data)
	}
	d.mu.Unlock()
	return fresh, kept, nil
}

// syncBehind fsyncs file fi if the download holds it open (see syncEvery).
// Its error is kept for finish to return: Linux reports a failed writeback
// to one fsync of a file, not to every later one.
func (d *download) syncBehind(fi int) {
	defer d.bg.Done()
	defer d.syncing.Store(false)
	d.io.RLock()
	defer d.io.RUnlock()
	d.mu.RLock()
	fh := d.files[fi]
	d.mu.RUnlock()
	if fh == nil {
		return
	}
	if err := fh.Sync(); err != nil {
		d.mu.Lock()
		if d.syncErr == nil {
			d.syncErr = fmt.Errorf("swarm: syncing %s: %w", fh.Name(), err)
		}
		d.mu.Unlock()
	}
}

// finish syncs every file, checks that each is the size the root declares,
// syncs every folder of the staging area, and renames it into place, then
// syncs the folder it went into. Without force, an existing destination is
// an error (ErrExists); with force, see checkReplace. An existing file is
// replaced by the rename, and an existing folder is moved aside before the
// rename and removed after it, never before.
func (d *download) finish(force bool) error {
	d.bg.Wait() // before io: a background fsync holds it shared
	d.io.Lock()
	defer d.io.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.complete {
		return nil
	}
	for fi := range d.layout.Files {
		if d.skipped(fi) {
			continue
		}
		if err := d.syncFileLocked(fi); err != nil {
			return err
		}
	}
	if d.syncErr != nil {
		// The data may not be on disk: the partial stays, and a fetch
		// started again re-verifies it.
		return d.syncErr
	}
	// Symlinks last, once every file is in place: nothing is ever
	// written after them, so nothing is written through one.
	if err := d.symlinksLocked(); err != nil {
		return err
	}
	if d.layout.Dir {
		extra, err := unlisted(d.layout, d.partial)
		if err != nil {
			return fmt.Errorf("swarm: staging %s: %w", d.partial, err)
		}
		if len(extra) > 0 {
			return fmt.Errorf("%w: %s holds %s, which the root does not list: move it out of there (a fetch never moves it into the destination), then fetch again", ErrStagingUnsafe, d.partial, listNames(extra))
		}
		// Every entry on disk before the rename: folders deepest first,
		// then the staging folder itself, which takes the mode of a
		// folder made as usual.
		for i := len(d.layout.Dirs) - 1; i >= 0; i-- {
			if err := d.syncDir(filepath.Join(d.partial, filepath.FromSlash(d.layout.Dirs[i]))); err != nil {
				return err
			}
		}
		if err := os.Chmod(d.partial, 0o755&^umask()); err != nil {
			return fmt.Errorf("swarm: staging: %w", err)
		}
		if err := d.syncDir(d.partial); err != nil {
			return err
		}
	}
	if err := d.applyMetaLocked(); err != nil {
		return err
	}
	aside, err := d.moveIntoPlaceLocked(force)
	if err != nil {
		return err
	}
	d.complete = true
	if err := d.syncDir(filepath.Dir(d.dest)); err != nil {
		return err
	}
	if aside != "" {
		// What was replaced: a folder of this root's files only.
		os.RemoveAll(aside)
	}
	return nil
}

// symlinksLocked writes the layout's symlinks into the staging area, each
// with its target as stored (an absolute target, or one that climbs out
// with "..", is written as it is: it is never followed). A symlink must
// sit in a folder of the layout and name nothing else of it (no file or
// folder at or below its path), else the fetch fails with ErrBadDAG
// before any is written; one left by an earlier try with the same target
// is kept, anything else at its path is refused. d.io and d.mu are held.
func (d *download) symlinksLocked() error {
	l := d.layout
	if len(l.Symlinks) == 0 {
		return nil
	}
	dirs := make(map[string]bool, len(l.Dirs)+1)
	dirs[""] = l.Dir
	for _, p := range l.Dirs {
		dirs[p] = true
	}
	taken := make(map[string]bool, len(l.Files)+len(l.Dirs))
	for _, f := range l.Files {
		taken[f.Path] = true
	}
	for _, p := range l.Dirs {
		taken[p] = true
	}
	for _, s := range l.Symlinks {
		parent := path.Dir(s.Path)
		if parent == "." {
			parent = ""
		}
		if s.Path == "" && !l.Dir && len(l.Files) == 0 && len(l.Symlinks) == 1 {
			continue // the root itself is a symlink
		}
		if s.Path == "" || !dirs[parent] || taken[s.Path] {
			return fmt.Errorf("%w: the symlink %q does not sit alone in a folder of the root", ErrBadDAG, s.Path)
		}
		for p := range taken {
			if strings.HasPrefix(p, s.Path+"/") {
				return fmt.Errorf("%w: %q lies below the symlink %q: a fetch never writes through a symlink", ErrBadDAG, p, s.Path)
			}
		}
	}
	for _, s := range l.Symlinks {
		p := d.partial
		if s.Path != "" {
			p = filepath.Join(d.partial, filepath.FromSlash(s.Path))
		}
		if fi, err := os.Lstat(p); err == nil {
			if t, err := os.Readlink(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 && t == s.Target {
				continue // written by an earlier try
			}
			return fmt.Errorf("%w: %s exists where the symlink %q goes: remove it, then fetch again", ErrStagingUnsafe, p, s.Path)
		}
		if err := os.Symlink(s.Target, p); err != nil {
			return fmt.Errorf("swarm: writing the symlink %s: %w", p, err)
		}
	}
	return nil
}

// applyMetaLocked gives the staged files and folders the mode and
// modification time their nodes store (see ApplyMeta), once every file is
// complete and fsynced, deepest entries first so that a folder's time is
// set after its entries are. d.io and d.mu are held.
func (d *download) applyMetaLocked() error {
	mask := umask()
	for i := len(d.layout.Meta) - 1; i >= 0; i-- {
		m := d.layout.Meta[i]
		p := d.partial
		if m.Path != "" {
			if !d.layout.Dir {
				continue
			}
			p = filepath.Join(d.partial, filepath.FromSlash(m.Path))
		}
		err := ApplyMeta(p, m.Meta, mask, false)
		if errors.Is(err, fs.ErrNotExist) && d.skip != nil {
			continue // a file not fetched
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ApplyMeta gives the file or folder at p the mode and modification time
// m stores (UnixFS 1.5), as a fetch does: permission bits only, less mask
// (the process's umask, see Umask: never setuid, setgid or sticky). It
// never follows a symbolic link: anything at p but a regular file or a
// folder is left alone, and so is a file when dirOnly. An error of Lstat
// is returned wrapped (errors.Is(err, fs.ErrNotExist) when p is gone). A
// follow applies its folders' metadata with it, a fetch its staged
// entries'. It is safe for concurrent use.
func ApplyMeta(p string, m unixfs.Meta, mask fs.FileMode, dirOnly bool) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("swarm: applying metadata: %w", err)
	}
	if !fi.IsDir() && (dirOnly || !fi.Mode().IsRegular()) {
		return nil
	}
	if m.Mode != 0 {
		if err := os.Chmod(p, m.Mode.Perm()&^mask); err != nil {
			return fmt.Errorf("swarm: applying the mode of %s: %w", p, err)
		}
	}
	if !m.Mtime.IsZero() {
		if err := os.Chtimes(p, time.Time{}, m.Mtime); err != nil {
			return fmt.Errorf("swarm: applying the time of %s: %w", p, err)
		}
	}
	return nil
}

// moveIntoPlaceLocked renames the staging area to the destination. A
// folder that was there is moved into a new folder beside it first, whose
// path it returns for the caller to remove. d.io and d.mu are held.
func (d *download) moveIntoPlaceLocked(force bool) (string, error) {
	exists, err := checkReplace(d.layout, d.dest, force, d.replaceable)
	if errors.Is(err, ErrExists) {
		return "", fmt.Errorf("%w: %s (the download is complete in %s; move it, or fetch again with force)", ErrExists, d.dest, d.partial)
	}
	if err != nil {
		return "", err
	}
	if !exists || !d.layout.Dir {
		// A file, or a symlink, is replaced by the rename itself.
		if err := os.Rename(d.partial, d.dest); err != nil {
			return "", fmt.Errorf("swarm: moving the download into place: %w", err)
		}
		return "", nil
	}
	aside, err := os.MkdirTemp(filepath.Dir(d.dest), ".peer-replaced-*")
	if err != nil {
		return "", fmt.Errorf("swarm: replacing %s: %w", d.dest, err)
	}
	if err := os.Rename(d.dest, filepath.Join(aside, filepath.Base(d.dest))); err != nil {
		os.Remove(aside)
		return "", fmt.Errorf("swarm: replacing %s: %w", d.dest, err)
	}
	if err := os.Rename(d.partial, d.dest); err != nil {
		if rerr := os.Rename(filepath.Join(aside, filepath.Base(d.dest)), d.dest); rerr != nil {
			return "", fmt.Errorf("swarm: moving the download into place: %w (the folder it replaces is in %s)", err, aside)
		}
		os.Remove(aside)
		return "", fmt.Errorf("swarm: moving the download into place: %w", err)
	}
	return aside, nil
}

// checkReplace reports whether dest exists, and refuses it when a fetch of
// l must not replace it: any existing dest without force (ErrExists); with
// force (ErrWontReplace), a folder when l is a file, anything but a folder
// when l is a folder, and a folder that holds what l does not list, so that
// force never deletes anything but an older version of the same files
// (and, when replaceable says so of a file, what an older version of the
// root listed: see FetchOptions.Replaceable).
func checkReplace(l *Layout, dest string, force bool, replaceable func(rel string) bool) (bool, error) {
	fi, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("swarm: %w", err)
	}
	if !force {
		return true, fmt.Errorf("%w: %s", ErrExists, dest)
	}
	switch {
	case !l.Dir && fi.IsDir():
		return true, fmt.Errorf("%w: %s is a folder and the root is a file; force replaces a file with a file, never a folder: move the folder away, or choose another destination", ErrWontReplace, dest)
	case l.Dir && !fi.IsDir():
		return true, fmt.Errorf("%w: %s is a file or a link and the root is a folder; force replaces a folder only with a newer version of it: move the file away, or choose another destination", ErrWontReplace, dest)
	case l.Dir:
		extra, err := unlisted(l, dest)
		if err != nil {
			return true, fmt.Errorf("swarm: %w", err)
		}
		if replaceable != nil {
			extra = slices.DeleteFunc(extra, replaceable)
		}
		if len(extra) > 0 {
			return true, fmt.Errorf("%w: %s holds %s, which the root does not list, and force never deletes that: move it away, or choose another destination", ErrWontReplace, dest, listNames(extra))
		}
	}
	return true, nil
}

func (d *download) sync(f *os.File) error {
	if d.fsync != nil {
		return d.fsync(f)
	}
	return f.Sync()
}

// syncDir fsyncs the folder at path, so that its entries survive a crash.
func (d *download) syncDir(path string) error {
	if !dirSync {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("swarm: syncing %s: %w", path, err)
	}
	defer f.Close()
	if err := d.sync(f); err != nil {
		return fmt.Errorf("swarm: syncing %s: %w", path, err)
	}
	return nil
}

// closeFiles closes the files the download holds open, once a background
// fsync has ended, and gives back the chunks it kept for a streaming
// reader (later ReadBacks read the file).
func (d *download) closeFiles() {
	d.bg.Wait() // before io: a background fsync holds it shared
	d.io.Lock()
	defer d.io.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.handoff.closeLocked()
	for fi, f := range d.files {
		f.Close()
		delete(d.files, fi)
	}
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
}

// Layout implements Source.
func (d *download) Layout() *Layout { return d.layout }

// Has implements Source.
func (d *download) Has(i int64) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.have.Has(i)
}

// Complete implements Source.
func (d *download) Complete() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.have.Full()
}

// Bits implements Source.
func (d *download) Bits() []byte {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.have.Bytes()
}

// counts returns the verified chunks and their bytes.
func (d *download) counts() (chunks, bytes int64) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.have.Count(), d.bytes
}

// ReadChunk implements Source: it reads chunk i from where the download
// wrote it and verifies it again.
func (d *download) ReadChunk(_ context.Context, i int64, buf []byte) ([]byte, error) {
	return d.readChunk(i, buf, true)
}

// ReadBack reads chunk i like ReadChunk, without hashing it a second time.
// Every chunk a download has was verified in this process before it was
// written (or by recheck, read back from disk, when the download began),
// so this is for a reader in this process of a download into a folder of
// the node's own (node.Open's streams folder), which no one else edits;
// bytes for a peer, or from a file the user can edit, go through ReadChunk.
//
// From the first call on, the download keeps its last few verified chunks
// in memory (handoffBytes in all) until they are read: a reader that reads
// a chunk soon after it was verified gets it copied from the buffer it was
// verified in, without reading the disk; any other chunk is read from the
// file. Like ReadChunk, it returns buf (grown if too small) filled, and
// keeps no reference to it. Safe for concurrent use.
func (d *download) ReadBack(_ context.Context, i int64, buf []byte) ([]byte, error) {
	d.mu.Lock()
	d.handoff.on = true
	data := d.handoff.takeLocked(i)
	d.mu.Unlock()
	if data == nil {
		return d.readChunk(i, buf, false)
	}
	// Taken out of kept under mu: no one else holds it now.
	buf = grow(buf, len(data))
	copy(buf, data)
	putBuf(data)
	return buf, nil
}

func (d *download) readChunk(i int64, buf []byte, verify bool) ([]byte, error) {
	if !d.Has(i) {
		return nil, fmt.Errorf("swarm: chunk %d not downloaded yet", i)
	}
	c := d.layout.Chunks[i]
	buf = grow(buf, int(c.Size))
	err := d.withFile(int(c.File), os.O_RDONLY, func(f *os.File) error {
		_, err := f.ReadAt(buf, c.Offset)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if verify {
		if err := integrity.Verify(c.CID, buf); err != nil {
			return nil, err
		}
	}
	return buf, nil
}
