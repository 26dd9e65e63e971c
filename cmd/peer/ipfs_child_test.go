package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	boxobs "github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	bchunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	kad "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// ipfsChildEnv names the variable that makes the test binary an IPFS
// node of the small internet (see ipfsChildMain) instead of running tests.
const ipfsChildEnv = "PEER_IPFS_CHILD"

// ipfsChildSpec is what an IPFS child runs: where it listens, its DHT's
// bootstrap peers, and the file it adds (size bytes of randomBytes(seed)).
type ipfsChildSpec struct {
	Listen    string   `json:"listen"`
	Bootstrap []string `json:"bootstrap"`
	Size      int      `json:"size"`
	Seed      uint64   `json:"seed"`
}

// ipfsChildMain runs an IPFS node, as Kubo is made, when ipfsChildEnv is
// set, and exits: a libp2p host, kad-dht with the /ipfs prefix as a
// server, boxo's Bitswap over a blockstore in memory that holds the file,
// imported as `ipfs add --raw-leaves --cid-version=1` does (1 MiB
// chunks). It speaks no protocol of peer's. It provides the root in the
// DHT, prints {"id", "root"} (or "ERR ..."), and serves until SIGTERM.
func ipfsChildMain() {
	s := os.Getenv(ipfsChildEnv)
	if s == "" {
		return
	}
	var spec ipfsChildSpec
	err := json.Unmarshal([]byte(s), &spec)
	if err == nil {
		err = runIPFSChild(spec)
	}
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runIPFSChild(spec ipfsChildSpec) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	h, err := libp2p.New(libp2p.ListenAddrStrings(spec.Listen), libp2p.DisableRelay())
	if err != nil {
		return err
	}
	defer h.Close()
	var boot []peer.AddrInfo
	for _, b := range spec.Bootstrap {
		ai, err := peer.AddrInfoFromString(b)
		if err != nil {
			return err
		}
		boot = append(boot, *ai)
	}
	k, err := kad.New(h, kad.Mode(kad.ModeServer), kad.ProtocolPrefix(kad.DefaultPrefix), kad.BootstrapPeers(boot...))
	if err != nil {
		return err
	}
	defer k.Close()
	bstore := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	bs := boxobs.New(ctx, bsnet.NewFromIpfsHost(h), nil, bstore)
	defer bs.Close()
	params := helpers.DagBuilderParams{
		Maxlinks:   1024,
		RawLeaves:  true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256},
		Dagserv:    merkledag.NewDAGService(blockservice.New(bstore, nil)),
	}
	db, err := params.New(bchunker.NewSizeSplitter(bytes.NewReader(randomBytes(spec.Size, spec.Seed)), 1<<20))
	if err != nil {
		return err
	}
	root, err := balanced.Layout(db)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, ai := range boot {
		if err := h.Connect(cctx, ai); err != nil {
			return fmt.Errorf("bootstrap %s: %w", ai.ID, err)
		}
	}
	if err := <-k.ForceRefresh(); err != nil {
		return fmt.Errorf("DHT refresh: %w", err)
	}
	if err := k.Provide(cctx, root.Cid(), true); err != nil {
		return fmt.Errorf("provide: %w", err)
	}
	out, _ := json.Marshal(map[string]string{"id": h.ID().String(), "root": root.Cid().String()})
	fmt.Println(string(out))
	<-ctx.Done()
	return nil
}
