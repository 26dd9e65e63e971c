// Package bitswap speaks IPFS's Bitswap protocol beside peer's own, so
// that a Kubo node or a gateway can fetch what this node serves, and a
// fetch can take blocks from a node that speaks only Bitswap.
//
// It is a thin layer over boxo's Bitswap network and server. The server
// answers from a read-only view (Blocks) that the swarm gives: the blocks
// of the roots it serves, chunks read from their files and verified as the
// own protocol's are, never an arbitrary block. The client side is not
// boxo's client (which picks its own peers and sessions): a Link asks one
// peer for exactly the blocks a fetch's scheduler assigned to it
// (want-block with send-dont-have) and hands back what that peer sends, so
// that a Bitswap peer is one more source of the same scheduler.
//
// Every message from a peer that Config.Admit refuses (banned, not on the
// allowlist) is dropped before either side sees it, and no block is sent
// to one; the bytes of blocks sent wait on Config.Sending (the upload caps)
// first. A block that answers none of the wants this node sent the peer
// (Bitswap names a block by the hash of its bytes, so a block with the
// wrong bytes is one) is told to the peer's links as a stray, for the
// fetch to strike its sender.
//
// It lives under swarm because only the swarm uses it: the swarm builds an
// Exchange when its Config asks for one, and it imports nothing of this
// module, so the layers stay as they are.
package bitswap
