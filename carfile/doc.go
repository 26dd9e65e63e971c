// Package carfile moves UnixFS DAGs in and out of CAR files (CARv1, the
// format of Kubo's `ipfs dag export` and `ipfs dag import`), so that a DAG
// peer holds can be carried to any IPFS tool and back.
//
// Export writes every block reachable from a root, each once, in the
// depth-first order of `ipfs dag export` (a node, then each of its links in
// order), reading blocks through a unixfs.Getter and checking each against
// its CID before it is written. Import reads a CAR as a stream: every
// block is checked (a CID this package reads, at most unixfs.MaxNodeSize
// bytes, bytes that hash to the CID, a dag-pb node that decodes as UnixFS)
// before it is handed to put, and at the end the roots whose DAG the CAR
// does not hold whole are reported. Neither buffers the CAR: Export holds
// one block and the path from the root; Import one block, and for the
// completeness check a set of the CIDs it has seen or been pointed at
// (about 100 bytes each), bounded by Limits.
//
// The CAR header is written and read with go-car/v2, the maintained
// module that Kubo uses for both commands; the sections are plain
// length-prefixed CID and bytes.
package carfile
