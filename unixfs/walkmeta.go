package unixfs

import (
	"context"

	"github.com/ipfs/go-cid"
)

// Entry is a folder entry as its own node describes it: what List hands
// over (a name and a Link) and what only the entry's node holds.
type Entry struct {
	Name string
	Link
	// Kind is the entry's node's: KindRaw (a file of one raw leaf),
	// KindFile, KindDir, KindHAMT or KindSymlink.
	Kind Kind
	// Meta is the UnixFS 1.5 metadata the node stores (none for a raw
	// leaf).
	Meta Meta
	// Target is a symlink's target, as stored: bytes, not a path to
	// follow (CheckSymlinkTarget has checked it).
	Target []byte
}

// Stat describes the folder entry l named name. A raw leaf is known by
// its CID (a file with no metadata) and is not read; any other node is
// read through the walk, within its limits.
func (w *Walker) Stat(ctx context.Context, name string, l Link) (Entry, error) {
	e := Entry{Name: name, Link: l}
	if err := CheckCID(l.CID); err != nil {
		return e, err
	}
	if l.CID.Prefix().Codec == cid.Raw {
		e.Kind = KindRaw
		return e, nil
	}
	n, err := w.Node(ctx, l.CID)
	if err != nil {
		return e, err
	}
	e.Kind, e.Meta = n.Kind, n.Meta()
	if n.Kind == KindSymlink {
		e.Target = n.Data
	}
	return e, nil
}
