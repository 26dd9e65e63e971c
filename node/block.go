package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Block returns the bytes of block c of target's DAG, verified against c:
// an interior node from the store, or from the target's provider and the
// root's peers as Inspect loads them; a chunk (a raw leaf) only from what
// this node shares or has fetched, since the swarm moves chunks in fetches
// of their file, not one by one. A chunk that is not here is at once an
// error wrapping ErrNotFound; an interior node that no peer gives, the
// swarm's error. It blocks until then or until ctx is done; it is safe for
// concurrent use. It is how a gateway serves ?format=raw and a CAR.
func (n *Node) Block(ctx context.Context, target Target, c cid.Cid) ([]byte, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if c.Prefix().Codec == cid.Raw {
		// A chunk: the swarm moves chunks in a fetch of their file, not
		// one by one, so none is asked for here.
		b, err := n.store.GetBlock(ctx, c)
		if err != nil {
			return nil, translate(fmt.Errorf("block %s of %s: a chunk this node neither shares nor has fetched (fetch its file first): %w", c, target.Root, err))
		}
		return b, nil
	}
	b, err := n.getterOf(target, nil).GetBlock(ctx, c)
	if err != nil {
		return nil, translate(fmt.Errorf("block %s of %s: %w", c, target.Root, err))
	}
	return b, nil
}
