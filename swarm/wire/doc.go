// Package wire defines the messages of peer's exchange protocol and their
// framing: pure encoding and decoding over an io.Reader and an io.Writer, with
// no libp2p import. The I/O layer in swarm/ opens libp2p streams under
// ProtocolID and reads and writes them with a Reader and a Writer.
//
// # Use
//
//	w := wire.NewWriter(stream)
//	w.Write(&wire.Hello{Version: wire.Version, Root: root})
//	w.Write(&wire.Want{Indices: []uint64{0, 1, 2}})
//	w.Flush() // one write for the batch
//
//	r := wire.NewReader(stream, 0)
//	r.SetBlockAlloc(pool.get) // optional: block data lands in pooled buffers
//	for {
//		m, err := r.Read()
//		...
//		switch m := m.(type) {
//		case *wire.Block: ...
//		}
//	}
//
// Reader and Writer are each for one goroutine; a stream is full duplex, so a
// session reads on one goroutine and writes on another. Byte slices of a
// message Read returns (Block.Data, Node.Data, HaveBitfield.Bits) alias the
// Reader's buffer until the next Read, unless a BlockAllocFunc supplied the
// Block. The decoder checks structure and limits only: the session checks
// the order of messages, indices against the chunk count
// (HaveBitfield.Validate), and data against CIDs (package integrity).
//
// # Protocol specification
//
// This section is the spec: another implementation can follow it alone.
//
// Session. One libp2p stream per (peer, root), protocol ID
// "/peer/xfer/2.1.0" (or "/peer/xfer/2.0.0", see Versions). The side that
// opens the stream sends HELLO first; after
// that both sides may send any message but HELLO at any time. The stream is
// full duplex, requests are pipelined and replies come in any order. A side
// that receives a message it cannot decode sends ERROR (code 1) if it can,
// then resets the stream. A side that sends ERROR closes the stream after it.
//
// Integers. Every integer in a frame is an unsigned LEB128 varint ("uvarint"):
// seven bits per byte, least significant group first, high bit set on every
// byte but the last. It must be minimal (no trailing 0x00 group; zero is the
// single byte 0x00) and at most 10 bytes long, holding at most 2^64-1. A
// varint that breaks these rules is malformed.
//
// Frame. A frame is
//
//	length (uvarint) | type (1 byte) | payload (length-1 bytes)
//
// where length counts the type byte and the payload, 1 ≤ length ≤
// MaxMessageSize = 4 MiB + 64 KiB = 4259840. A receiver may set a smaller
// limit. A receiver refuses a length over its limit, or a payload longer
// than its type allows (below), as soon as it has read the length and type
// byte, before reading the payload. An unknown type byte is an error; types
// 0x00 and 0x12-0xff are unassigned, and 0x11 is unknown on 2.0.
//
// Versions. Nothing in a frame can be skipped (an unknown type, a trailing
// byte, are errors), so a message or field is added under a new protocol ID,
// and peers agree on the version before HELLO, by libp2p's protocol
// negotiation (multistream-select): a node accepts every version it speaks,
// and the opener of a stream offers the newest first, so that two nodes of
// different versions speak the older one. 2.1 is 2.0 and IN_ORDER; a 2.1
// node asks a 2.0 peer on 2.0 and sends it no IN_ORDER, and serves a 2.0
// fetcher, which cannot say it reads in order, as 2.0 did. The version in
// HELLO is the major version (2), the same on 2.0 and 2.1.
//
// Fields. A payload is a sequence of fields and must end exactly where its
// last field ends. Field kinds:
//
//   - uint: a uvarint.
//   - cid: uvarint n (≤ 64), then n bytes: a binary CID that is CIDv1,
//     codec dag-pb (0x70) or raw (0x55), multihash sha2-256 (0x12) with a
//     32-byte digest, i.e. 36 bytes 01 70 12 20 <digest> or 01 55 12 20
//     <digest>. Any other CID is malformed. (Chunk CIDs never travel in
//     BLOCK: a chunk is named by its index in the root's chunk list, and its
//     CID comes from the DAG.)
//   - list: uvarint count (1 ≤ count ≤ MaxWant = 256), then count uints. An
//     empty list is malformed.
//   - rest: all remaining bytes of the payload (possibly none).
//
// Messages (type byte, name, payload fields, largest payload):
//
//	0x01 HELLO          version uint, root cid, chunks uint        ≤ 94 bytes
//	0x02 HAVE_ALL       (empty)                                    0
//	0x03 HAVE_NONE      (empty)                                    0
//	0x04 HAVE_BITFIELD  bits rest                                  ≤ length limit
//	0x05 HAVE           index uint                                 ≤ 10
//	0x06 WANT           indices list                               ≤ 2562
//	0x07 CANCEL         indices list                               ≤ 2562
//	0x08 DONT_HAVE      indices list                               ≤ 2562
//	0x09 BLOCK          index uint, data rest (≤ 4 MiB)            ≤ 10 + 4194304
//	0x0a WANT_NODE      cid cid                                    ≤ 74
//	0x0b NODE           cid cid, data rest (≤ 4 MiB)               ≤ 74 + 4194304
//	0x0c NODE_MISSING   cid cid                                    ≤ 74
//	0x0d ERROR          code uint (≤ 0xffff), msg rest (≤ 256 B)   ≤ 259
//	0x0e CHOKE          (empty)                                    0
//	0x0f UNCHOKE        (empty)                                    0
//	0x10 NOT_INTERESTED (empty)                                    0
//	0x11 IN_ORDER       (empty; 2.1 on)                            0
//
// HELLO: version is 2 for this spec; root is the CID of the root (a UnixFS
// dag-pb node, or the raw leaf that is a whole file of one chunk);
// chunks is the number of chunks of the root, 0 when the opener does not
// know it yet. The receiver answers only for a root it serves (shares,
// holds inside a share, or is fetching), else with ERROR not found: a root
// whose DAG it merely stored is not served.
//
// HAVE_ALL / HAVE_NONE: the sender has every chunk (and every node)
// of the root / no chunk yet.
//
// HAVE_BITFIELD: chunk i of the root's chunk list is the bit of value
// 0x80 >> (i mod 8) in byte (i div 8): most significant bit first, as in
// BitTorrent, so chunk 0 is the high bit of the first byte. The field is
// exactly ceil(chunks/8) bytes long and has no bit set at or past index
// chunks (the low bits of the last byte past the end are zero); a receiver
// checks this once it knows chunks and ends the session with ERROR (code 1)
// if it fails. Worked example, chunks 0, 2 and 9 present of 10:
//
//	chunk   0 1 2 3 4 5 6 7 | 8 9 - - - - - -
//	bit     1 0 1 0 0 0 0 0 | 0 1 0 0 0 0 0 0
//	byte    a0              | 40
//
// so the field is a0 40 and the frame 03 04 a0 40. With 10 chunks, a0 60
// (bit 10 set) and a0 (one byte) are malformed. (An earlier text of this
// spec said least significant bit first while every implementation sent the
// most significant first; the spec was changed to what runs, so that no
// deployed node's bitfield changes meaning.)
// Roots of more than MaxBitfieldChunks (34078712) chunks are announced with
// HAVE_ALL or HAVE instead.
//
// HAVE: the sender now has chunk index (it verified it since its last
// announcement).
//
// WANT: the sender asks for these chunks; the receiver answers each with
// BLOCK or DONT_HAVE, in any order. CANCEL withdraws WANTs not yet answered
// (a BLOCK already on its way may still arrive). DONT_HAVE: the sender does
// not have, or will not send, these chunks.
//
// BLOCK: chunk index, data its bytes. The receiver verifies data against the
// chunk's CID from the DAG before it trusts a byte of it.
//
// WANT_NODE / NODE / NODE_MISSING: request, delivery and refusal of a
// block of the root's DAG (the root, and the file nodes, folders and HAMT
// shards below it; the root itself when it is a raw leaf) by CID. The
// receiver of NODE verifies data against cid, and decodes a dag-pb node
// within its limits. Only the blocks of the session's root
// are sent, and only once the sender knows the root's layout; any other
// CID is answered NODE_MISSING.
//
// CHOKE / UNCHOKE (sent by the serving side, which has upload slots for a
// few peers at a time): after CHOKE the sender drops every WANT it has not
// answered and every WANT that arrives until it sends UNCHOKE; BLOCKs sent
// before CHOKE arrive before it. The receiver forgets its unanswered
// requests and sends no WANT until UNCHOKE; it must still accept a BLOCK
// for a chunk it asked for before the CHOKE (a WANT that crossed the CHOKE
// on the wire may be answered after an UNCHOKE). A session begins
// unchoked; WANT_NODE is answered choked or not. NOT_INTERESTED (sent by
// the fetching side, typically right after an UNCHOKE) says that it wants
// nothing of the receiver for now: the receiver may give its upload slot to
// another peer without choking it; its next WANT is served or choked as
// any. CHOKE and UNCHOKE alternate, CHOKE first, and each CHOKE answers a
// WANT received while the peer was unchoked, a different one each time: a
// repeated CHOKE or UNCHOKE, or more CHOKEs than WANT messages, is a
// protocol error.
//
// IN_ORDER (2.1 on; sent by the fetching side, once per session at most,
// right after HELLO): the sender reads the chunks in the order it asks for
// them and waits on each (a streaming reader, seeks and all). The receiver
// serves its WANTs in the order they come, and never holds one back for
// another peer that could give the chunk (a seed may do so to fetchers that
// can trade among themselves, as BitTorrent's super-seeding does). A
// fetcher that does not send it is served in whatever order suits the
// receiver. An IN_ORDER that does not come right after HELLO (a second
// one, or one after a WANT), one from the serving side, or any on 2.0 is
// a protocol error.
//
// ERROR: the sender's last message. Codes: 1 protocol error, 2 not found
// (the root of HELLO), 3 rate limited, 4 too many requests, 5 banned, 6
// internal error, 7 idle (nothing went either way for a while and the
// receiver waited on nothing: it may open a new session when it wants
// something); an unknown code means 6. msg is UTF-8 for humans.
//
// Budgets. Every message costs its receiver a bounded amount of work, and
// a peer that sends more than the protocol gives it cause to is ended with
// ERROR (code 1, or 5 when it is banned for it):
//
//   - CANCEL: the chunks a session CANCELs may not exceed the chunks it
//     WANTed (a receiver allows a slack of its queue length, for a WANT and
//     its CANCEL written out of order).
//   - WANT: no more requests waiting than the receiver queues (1024 here;
//     code 4).
//   - HAVE: an index below the root's chunk count; each chunk announced
//     once per session (a receiver tolerates a few repeats, 1024 here).
//   - BLOCK, DONT_HAVE: only in answer to a WANT of that chunk (one
//     cancelled may still be answered).
//   - NODE, NODE_MISSING: only in answer to a WANT_NODE of that CID.
//   - WANT_NODE: a block already sent twice in the session is not asked
//     for again (a fetcher keeps what it gets).
//   - CHOKE, UNCHOKE: as said above, alternating, a CHOKE per WANT at most.
//   - Idle: a session with no message either way for a while (2 minutes
//     here), while its peer waits on nothing (no request queued, not
//     choked), may be ended with code 7.
//
// Examples, as bytes on the wire:
//
//	HAVE_ALL                 01 02
//	HAVE{300}                03 05 ac 02
//	WANT{0, 1, 200}          06 06 03 00 01 c8 01
//	BLOCK{7, "hi"}           04 09 07 68 69
//	ERROR{5, "bye"}          05 0d 05 62 79 65
//	HAVE_BITFIELD{a0 40}     03 04 a0 40
package wire
