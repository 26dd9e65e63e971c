package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/names"
	"github.com/peer-project/peer/swarm"
)

// FollowDir is the folder inside a followed DIR where the follow keeps its
// state, its journal and the version being fetched (on DIR's filesystem,
// so that a version is moved into place by renames). A version that holds
// an entry of this name at its top is refused.
const FollowDir = ".peer-follow"

// Defaults of FollowOptions.
const (
	DefaultFollowPoll  = time.Minute
	DefaultFollowRetry = 10 * time.Second
)

// Errors of Follow and SyncName.
var (
	// ErrFollowTarget: DIR is not a folder, or the name points at a single
	// file rather than a folder.
	ErrFollowTarget = errors.New("node: follow target")
	// errLocked: another process follows the folder.
	errLocked = errors.New("node: locked")
	// ErrStaleRecord: a record is not newer than the version DIR holds.
	ErrStaleRecord = errors.New("node: record not newer than the version held")
)

// FollowOptions tune Follow and SyncName.
type FollowOptions struct {
	// Peers are connected first and asked for records and chunks.
	Peers []peer.AddrInfo
	// Poll is how often the DHT is asked for a newer record (connected
	// peers push theirs at once); zero means DefaultFollowPoll.
	Poll time.Duration
	// Retry is how long after a failed version the follow tries it
	// again; zero means DefaultFollowRetry.
	Retry time.Duration
	// OnEvent, if set, hears of every version applied, every conflict,
	// every refused record and every error. It is called from Follow's
	// goroutine or a names session's; it must not block.
	OnEvent func(FollowEvent)

	fsys *followFS // nil: the OS; tests inject write errors
}

// FollowEvent is what happened to a followed folder.
type FollowEvent struct {
	Name string
	Root cid.Cid
	Seq  uint64
	// Applied: DIR now holds this version (but for Conflicts).
	Applied bool
	// Written and Removed count the files written and removed; Kept the
	// files of the version that were there already.
	Written, Removed, Kept int
	// Received and Local are the bytes of the version fetched: received
	// from peers, and copied from files this node already had.
	Received, Local int64
	// Conflicts are the files left alone because they were changed here.
	Conflicts []Conflict
	// Peer sent a record that was refused (Err says why).
	Peer peer.ID
	Err  error
}

// Conflict is a file a follow left alone.
type Conflict struct {
	Path string // slash-separated, relative to DIR
	Why  string
}

// followFS is the file system a follow writes through.
type followFS struct {
	rename    func(from, to string) error
	writeFile func(path string, b []byte) error
	open      func(path string) (*os.File, error) // to read a file's bytes; nil: os.Open
}

var osFollowFS = followFS{
	rename:    os.Rename,
	writeFile: func(p string, b []byte) error { return writeFileSync(p, b, 0o600) },
	open:      os.Open,
}

// fileState is what the follow wrote at a path.
type fileState struct {
	CID   string `json:"cid"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ino   uint64 `json:"ino,omitempty"`
	// Ctime is the change time (Linux): a write that keeps the size and
	// sets the modification time back still moves it. A state written
	// before it was kept has none: each such file is hashed once.
	Ctime int64  `json:"ctime_ns,omitempty"`
	Sum   string `json:"sha256"`
}

// stampFrom returns the state of a file whose Lstat is info, holding c,
// whose bytes hash to sum.
func stampFrom(info fs.FileInfo, c, sum string) *fileState {
	return &fileState{CID: c, Size: info.Size(), Mtime: info.ModTime().UnixNano(), Ino: inode(info), Ctime: ctime(info), Sum: sum}
}

// followState is DIR/.peer-follow/state.json: the version DIR holds
// completely and what was written for it.
type followState struct {
	Name  string                `json:"name"`
	Root  string                `json:"root,omitempty"`
	Seq   uint64                `json:"seq"`
	Files map[string]*fileState `json:"files"`
	Dirs  []string              `json:"dirs,omitempty"`
}

// journal is DIR/.peer-follow/journal.json: the renames of a version being
// applied, written before the first; undone on the next start unless the
// state names its root.
type journal struct {
	Root  string      `json:"root"`
	Moves [][2]string `json:"moves"` // from, to: relative to DIR
}

// follower keeps one folder equal to a name's latest version.
type follower struct {
	n    *Node
	name names.Name
	dir  string
	opts FollowOptions
	fs   followFS
	st   followState

	unlock func() // the lock on dir/.peer-follow/lock
}

func (f *follower) event(e FollowEvent) {
	if f.opts.OnEvent != nil {
		f.opts.OnEvent(e)
	}
}

func (f *follower) meta(elem ...string) string {
	return filepath.Join(append([]string{f.dir, FollowDir}, elem...)...)
}

// newFollower checks dir (a folder, made if missing), loads its state and
// undoes a version left half-applied by a crash.
func (n *Node) newFollower(name, dir string, opts FollowOptions) (*follower, error) {
	nm, err := names.ParseName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: follow %q: %w", ErrName, name, err)
	}
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("%w: follow into %q: the folder must be an absolute path", ErrFollowTarget, dir)
	}
	if info, err := os.Stat(dir); err == nil && !info.IsDir() {
		return nil, fmt.Errorf("%w: follow %s into %s: that is a file, not a folder; name a folder (it is made if missing)", ErrFollowTarget, nm, dir)
	}
	dir = filepath.Clean(dir)
	f := &follower{n: n, name: nm, dir: dir, opts: opts, fs: osFollowFS}
	n.namesMu.Lock()
	for g := range n.follows {
		if g.dir == dir {
			n.namesMu.Unlock()
			return nil, fmt.Errorf("%w: %s is followed already (of %s) by this node: one follow per folder", ErrFollowTarget, dir, g.name)
		}
	}
	n.follows[f] = struct{}{}
	n.namesMu.Unlock()
	ok := false
	defer func() {
		if !ok {
			f.close()
		}
	}()
	if opts.fsys != nil {
		f.fs = *opts.fsys
		if f.fs.open == nil {
			f.fs.open = os.Open
		}
	}
	// DIR as any folder (0755 less the umask); the follow's own, private.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("follow %s into %s: %w", nm, dir, err)
	}
	if err := os.Mkdir(f.meta(), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("follow %s into %s: %w", nm, dir, err)
	}
	unlock, err := lockFile(f.meta("lock"))
	if err != nil {
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w: %s is followed already by another process (%v): one follow per folder", ErrFollowTarget, dir, err)
		}
		return nil, fmt.Errorf("follow %s into %s: %w", nm, dir, err)
	}
	f.unlock = unlock
	b, err := os.ReadFile(f.meta("state.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.st = followState{Name: nm.String(), Files: map[string]*fileState{}}
	case err != nil:
		return nil, fmt.Errorf("follow %s: %w", nm, err)
	default:
		if err := json.Unmarshal(b, &f.st); err != nil {
			return nil, fmt.Errorf("follow %s: %s is corrupt (%v): move %s away to start over (files there are then taken as yours)", nm, f.meta("state.json"), err, f.meta())
		}
		if f.st.Name != nm.String() {
			return nil, fmt.Errorf("%w: %s follows %s, not %s: choose another folder", ErrFollowTarget, dir, f.st.Name, nm)
		}
		if f.st.Files == nil {
			f.st.Files = map[string]*fileState{}
		}
	}
	if err := f.recover(); err != nil {
		return nil, fmt.Errorf("follow %s: undoing a version left half-applied in %s: %w", nm, dir, err)
	}
	ok = true
	return f, nil
}

// close ends the follower: its folder may be followed again, and it hears
// of no more refused records.
func (f *follower) close() {
	if f.unlock != nil {
		f.unlock()
	}
	f.n.namesMu.Lock()
	delete(f.n.follows, f)
	f.n.namesMu.Unlock()
}

// recover undoes the renames of a journal whose version the state does not
// name (a crash while it was applied), so DIR is back at the state's
// version.
func (f *follower) recover() error {
	b, err := os.ReadFile(f.meta("journal.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%s is corrupt: %w", f.meta("journal.json"), err)
	}
	if j.Root != f.st.Root {
		if err := f.undo(j.Moves); err != nil {
			return err
		}
	}
	os.RemoveAll(f.meta("prev"))
	return os.Remove(f.meta("journal.json"))
}

// undo reverses moves, last first: each file that was moved (its source
// missing, its target present) goes back.
func (f *follower) undo(moves [][2]string) error {
	var errs []error
	for i := len(moves) - 1; i >= 0; i-- {
		from, to := f.abs(moves[i][0]), f.abs(moves[i][1])
		if info, err := os.Lstat(from); err == nil {
			// Only files move; a folder here was made for the new
			// version (a file that became a folder): gone if empty.
			if !info.IsDir() || os.Remove(from) != nil {
				if _, err := os.Lstat(to); err == nil && strings.HasPrefix(moves[i][1], FollowDir+"/prev/") {
					// The backup cannot go back: keep it (and the
					// journal) rather than lose it.
					errs = append(errs, fmt.Errorf("%s cannot go back to %s, where something else is now: move that away and follow again", to, from))
				}
				continue
			}
		}
		if _, err := os.Lstat(to); err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(from), 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Rename(to, from); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (f *follower) abs(rel string) string { return filepath.Join(f.dir, filepath.FromSlash(rel)) }

// Follow keeps dir equal to the latest version of name: receive-only, it
// fetches the files of each new version that are new or changed (a file
// dir holds as the follow wrote it, with the content the version names, is
// left where it is) into a staging area inside dir (dir/.peer-follow),
// then moves them into place file by file with renames.
// A file changed here since the follow wrote it is reported as a conflict
// and left alone; a file the new version no longer has is removed only if
// it still holds what the follow wrote.
//
// What a crash or an error leaves: each file is whole, old or new (a
// rename). The folder as a whole: dir/.peer-follow/state.json names the
// version dir holds completely, and changes only once every file of a new
// version is in place. A version that fails to apply (a full disk, say) is
// rolled back before Follow goes on, so dir is at the earlier version, plus
// the files of the user; a crash while one is applied leaves a journal, and
// the next Follow or SyncName on dir rolls it back before anything else.
//
// New versions come from connected peers at once (names), and from the
// DHT every Poll. Follow blocks until ctx is done (it returns nil then) or
// the node closes; it returns an error only if it cannot start (dir is a
// file, name is not a name). Errors of a version are reported through
// OnEvent, and the version is tried again after Retry.
func (n *Node) Follow(ctx context.Context, name, dir string, opts FollowOptions) error {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	f, err := n.newFollower(name, dir, opts)
	if err != nil {
		return err
	}
	defer f.close()
	sub, err := n.names.Follow(f.name)
	if err != nil {
		return err
	}
	defer sub.Cancel()
	f.connect(ctx)

	poll, retry := opts.Poll, opts.Retry
	if poll <= 0 {
		poll = DefaultFollowPoll
	}
	if retry <= 0 {
		retry = DefaultFollowRetry
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var (
		want  *names.Record
		again <-chan time.Time
	)
	offer := func(rec *names.Record) {
		if rec != nil && (want == nil || rec.Seq > want.Seq) {
			want = rec
		}
	}
	offer(f.lookup(ctx))
	for {
		if want != nil && again == nil {
			if want.Seq <= f.st.Seq && f.st.Root != "" {
				want = nil
			} else if _, err := f.sync(ctx, want); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				again = time.After(retry)
			} else {
				want = nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case rec, ok := <-sub.C:
			if !ok {
				return ErrClosed
			}
			offer(rec)
		case <-tick.C:
			offer(f.lookup(ctx))
		case <-again:
			again = nil
		}
	}
}

// SyncName brings dir to the version name points at now (see Follow), once.
// It returns the event of that version; an error leaves dir at the version
// it held before.
func (n *Node) SyncName(ctx context.Context, name, dir string, opts FollowOptions) (*FollowEvent, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := n.newFollower(name, dir, opts)
	if err != nil {
		return nil, err
	}
	defer f.close()
	f.connect(ctx)
	rec, err := n.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	return f.sync(ctx, &names.Record{Name: f.name, Root: rec.Root, Seq: rec.Seq})
}

func (f *follower) connect(ctx context.Context) {
	for _, ai := range f.opts.Peers {
		if err := f.n.host.Connect(ctx, ai); err != nil {
			f.n.log.Debug("follow: connect", "peer", ai.ID.String(), "err", err)
		}
	}
}

// lookup asks connected peers, then the DHT, for the name's record; it
// reports a failure and returns nil.
func (f *follower) lookup(ctx context.Context) *names.Record {
	rec, err := f.n.Resolve(ctx, f.name.String())
	if err != nil {
		if ctx.Err() == nil {
			f.n.log.Debug("follow: lookup", "name", f.name.String(), "err", err)
		}
		return nil
	}
	return &names.Record{Name: f.name, Root: rec.Root, Seq: rec.Seq}
}

// held describes the version dir holds, for errors.
func (f *follower) held() string {
	if f.st.Root == "" {
		return "no version yet"
	}
	return fmt.Sprintf("version %d (%s)", f.st.Seq, f.st.Root)
}

// sync fetches the files of rec's version that dir lacks into the staging
// area and applies the version.
func (f *follower) sync(ctx context.Context, rec *names.Record) (*FollowEvent, error) {
	e := FollowEvent{Name: f.name.String(), Root: rec.Root, Seq: rec.Seq}
	fail := func(err error) (*FollowEvent, error) {
		e.Err = err
		f.event(e)
		return &e, err
	}
	// A roll-back that failed left its journal: finish it first.
	if err := f.recover(); err != nil {
		return fail(fmt.Errorf("follow %s: undoing a version left half-applied in %s: %w", f.name, f.dir, err))
	}
	if f.st.Root != "" && rec.Seq <= f.st.Seq {
		return fail(fmt.Errorf("%w: follow %s: record %d is not newer than %s in %s; it is ignored", ErrStaleRecord, f.name, rec.Seq, f.held(), f.dir))
	}
	if rec.Root.String() == f.st.Root {
		// Signed again, same root: nothing to write.
		f.st.Seq = rec.Seq
		if err := f.saveState(); err != nil {
			return fail(fmt.Errorf("follow %s: %w", f.name, err))
		}
		e.Applied, e.Kept = true, len(f.st.Files)
		f.event(e)
		return &e, nil
	}
	stage := f.meta("stage", "v")
	if err := f.clearStage(stage, rec.Root); err != nil {
		return fail(fmt.Errorf("follow %s: %w", f.name, err))
	}
	src := f.n.sourcesOf(Target{Root: rec.Root}, f.opts.Peers)
	accept := func(l *swarm.Layout) error {
		if !l.Dir {
			return fmt.Errorf("%w: %s points at a single file (%s), not a folder: fetch it with `peer get %s -o FILE`", ErrFollowTarget, f.name, rec.Root, f.name)
		}
		return nil
	}
	// Only the files that are new or changed: one fetch of the root (one
	// session per peer, trading with the other followers by the root's
	// chunks) with a filter, not one fetch per file, each of which would
	// cost a session per peer and, at a publisher, a lookup of a root it
	// does not serve as such (a few a minute per peer).
	want := func(sp swarm.FileSpan) bool {
		top, _, _ := strings.Cut(sp.Path, "/")
		return top != FollowDir && !f.keeps(sp) // under FollowDir: left out (apply)
	}
	res, err := f.n.fetch(ctx, rec.Root, stage, FetchOptions{}, src, fetchHooks{accept: accept, want: want, staged: true})
	if err != nil {
		return fail(fmt.Errorf("follow %s: fetching version %d (%s) into %s: %w; %s is left at %s", f.name, rec.Seq, rec.Root, stage, translate(err), f.dir, f.held()))
	}
	e.Received, e.Local = res.Progress.Received, res.Progress.Local
	if err := f.apply(ctx, &e, res.Layout, stage); err != nil {
		f.n.unserveStaged(res)
		return fail(fmt.Errorf("follow %s: applying version %d (%s): %w; %s is left at %s", f.name, rec.Seq, rec.Root, err, f.dir, f.held()))
	}
	// Indexed once, where it now is: served from dir, and the version
	// before (indexed at dir too) is forgotten. Only the files apply
	// placed or kept: one a conflict left alone holds the user's bytes (or
	// is missing), and indexed as the version's it would be stamped with
	// them, so that a later share of dir would reuse the version's chunks
	// for it.
	if err := f.n.adopt(ctx, &swarm.Result{Root: res.Root, Dest: f.dir, Layout: f.placed(res.Layout)}); err != nil {
		f.n.log.Warn("follow: serving the version from its folder", "dir", f.dir, "err", err)
		f.n.unserveStaged(res)
		f.n.unshareReplaced(f.dir, res.Root)
	}
	e.Applied = true
	f.event(e)
	return &e, nil
}

// placed returns l with only the files that dir holds for it (f.st.Files
// after apply: written or kept), to be indexed at dir, and their bytes as
// its Size: the share's Files and Size both count what it indexes (a
// conflict's file is the user's, not the version's). Counts short of the
// version's tell serve that the share holds only part of it, which it
// then announces chunk by chunk (shareHolds, newShareSource).
func (f *follower) placed(l *swarm.Layout) *swarm.Layout {
	files := make([]swarm.FileSpan, 0, len(l.Files))
	var size int64
	for _, sp := range l.Files {
		if f.st.Files[sp.Path] != nil {
			files = append(files, sp)
			size += sp.Size
		}
	}
	return &swarm.Layout{
		Root: l.Root, Name: l.Name, Dir: l.Dir, Size: size, Files: files, Dirs: l.Dirs,
		Chunks: l.Chunks, Symlinks: l.Symlinks, Meta: l.Meta, Blocks: l.Blocks,
	}
}

// keeps says whether file sp of a version is in dir already: written by
// the follow with the same content, and unchanged since. It is not
// fetched.
func (f *follower) keeps(sp swarm.FileSpan) bool {
	old := f.st.Files[sp.Path]
	if old == nil || old.CID != sp.CID.String() {
		return false
	}
	dst := f.abs(sp.Path)
	info, err := os.Lstat(dst)
	return err == nil && info.Mode().IsRegular() && f.unchanged(dst, info, old)
}

// clearStage removes what the staging area holds but the partial download
// of root (kept, to resume).
func (f *follower) clearStage(stage string, root cid.Cid) error {
	dir := filepath.Dir(stage)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keep := filepath.Base(swarm.PartialPath(stage, root))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() != keep {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply moves the fetched version from stage into dir (see Follow). On
// success f.st.Files lists what dir holds of the version, each file it
// wrote or kept, and nothing a conflict left alone (placed).
func (f *follower) apply(ctx context.Context, e *FollowEvent, l *swarm.Layout, stage string) error {
	next := followState{Name: f.name.String(), Root: l.Root.String(), Seq: e.Seq, Files: map[string]*fileState{}, Dirs: slices.Clone(l.Dirs)}
	stageRel, err := filepath.Rel(f.dir, stage)
	if err != nil {
		return err
	}
	stageRel = filepath.ToSlash(stageRel)
	var moves [][2]string
	var written []string
	inVersion := map[string]bool{}
	for _, sp := range l.Files {
		inVersion[sp.Path] = true
	}
	// Files that go first: one of them may stand where the new version
	// has a folder.
	leaving := map[string]bool{}
	var removed []string
	for _, p := range sortedKeys(f.st.Files) {
		if inVersion[p] {
			continue
		}
		dst := f.abs(p)
		info, err := os.Lstat(dst)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() && f.unchanged(dst, info, f.st.Files[p]) {
			moves = append(moves, [2]string{p, "prev/" + p})
			removed = append(removed, p)
			leaving[p] = true
		} else {
			e.Conflicts = append(e.Conflicts, Conflict{p, "gone from the new version but changed here: not removed"})
		}
	}
	for _, sp := range l.Files {
		p := sp.Path
		if top, _, _ := strings.Cut(p, "/"); top == FollowDir {
			e.Conflicts = append(e.Conflicts, Conflict{p, "the version has a file under " + FollowDir + ", where the follow keeps its state: left out"})
			continue
		}
		if why := f.blockedParent(p, leaving); why != "" {
			e.Conflicts = append(e.Conflicts, Conflict{p, why})
			continue
		}
		dst, src := f.abs(p), filepath.Join(stage, filepath.FromSlash(p))
		// Only the files the fetch wanted are staged (see keeps).
		_, serr := os.Lstat(src)
		staged := serr == nil
		old := f.st.Files[p]
		info, err := os.Lstat(dst)
		switch {
		case (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) && !staged:
			e.Conflicts = append(e.Conflicts, Conflict{p, "removed here while the version was fetched: left out (the next version writes it)"})
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR): // ENOTDIR: a parent is a file that goes first
			moves = append(moves, [2]string{stageRel + "/" + p, p})
			written = append(written, p)
		case err != nil:
			return err
		case !info.Mode().IsRegular():
			e.Conflicts = append(e.Conflicts, Conflict{p, "something other than a file is there: left alone"})
		case old != nil && f.unchanged(dst, info, old):
			if old.CID == sp.CID.String() {
				next.Files[p] = old
				e.Kept++
				continue
			}
			if !staged { // cannot be: a changed CID is always fetched
				return fmt.Errorf("%s was not fetched", p)
			}
			moves = append(moves, [2]string{p, "prev/" + p}, [2]string{stageRel + "/" + p, p})
			written = append(written, p)
		case staged && f.sameContent(p, dst, src, info, sp.CID.String(), &next):
			// Already what the version holds (written by hand, or by a
			// version whose state was lost): taken as ours.
			e.Kept++
		case old != nil:
			e.Conflicts = append(e.Conflicts, Conflict{p, "changed here since it was written: left alone (move it away: the next version writes it)"})
		default:
			e.Conflicts = append(e.Conflicts, Conflict{p, "a file of yours is in the way: left alone (move it away: the next version writes it)"})
		}
	}
	for _, sl := range l.Symlinks {
		e.Conflicts = append(e.Conflicts, Conflict{sl.Path, "a symbolic link (to " + sl.Target + "): a follow writes files and folders only, so it is left out"})
	}
	// The backups live in .peer-follow/prev.
	for i := range moves {
		if strings.HasPrefix(moves[i][1], "prev/") {
			moves[i][1] = FollowDir + "/" + moves[i][1]
		}
	}

	// The journal first: a crash from here on is undone at the next start.
	j, _ := json.Marshal(journal{Root: next.Root, Moves: moves})
	if err := f.fs.writeFile(f.meta("journal.json"), j); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	rollback := func(cause error) error {
		if err := f.undo(moves); err != nil {
			return fmt.Errorf("%w (and rolling back: %v)", cause, err)
		}
		os.Remove(f.meta("journal.json"))
		os.RemoveAll(f.meta("prev"))
		return cause
	}
	for _, m := range moves {
		if err := ctx.Err(); err != nil {
			return rollback(err)
		}
		to := f.abs(m[1])
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return rollback(err)
		}
		if err := f.fs.rename(f.abs(m[0]), to); err != nil {
			return rollback(err)
		}
	}
	bySpan := map[string]string{}
	for _, sp := range l.Files {
		bySpan[sp.Path] = sp.CID.String()
	}
	for _, p := range written {
		st, err := f.stampOf(f.abs(p), bySpan[p])
		if err != nil {
			return rollback(err)
		}
		next.Files[p] = st
	}
	// The commit point: the state names the new version.
	if err := f.writeState(next); err != nil {
		return rollback(fmt.Errorf("writing the state: %w", err))
	}
	prevDirs := f.st.Dirs
	f.st = next
	os.Remove(f.meta("journal.json"))
	os.RemoveAll(f.meta("prev"))
	os.RemoveAll(filepath.Dir(stage))
	e.Written, e.Removed = len(written), len(removed)
	// Folders of the version that hold no file (all that hold one are
	// made by now).
	for _, d := range next.Dirs {
		if why := f.blockedParent(d+"/x", nil); why == "" {
			if err := os.MkdirAll(f.abs(d), 0o755); err != nil {
				f.n.log.Debug("follow: an empty folder", "dir", d, "err", err)
			}
		}
	}
	// Folders of the old version that the new one lacks go if empty.
	for i := len(prevDirs) - 1; i >= 0; i-- {
		if !slices.Contains(next.Dirs, prevDirs[i]) {
			os.Remove(f.abs(prevDirs[i]))
		}
	}
	f.applyDirMeta(l)
	return nil
}

// applyDirMeta gives the version's folders the mode and modification time
// their nodes store (UnixFS 1.5, a share with --preserve-mode or
// --preserve-mtime), as a fetch does: permission bits only, less the
// umask, deepest folders first, never through a symbolic link. The
// files have theirs already: the fetch applied them in the staging area
// and the renames keep them, and a file whose metadata changed has
// another CID, so it is written again. DIR itself is left as the user
// made it.
func (f *follower) applyDirMeta(l *swarm.Layout) {
	dirs := make(map[string]bool, len(l.Dirs))
	for _, d := range l.Dirs {
		dirs[d] = true
	}
	mask := swarm.Umask()
	for i := len(l.Meta) - 1; i >= 0; i-- {
		m := l.Meta[i]
		if !dirs[m.Path] || f.blockedParent(m.Path, nil) != "" {
			continue
		}
		if err := swarm.ApplyMeta(f.abs(m.Path), m.Meta, mask, true); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.n.log.Debug("follow: a folder's metadata", "dir", m.Path, "err", err)
		}
	}
}

// blockedParent says why a folder on the way to p cannot be made, or "".
// A file of leaving is moved away first, so it does not block.
func (f *follower) blockedParent(p string, leaving map[string]bool) string {
	dir := path.Dir(p)
	for dir != "." {
		if info, err := os.Lstat(f.abs(dir)); err == nil && !info.IsDir() && !leaving[dir] {
			return fmt.Sprintf("%s is not a folder here: left alone", dir)
		}
		dir = path.Dir(dir)
	}
	return ""
}

func (f *follower) saveState() error { return f.writeState(f.st) }

func (f *follower) writeState(st followState) error {
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	return f.fs.writeFile(f.meta("state.json"), b)
}

// unchanged says whether the file at p, whose Lstat is info, still holds
// what st says was written: the same stamp (size, modification time,
// inode and, on Linux, change time), or else the same bytes. A file found
// the same by its bytes gets its stamp taken again (from info, read before
// the bytes were), so that the next look is cheap.
func (f *follower) unchanged(p string, info fs.FileInfo, st *fileState) bool {
	if info.Size() != st.Size {
		return false
	}
	if info.ModTime().UnixNano() == st.Mtime && inode(info) == st.Ino && ctime(info) == st.Ctime {
		return true
	}
	sum, err := f.fileSHA256(p)
	if err != nil || sum != st.Sum {
		return false
	}
	*st = *stampFrom(info, st.CID, sum)
	return true
}

// sameContent says whether the file at dst, whose Lstat is info, holds the
// same bytes as the staged file src, in one pass over each that also
// hashes dst; if so it records in next that p (dst) holds c.
func (f *follower) sameContent(p, dst, src string, info fs.FileInfo, c string, next *followState) bool {
	size := info.Size()
	if si, err := os.Stat(src); err != nil || si.Size() != size {
		return false
	}
	a, err := f.fs.open(dst)
	if err != nil {
		return false
	}
	defer a.Close()
	b, err := f.fs.open(src)
	if err != nil {
		return false
	}
	defer b.Close()
	h := sha256.New()
	bufA, bufB := make([]byte, 256<<10), make([]byte, 256<<10)
	for n := int64(0); n < size; {
		k := min(int64(len(bufA)), size-n)
		if _, err := io.ReadFull(a, bufA[:k]); err != nil {
			return false
		}
		if _, err := io.ReadFull(b, bufB[:k]); err != nil {
			return false
		}
		if !bytes.Equal(bufA[:k], bufB[:k]) {
			return false
		}
		h.Write(bufA[:k])
		n += k
	}
	next.Files[p] = stampFrom(info, c, hex.EncodeToString(h.Sum(nil)))
	return true
}

// stampOf returns the state of the file at p, which holds c: its stamp and
// the SHA-256 of its bytes (the stamp taken before they are read).
func (f *follower) stampOf(p, c string) (*fileState, error) {
	info, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	sum, err := f.fileSHA256(p)
	if err != nil {
		return nil, err
	}
	return stampFrom(info, c, sum), nil
}

func (f *follower) fileSHA256(p string) (string, error) {
	fh, err := f.fs.open(p)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
