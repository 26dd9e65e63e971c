package node

// Issue 17's bad input: DAGs that lie, served by a peer that speaks the
// wire protocol by hand. Each must end in a clear error and a ban of the
// sender on every read path (get, ROOT/path, inspect, Open), with nothing
// allocated in proportion to what the DAG claims and nothing written.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm/wire"
	"github.com/peer-project/peer/unixfs"
)

// hostileDAG is a DAG in memory that a hand-written peer serves.
type hostileDAG map[cid.Cid][]byte

// node encodes a dag-pb node of UnixFS data d and links, keeps it and
// returns its CID.
func (h hostileDAG) node(t *testing.T, d *pb.Data, links ...*ipld.Link) cid.Cid {
	t.Helper()
	data, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	pn := dag.NodeWithData(data)
	if err := pn.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if err := pn.AddRawLink(l.Name, l); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := pn.EncodeProtobuf(false)
	if err != nil {
		t.Fatal(err)
	}
	h[pn.Cid()] = raw
	return pn.Cid()
}

// serveHostile makes a peer that answers every session with HAVE_ALL and
// every WANT_NODE with the block of blocks (NODE_MISSING if none). It
// returns its address.
func serveHostile(t *testing.T, blocks hostileDAG) peer.AddrInfo {
	h := probe(t)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	h.SetStreamHandler(wire.ProtocolID, func(st network.Stream) {
		wg.Add(1)
		defer wg.Done()
		defer st.Reset()
		r, w := wire.NewReader(st, 0), wire.NewWriter(st)
		if m, err := r.Read(); err != nil || m.Type() != wire.TypeHello {
			return
		}
		if w.Write(&wire.HaveAll{}) != nil || w.Flush() != nil {
			return
		}
		for {
			m, err := r.Read()
			if err != nil {
				return
			}
			wn, ok := m.(*wire.WantNode)
			if !ok {
				continue
			}
			var out wire.Msg = &wire.NodeMissing{CID: wn.CID}
			if b, ok := blocks[wn.CID]; ok {
				out = &wire.Node{CID: wn.CID, Data: b}
			}
			if w.Write(out) != nil || w.Flush() != nil {
				return
			}
		}
	})
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

func TestHostileDAGs(t *testing.T) {
	u := proto.Uint64
	file, dir, hamt := pb.Data_File.Enum(), pb.Data_Directory.Enum(), pb.Data_HAMTShard.Enum()
	leaf := func(i byte, n int) (cid.Cid, []byte) {
		b := make([]byte, n)
		b[0] = i
		return integrity.Chunk(b), b
	}
	cases := []struct {
		name string
		// build returns the bad root: a file or folder.
		build func(t *testing.T, d hostileDAG) cid.Cid
		says  string
	}{
		{"a file node that lies about a child's size", func(t *testing.T, d hostileDAG) cid.Cid {
			a, _ := leaf(1, 10)
			b, _ := leaf(2, 10)
			child := d.node(t, &pb.Data{Type: file, Filesize: u(20), Blocksizes: []uint64{10, 10}},
				&ipld.Link{Cid: a, Size: 10}, &ipld.Link{Cid: b, Size: 10})
			return d.node(t, &pb.Data{Type: file, Filesize: u(1 << 20), Blocksizes: []uint64{1 << 20}}, &ipld.Link{Cid: child, Size: 1 << 20})
		}, "declares 1048576 bytes under"},
		{"a leaf whose Tsize and blocksize differ", func(t *testing.T, d hostileDAG) cid.Cid {
			a, _ := leaf(1, 10)
			return d.node(t, &pb.Data{Type: file, Filesize: u(4 << 20), Blocksizes: []uint64{4 << 20}}, &ipld.Link{Cid: a, Size: 10})
		}, "4194304 bytes of content in a block of 10 bytes"},
		{"a 1 PiB claim", func(t *testing.T, d hostileDAG) cid.Cid {
			a, _ := leaf(1, 10)
			var links []*ipld.Link
			var sizes []uint64
			for range 1024 {
				links = append(links, &ipld.Link{Cid: a, Size: 1 << 40})
				sizes = append(sizes, 1<<40)
			}
			return d.node(t, &pb.Data{Type: file, Filesize: u(1 << 50), Blocksizes: sizes}, links...)
		}, "more than the 4194304 a leaf may hold"},
		{"a HAMT with a bad bitfield", func(t *testing.T, d hostileDAG) cid.Cid {
			a, _ := leaf(1, 10)
			return d.node(t, &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(256), Data: []byte{3}}, &ipld.Link{Name: "00a", Cid: a, Size: 10})
		}, "2 slots set"},
		{"a HAMT that names one shard twice", func(t *testing.T, d hostileDAG) cid.Cid {
			a, _ := leaf(1, 10)
			child := d.node(t, &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(256), Data: []byte{1}}, &ipld.Link{Name: "00same", Cid: a, Size: 10})
			return d.node(t, &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(256), Data: []byte{3}},
				&ipld.Link{Name: "00", Cid: child, Size: 100}, &ipld.Link{Name: "01", Cid: child, Size: 100})
		}, "hash puts it in slot"}, // one of the two is where its hash does not put it
		{"a link to a node of another codec", func(t *testing.T, d hostileDAG) cid.Cid {
			cbor := cid.NewCidV1(cid.DagCBOR, integrity.Chunk([]byte("x")).Hash())
			return d.node(t, &pb.Data{Type: file, Filesize: u(1), Blocksizes: []uint64{1}}, &ipld.Link{Cid: cbor, Size: 1})
		}, "codec"},
		{"a folder entry that climbs out", func(t *testing.T, d hostileDAG) cid.Cid {
			a, _ := leaf(1, 10)
			return d.node(t, &pb.Data{Type: dir}, &ipld.Link{Name: "C:", Cid: a, Size: 10})
		}, "cannot be written safely"},
	}
	paths := []string{"get", "ROOT/path", "inspect", "Open"}
	for _, tc := range cases {
		for _, how := range paths {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				d := hostileDAG{}
				root := tc.build(t, d)
				target := Target{Root: root}
				if how == "ROOT/path" {
					// The bad DAG below an honest folder.
					top := d.node(t, &pb.Data{Type: dir}, &ipld.Link{Name: "x", Cid: root, Size: 100})
					target = Target{Root: top, Path: "x"}
				}
				hostile := serveHostile(t, d)
				target.Hint = &hostile
				n := startNode(t, testConfig(t))
				out := t.TempDir()
				dest := filepath.Join(out, "got")
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				var err error
				switch how {
				case "get", "ROOT/path":
					_, err = n.Fetch(ctx, target, dest, FetchOptions{})
				case "inspect":
					_, err = n.Inspect(ctx, target, nil)
				case "Open":
					var r *Reader
					if r, err = n.Open(ctx, target, FetchOptions{}); err == nil {
						_, err = r.Read(make([]byte, 1))
						r.Close()
					}
				}
				runtime.ReadMemStats(&after)
				t.Logf("%v", err)
				if err == nil || !errors.Is(err, unixfs.ErrBadNode) {
					t.Fatalf("%s = %v, want an error wrapping unixfs.ErrBadNode", how, err)
				}
				if !strings.Contains(err.Error(), tc.says) {
					t.Errorf("the error does not say %q", tc.says)
				}
				if ctx.Err() != nil {
					t.Error("it took until the deadline")
				}
				if !n.swarm.Banned(hostile.ID) {
					t.Errorf("the peer that served the bad DAG was not banned")
				}
				if a := after.TotalAlloc - before.TotalAlloc; a > 64<<20 {
					t.Errorf("refusing it allocated %d MiB", a>>20)
				}
				if es, _ := os.ReadDir(out); len(es) != 0 {
					t.Errorf("the destination folder holds %d entries after a refused fetch", len(es))
				}
			})
		}
	}
}
