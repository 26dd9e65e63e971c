package unixfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
)

// Meta is the UnixFS 1.5 metadata of a file, folder or symlink, stored
// only when asked for (Kubo's --preserve-mode and --preserve-mtime).
type Meta struct {
	// Mode holds the permission bits (os.ModePerm, and setuid, setgid and
	// sticky when stored); 0 means none is stored.
	Mode os.FileMode
	// Mtime is the modification time, to the nanosecond; the zero Time
	// means none is stored.
	Mtime time.Time
}

// IsZero reports whether m stores nothing.
func (m Meta) IsZero() bool { return m.Mode == 0 && m.Mtime.IsZero() }

// set stores m in fsn.
func (m Meta) set(fsn *ft.FSNode) {
	if m.Mode != 0 {
		fsn.SetMode(m.Mode)
	}
	if !m.Mtime.IsZero() {
		fsn.SetModTime(m.Mtime)
	}
}

// Option sets how a builder makes its nodes.
type Option func(*options)

type options struct {
	meta   Meta
	prefix cid.Builder
}

func applyOptions(opts []Option) options {
	o := options{prefix: cidBuilder}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithMeta stores m in the root node that a builder makes: a file's root
// (a file that would be a single raw leaf, or none, then gets a dag-pb
// root of its own, since a raw block holds no metadata), a folder's node
// (a sharded folder's root shard), a symlink (its Mtime only: as Kubo, a
// symlink keeps no mode).
//
// The roots match Kubo's `ipfs add --preserve-mode --preserve-mtime` for
// empty files, folders and symlinks. For a file with content they are
// boxo's encoding with raw leaves (its balanced importer with FileMode and
// FileModTime), not Kubo's: Kubo turns raw leaves off when it stores
// metadata, so that every leaf becomes a dag-pb node, while peer keeps the
// raw leaves that it shares in place.
func WithMeta(m Meta) Option { return func(o *options) { o.meta = m } }

// withPrefix makes the builder's dag-pb nodes with another CID builder
// (tests check against Kubo vectors made with CIDv0).
func withPrefix(b cid.Builder) Option { return func(o *options) { o.prefix = b } }

// MaxSymlinkTarget is the longest symlink target this package makes or
// reads: Linux's PATH_MAX.
const MaxSymlinkTarget = 4096

// ErrSymlink is returned for a symlink target that no file system can
// hold.
var ErrSymlink = errors.New("unixfs: bad symlink target")

// CheckSymlinkTarget reports whether target can be a symlink's: 1 to
// MaxSymlinkTarget bytes, no NUL. The target is bytes, never read as a
// path here: whoever makes the link on disk decides where it may point.
func CheckSymlinkTarget(target string) error {
	switch {
	case target == "":
		return fmt.Errorf("%w: empty", ErrSymlink)
	case len(target) > MaxSymlinkTarget:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrSymlink, len(target), MaxSymlinkTarget)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("%w: %q holds a NUL", ErrSymlink, target)
	}
	return nil
}

// Symlink makes the UnixFS symlink node of target, with opts' metadata
// (its Mtime; a Mode is not stored, as by Kubo), hands it to put and
// returns its Link, to be added to a folder.
func Symlink(target string, put func(Block) error, opts ...Option) (Link, error) {
	if err := CheckSymlinkTarget(target); err != nil {
		return Link{}, err
	}
	o := applyOptions(opts)
	// As Kubo's adder makes it: SymlinkData, then the mtime.
	data, err := ft.SymlinkData(target)
	if err != nil {
		return Link{}, err
	}
	if !o.meta.Mtime.IsZero() {
		fsn, err := ft.FSNodeFromBytes(data)
		if err != nil {
			return Link{}, err
		}
		fsn.SetModTime(o.meta.Mtime)
		if data, err = fsn.GetBytes(); err != nil {
			return Link{}, err
		}
	}
	pn := dag.NodeWithData(data)
	if err := pn.SetCidBuilder(o.prefix); err != nil {
		return Link{}, err
	}
	raw, err := pn.EncodeProtobuf(false)
	if err != nil {
		return Link{}, err
	}
	l := Link{CID: pn.Cid(), Size: uint64(len(raw))}
	if err := put(Block{CID: l.CID, Data: raw}); err != nil {
		return Link{}, err
	}
	return l, nil
}

// Meta returns the metadata n stores (its Mode holds the permission bits
// only: setuid, setgid and sticky that came from elsewhere are not handed
// on).
func (n *Node) Meta() Meta {
	m := Meta{Mode: os.FileMode(n.Mode)}
	if n.MtimeSet {
		m.Mtime = time.Unix(n.Mtime, int64(n.MtimeNs))
	}
	return m
}
