// Package bitfield is a fixed-length set of bits: which chunks of a file a
// peer holds. The download engine records its progress in one, the wire
// protocol sends one in HAVE messages, and the scheduler compares them.
//
// It is the one codec of that encoding: the wire's HaveBitfield (Validate,
// Get), the scheduler (Words, FromWords, into 64-bit words) and the swarm
// all go through it, so that no second copy of the bit order can drift.
//
// The encoding is BitTorrent's: bit i is the bit of value 0x80>>(i%8) in byte
// i/8, so index 0 is the high bit of the first byte, and the unused low bits
// of the last byte are zero. A Bitfield of n bits always encodes to exactly
// (n+7)/8 bytes. FromBytes validates an encoding that came from a peer or
// from disk before it trusts it: a wrong length or a bit set past n is refused
// with an error wrapping ErrInvalid, and nothing larger than the input is
// allocated.
//
// A Bitfield is a plain value with no goroutines and no I/O. It is not safe
// for concurrent use: callers that share one lock it themselves.
package bitfield
