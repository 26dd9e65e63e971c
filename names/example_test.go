package names_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/names"
)

// A publisher and a follower on two connected hosts: the follower gets
// each new record of the name as soon as it is published.
func Example() {
	mn := mocknet.New()
	defer mn.Close()
	ha, _ := mn.GenPeer()
	hb, _ := mn.GenPeer()
	mn.LinkAll()
	mn.ConnectAllButSelf()

	a, _ := names.NewResolver(names.Config{Host: ha})
	defer a.Close()
	b, _ := names.NewResolver(names.Config{Host: hb})
	defer b.Close()

	// A named key comes from a Keystore (OpenKeystore, then Generate or
	// Get); the node's own key works too.
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	pub, _ := names.NewPublisher(names.PublisherConfig{Key: key, Resolver: a})
	defer pub.Close()

	sub, _ := b.Follow(pub.Name())
	defer sub.Cancel()

	root := integrity.Chunk([]byte("version 1"))
	if _, err := pub.Publish(context.Background(), root); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case rec := <-sub.C:
		fmt.Println(rec.Seq, rec.Root == root)
	case <-time.After(10 * time.Second):
		fmt.Println("no record")
	}
	// Output: 1 true
}
