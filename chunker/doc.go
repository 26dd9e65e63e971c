// Package chunker cuts a stream into chunks and names each by its CID.
//
// Two ways to cut are recorded in Params, so that anyone can cut a file the
// same way again:
//
//   - Fixed: every chunk is Params.Size bytes but the last. With the same size
//     the chunk CIDs equal those of
//     `ipfs add --raw-leaves --cid-version=1 --chunker=size-N`.
//   - FastCDC: content-defined chunking between Min and Max bytes around an
//     average Avg, so that an edit in a big file changes only the chunks
//     around it and a new version shares most chunks with the old one. cdc.go
//     documents the exact algorithm and gear table.
//
// Split streams: worker goroutines take turns to read r into a bounded pool
// of large buffers and find the boundaries (one at a time, reading first),
// and hash the chunks with SHA-256 in parallel otherwise; with FastCDC, when
// workers are idle as a buffer is read, the sequential cut goes through it
// from the start while as many goroutines mark the candidate boundaries of
// its end, from the end down, and the cut goes on through their marks where
// the two meet, into exactly the sequential cut (cdcpar.go). The gear hash that finds the boundaries runs
// in eight lanes at once (assembly on amd64), and, where the CPU has
// AVX-512 VBMI, through a vector filter whose every candidate is checked
// against the full hash; the pure-Go scan is the reference the tests hold
// them to. The caller's goroutine receives the chunks in order:
//
//	err := chunker.Split(ctx, f, chunker.DefaultParams(), func(c chunker.Chunk) error {
//		fmt.Println(c.Index, c.Offset, c.Size, c.CID) // c.Data is valid only here
//		return nil
//	})
//
// Memory stays bounded (a few buffers per worker) whatever the stream's
// length, and no goroutine outlives Split. The package is pure: readers and
// bytes in, chunks and CIDs out; no package-level mutable state.
package chunker

// The amd64 assembly (gear_amd64.s, gearv_amd64.s) is written by
// internal/asmgen: change the generator, never the .s files, and run go
// generate (on any machine; the program writes the files whatever GOARCH).
//
//go:generate go run ./internal/asmgen
