package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Block returns the bytes of block c of target's DAG, verified against c:
// an interior node from the store, or from the target's provider and the
// root's peers as Inspect loads them; a chunk (a raw leaf) only from what
// this node shares or has fetched (the swarm moves chunks in fetches, not
// one by one). A block not found is an error wrapping ErrNotFound or the
// swarm's. It blocks until then or until ctx is done; it is safe for
// concurrent use. It is how a gateway serves ?format=raw and a CAR.
func (n *Node) Block(ctx context.Context, target Target, c cid.Cid) ([]byte, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	b, err := n.getterOf(target, nil).GetBlock(ctx, c)
	if err != nil {
		return nil, translate(fmt.Errorf("block %s of %s: %w", c, target.Root, err))
	}
	return b, nil
}
