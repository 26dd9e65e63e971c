package unixfs

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"
)

// MaxNodeSize is the largest block Decode reads: bitswap's limit, far
// above what the profile makes (a file node of 1024 links is about 46 KB,
// a plain folder at most 256 KiB).
const MaxNodeSize = 2 << 20

// hamtMurmur3 is the multicodec of the only HAMT hash function UnixFS
// uses, murmur3-x64-64.
const hamtMurmur3 = 0x22

// Decoding errors. Every error Decode returns wraps ErrBadNode, and one of
// the others where it applies.
var (
	ErrBadNode     = errors.New("unixfs: bad node")
	ErrTooLarge    = errors.New("unixfs: block too large")
	ErrUnsupported = errors.New("unixfs: unsupported CID")
	ErrMismatch    = errors.New("unixfs: block does not match its CID")
)

// Kind is what a node is.
type Kind int

// The kinds of node.
const (
	// KindRaw is a raw leaf: its bytes are file content.
	KindRaw Kind = iota
	// KindFile is a file node (dag-pb): content in Data and under Links.
	KindFile
	// KindDir is a plain folder.
	KindDir
	// KindHAMT is a shard of a sharded folder.
	KindHAMT
	// KindSymlink is a symbolic link; Data is its target.
	KindSymlink
)

var kindNames = [...]string{"raw leaf", "file", "folder", "HAMT shard", "symlink"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind " + strconv.Itoa(int(k))
}

// Node is a decoded, checked UnixFS node.
type Node struct {
	CID  cid.Cid
	Kind Kind
	// Links are the children in order. For a file node each has its
	// FileSize (from blocksizes) and an empty Name; for a folder, its Name;
	// for a HAMT shard, the link's name as stored (a hex prefix, followed
	// by the entry's name for an entry).
	Links []NamedLink
	// Data is a file node's inline content (older profiles keep a leaf's
	// bytes in a dag-pb node), a raw leaf's bytes, or a symlink's target.
	Data []byte
	// FileSize is the bytes of content under a file node or raw leaf.
	FileSize uint64
	// Fanout is a HAMT shard's width, Bitfield its occupied slots
	// (big-endian, as UnixFS stores them).
	Fanout   uint64
	Bitfield []byte
	// Mode holds the UnixFS 1.5 permission bits (0 when not stored); Mtime
	// the modification time as seconds and nanoseconds (MtimeSet says
	// whether one is stored).
	Mode     uint32
	Mtime    int64
	MtimeNs  uint32
	MtimeSet bool

	pn *dag.ProtoNode // the decoded dag-pb node, named by CID (nil for a raw leaf)
}

// NamedLink is a link of a decoded node.
type NamedLink struct {
	Name string
	Link
}

// CheckCID reports whether c names a block this package reads: CIDv0 or
// CIDv1, sha2-256 with a full digest, codec raw or dag-pb.
func CheckCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: %w: undefined CID", ErrBadNode, ErrUnsupported)
	}
	p := c.Prefix()
	if p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("%w: %w: %s is not sha2-256", ErrBadNode, ErrUnsupported, c)
	}
	if p.Codec != cid.Raw && p.Codec != cid.DagProtobuf {
		return fmt.Errorf("%w: %w: %s has codec %#x, want raw or dag-pb", ErrBadNode, ErrUnsupported, c, p.Codec)
	}
	return nil
}

// Decode checks that data is the block c names and decodes it, hostile by
// default: the size is checked before anything is decoded, every link
// must name a block this package reads, and the UnixFS fields must agree
// with the links (blocksizes, file size, a HAMT's bitfield and names).
// Memory allocated is in proportion to len(data), never to a size that
// data claims.
func Decode(c cid.Cid, data []byte) (*Node, error) {
	if err := CheckCID(c); err != nil {
		return nil, err
	}
	if len(data) > MaxNodeSize {
		return nil, fmt.Errorf("%w: %w: %s has %d bytes, the limit is %d", ErrBadNode, ErrTooLarge, c, len(data), MaxNodeSize)
	}
	if sum, err := c.Prefix().Sum(data); err != nil || sum != c {
		return nil, fmt.Errorf("%w: %w: %s", ErrBadNode, ErrMismatch, c)
	}
	if c.Prefix().Codec == cid.Raw {
		return &Node{CID: c, Kind: KindRaw, Data: data, FileSize: uint64(len(data))}, nil
	}
	pn, err := dag.DecodeProtobuf(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadNode, c, err)
	}
	if len(pn.Data()) == 0 {
		return nil, fmt.Errorf("%w: %s is dag-pb with no UnixFS data", ErrBadNode, c)
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: UnixFS data: %v", ErrBadNode, c, err)
	}
	if err := checkMtime(pn.Data()); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadNode, c, err)
	}
	if err := pn.SetCidBuilder(c.Prefix()); err != nil { // a decoded node defaults to CIDv0
		return nil, fmt.Errorf("%w: %s: %v", ErrBadNode, c, err)
	}
	n := &Node{CID: c, Data: fsn.Data(), pn: pn}
	if m := fsn.Mode(); m != 0 {
		n.Mode = uint32(m.Perm())
	}
	if mt := fsn.ModTime(); !mt.IsZero() {
		n.Mtime, n.MtimeNs, n.MtimeSet = mt.Unix(), uint32(mt.Nanosecond()), true
	}
	links := pn.Links()
	n.Links = make([]NamedLink, len(links))
	for i, l := range links {
		if err := CheckCID(l.Cid); err != nil {
			return nil, fmt.Errorf("%w: %s links to an unreadable block: %w", ErrBadNode, c, err)
		}
		n.Links[i] = NamedLink{Name: l.Name, Link: Link{CID: l.Cid, Size: l.Size}}
	}
	switch fsn.Type() {
	case pb.Data_File, pb.Data_Raw:
		n.Kind = KindFile
		err = n.checkFile(fsn)
	case pb.Data_Directory:
		n.Kind = KindDir
		err = n.checkDir()
	case pb.Data_HAMTShard:
		n.Kind = KindHAMT
		err = n.checkHAMT(fsn)
	case pb.Data_Symlink:
		n.Kind = KindSymlink
		if len(n.Links) > 0 {
			err = errors.New("a symlink with links")
		} else {
			err = CheckSymlinkTarget(string(n.Data))
		}
	default:
		err = fmt.Errorf("UnixFS type %v is not supported", fsn.Type())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s (%s): %v", ErrBadNode, c, n.Kind, err)
	}
	return n, nil
}

// checkFile checks a file node: one blocksize per link, no names, and a
// file size that is the inline data plus the blocksizes (without
// overflow).
func (n *Node) checkFile(fsn *ft.FSNode) error {
	sizes := fsn.BlockSizes()
	if len(sizes) != len(n.Links) {
		return fmt.Errorf("%d links but %d blocksizes", len(n.Links), len(sizes))
	}
	total := uint64(len(n.Data))
	for i, s := range sizes {
		if n.Links[i].Name != "" {
			return fmt.Errorf("link %d of a file is named %q", i, n.Links[i].Name)
		}
		var carry uint64
		if total, carry = bits.Add64(total, s, 0); carry != 0 || total > math.MaxInt64 {
			return errors.New("blocksizes overflow")
		}
		n.Links[i].FileSize = s
	}
	if fs := fsn.FileSize(); fs != total {
		return fmt.Errorf("filesize %d, but data and blocksizes add up to %d", fs, total)
	}
	n.FileSize = total
	return nil
}

// checkDir checks a plain folder: valid, distinct names and no content.
func (n *Node) checkDir() error {
	if len(n.Data) > 0 {
		return errors.New("a folder with data")
	}
	seen := make(map[string]bool, len(n.Links))
	for _, l := range n.Links {
		if err := CheckName(l.Name); err != nil {
			return err
		}
		if seen[l.Name] {
			return fmt.Errorf("%w: %q", ErrDuplicate, l.Name)
		}
		seen[l.Name] = true
	}
	return nil
}

// checkHAMT checks a HAMT shard: murmur3, a power-of-two fanout from 8 to
// 1024, a bitfield of fanout bits with one bit set per link, and link
// names that start with a hex slot prefix of the right width, followed by
// a valid entry name or by nothing (a child shard).
func (n *Node) checkHAMT(fsn *ft.FSNode) error {
	if h := fsn.HashType(); h != hamtMurmur3 {
		return fmt.Errorf("hash function %#x, want murmur3-x64-64 (0x22)", h)
	}
	fanout := fsn.Fanout()
	if fanout < 8 || fanout > 1024 || fanout&(fanout-1) != 0 {
		return fmt.Errorf("fanout %d, want a power of two from 8 to 1024", fanout)
	}
	if len(n.Data) > int(fanout/8) {
		return fmt.Errorf("bitfield of %d bytes for fanout %d", len(n.Data), fanout)
	}
	set := 0
	for _, b := range n.Data {
		set += bits.OnesCount8(b)
	}
	if set != len(n.Links) {
		return fmt.Errorf("bitfield has %d slots set but there are %d links", set, len(n.Links))
	}
	width := len(strconv.FormatUint(fanout-1, 16))
	last := -1
	for _, l := range n.Links {
		if len(l.Name) < width {
			return fmt.Errorf("link name %q has no slot prefix", l.Name)
		}
		slot, err := strconv.ParseUint(l.Name[:width], 16, 64)
		if err != nil || slot >= fanout {
			return fmt.Errorf("link name %q: bad slot prefix", l.Name)
		}
		// The bitfield is a big-endian number: slot i is bit i%8 of the
		// i/8-th byte from the end. Links come in slot order, one a slot.
		if byteAt := len(n.Data) - 1 - int(slot/8); byteAt < 0 || n.Data[byteAt]&(1<<(slot%8)) == 0 {
			return fmt.Errorf("link %q is in slot %d, which the bitfield leaves empty", l.Name, slot)
		}
		if int(slot) <= last {
			return fmt.Errorf("link %q: slots out of order", l.Name)
		}
		last = int(slot)
		if rest := l.Name[width:]; rest != "" {
			if err := CheckName(rest); err != nil {
				return err
			}
		}
	}
	n.Fanout, n.Bitfield, n.Data = fanout, n.Data, nil
	return nil
}

// checkMtime checks a UnixFS 1.5 mtime: its fraction of a second, when
// stored, is 1 to 999,999,999 nanoseconds (the spec has a node with
// another value refused; boxo's FSNode would drop the mtime silently).
func checkMtime(data []byte) error {
	var d pb.Data
	if err := proto.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("UnixFS data: %v", err)
	}
	mt := d.GetMtime()
	if mt == nil {
		return nil
	}
	if mt.Seconds == nil {
		return errors.New("an mtime without seconds")
	}
	if mt.Nanos != nil && (*mt.Nanos < 1 || *mt.Nanos > 999_999_999) {
		return fmt.Errorf("mtime nanoseconds %d, want 1 to 999999999", *mt.Nanos)
	}
	return nil
}
