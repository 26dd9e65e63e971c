package node_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/node"
)

// loopback returns a configuration for a node on 127.0.0.1 with its home in
// dir.
func loopback(dir string) node.Config {
	cfg := node.DefaultConfig()
	cfg.Home = dir
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

// Two nodes on this machine: one shares a file, the other fetches it with
// the ticket the first printed.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "peer-example-")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "hello.txt")
	os.WriteFile(file, []byte("hello, peer\n"), 0o644)

	alice, err := node.New(ctx, loopback(filepath.Join(dir, "alice")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Close()
	sh, err := alice.Share(ctx, file, node.ShareOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}

	bob, err := node.New(ctx, loopback(filepath.Join(dir, "bob")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bob.Close()
	target, err := node.ParseTarget(sh.Ticket)
	if err != nil {
		fmt.Println(err)
		return
	}
	dest := filepath.Join(dir, "bob-got.txt")
	if _, err := bob.Fetch(ctx, target, dest, node.FetchOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	got, _ := os.ReadFile(dest)
	fmt.Print(string(got))
	fmt.Println(sh.Root) // what `ipfs add --profile=unixfs-v1-2025` prints too
	// Output:
	// hello, peer
	// bafkreietniiurjk26mfraof6jgk2fsbftlhrhsv5uvor6w3nfphp56y2oy
}

// Fetch takes a path below a shared folder's root and fetches that file
// alone, here from a peer given by address.
func ExampleNode_Fetch() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "peer-example-")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "album", "2026"), 0o755)
	os.WriteFile(filepath.Join(dir, "album", "2026", "a.jpg"), []byte("not really a photo"), 0o644)

	seeder, _ := node.New(ctx, loopback(filepath.Join(dir, "seeder")))
	defer seeder.Close()
	sh, _ := seeder.Share(ctx, filepath.Join(dir, "album"), node.ShareOptions{})

	leecher, _ := node.New(ctx, loopback(filepath.Join(dir, "leecher")))
	defer leecher.Close()
	// One file of the shared folder, by path below the root.
	target, _ := node.ParseTarget(sh.Root.String() + "/2026/a.jpg")
	dest := filepath.Join(dir, "a.jpg")
	res, err := leecher.Fetch(ctx, target, dest, node.FetchOptions{Peers: []peer.AddrInfo{seeder.AddrInfo()}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Progress.Bytes, "bytes")
	// Output: 18 bytes
}

// Open reads a file while it downloads: here the last line of a log that a
// peer shares, read by seeking to the end, which the fetch asks for first.
func ExampleNode_Open() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "peer-example-")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "app.log")
	os.WriteFile(file, []byte("started\nworking\nstopped\n"), 0o644)

	seeder, _ := node.New(ctx, loopback(filepath.Join(dir, "seeder")))
	defer seeder.Close()
	sh, _ := seeder.Share(ctx, file, node.ShareOptions{})

	reader, _ := node.New(ctx, loopback(filepath.Join(dir, "reader")))
	defer reader.Close()
	target, _ := node.ParseTarget(sh.Ticket)
	r, err := reader.Open(ctx, target, node.FetchOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	r.Seek(-8, io.SeekEnd)
	tail, _ := io.ReadAll(r)
	fmt.Printf("%d bytes, ends with %q\n", r.Size(), tail)
	// Output: 24 bytes, ends with "stopped\n"
}

// Hash computes the root that sharing a file would announce, and its chunks,
// with no node at all (what `peer share --only-hash` prints): a file of one
// chunk is its own root, a raw leaf, as in every IPFS implementation.
func ExampleHash() {
	dir, _ := os.MkdirTemp("", "peer-example-")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "hello.txt")
	os.WriteFile(file, []byte("hello, peer\n"), 0o644)

	h, err := node.Hash(context.Background(), file, node.HashOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.Root)
	fmt.Println(h.Size, "bytes,", len(h.Chunks), "chunk,", h.Chunking, "standard:", h.Standard)
	// Output:
	// bafkreietniiurjk26mfraof6jgk2fsbftlhrhsv5uvor6w3nfphp56y2oy
	// 12 bytes, 1 chunk, fixed-1048576 standard: true
}

// The zero Config means the defaults; WithDefaults shows them as New will
// run them, and checks every field.
func ExampleConfig_WithDefaults() {
	dir, _ := os.MkdirTemp("", "peer-example-")
	defer os.RemoveAll(dir)
	cfg, err := node.Config{Home: dir}.WithDefaults()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.UploadSlots, cfg.FindTimeout, cfg.DHTMode, cfg.Chunking)
	_, err = node.Config{Home: dir, UploadSlots: -1}.WithDefaults()
	fmt.Println(err)
	// Output:
	// 4 1m0s auto fixed-1048576
	// node: invalid config: upload slots -1: want 1 or more (zero means the default, 4)
}

// Publish points a name at a folder; Resolve finds what the name points at
// now (connected peers first, then the DHT), and a Target of the name
// fetches it.
func ExampleNode_Resolve() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "peer-example-")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "site"), 0o755)
	os.WriteFile(filepath.Join(dir, "site", "index.html"), []byte("version 1\n"), 0o644)

	alice, _ := node.New(ctx, loopback(filepath.Join(dir, "alice")))
	defer alice.Close()
	pub, err := alice.Publish(ctx, filepath.Join(dir, "site"), node.PublishOptions{Key: "site"})
	if err != nil {
		fmt.Println(err)
		return
	}

	bob, _ := node.New(ctx, loopback(filepath.Join(dir, "bob")))
	defer bob.Close()
	bob.Connect(ctx, alice.AddrInfo())
	rec, err := bob.Resolve(ctx, pub.Name)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.Seq, rec.Root == pub.Root)
	target, _ := node.ParseTarget(pub.Name + "/index.html")
	dest := filepath.Join(dir, "index.html")
	if _, err := bob.Fetch(ctx, target, dest, node.FetchOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	got, _ := os.ReadFile(dest)
	fmt.Print(string(got))
	// Output:
	// 1 true
	// version 1
}
