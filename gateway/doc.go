// Package gateway serves a node's content over HTTP as an IPFS path gateway
// and trustless gateway (specs.ipfs.tech/http-gateways) for read-only
// requests: GET and HEAD of /ipfs/ROOT[/path].
//
//   - A file is served with http.ServeContent over node.Open: Range (one or
//     more ranges), If-None-Match and If-Range against an ETag that is the
//     file's CID, a Content-Type from the name's extension or sniffed from
//     its first bytes, and Cache-Control immutable. ?filename=NAME names a
//     file (a file root has no name of its own): the type comes from its
//     extension, and Content-Disposition carries it, inline or, with
//     ?download=true, attachment (as Kubo's gateway does). A root this node does
//     not hold is fetched from the swarm as it is read: a Range near the end
//     moves the fetch's priority there before the rest. Sniffing waits for
//     the first chunk, so it is done only when that chunk is here or the
//     answer sends it (sendsStart); a Range past it on a root not here is
//     application/octet-stream, the type not known yet, and not to be
//     cached (no-store: once the first chunk is here, the same URL is
//     sniffed). A browser's first
//     request of a file reads from its start, and is sniffed; a Range that
//     starts further on comes from a seek or a resumed download, which has
//     the type from that first answer or reads the bytes' own.
//   - A folder is served as its index.html if it has one, else as an HTML
//     listing (names escaped, links relative to the folder's URL, which
//     ends in a slash: /ipfs/ROOT/dir is redirected to /ipfs/ROOT/dir/).
//   - ?format=raw or Accept: application/vnd.ipld.raw gives the one block
//     the path ends at; ?format=car or Accept: application/vnd.ipld.car a
//     CARv1 of its whole DAG (carfile.Export), as the trustless gateway
//     says. Chunks are served only from what the node shares or has
//     fetched: the swarm moves chunks in fetches, not one by one.
//   - Every answer names its content path (X-Ipfs-Path) and the CID that
//     each of its segments resolves to, root first (X-Ipfs-Roots).
//
// Bad input is refused before anything is fetched: 400 for a root that is
// not a CID peer reads, a path with "..", "." or NUL or another name no
// folder may hold, a ?filename= that is not one such name, or an unknown
// format; 404 for a path that names
// nothing; 416 for a range outside the file; 405 for a method other than
// GET and HEAD; 502 when no peer has the root or its DAG is invalid; 504
// when it is not found within Config.Timeout.
//
// Safety: on a loopback address (Config.Loopback) a request whose Host is
// not a loopback name is refused with 403, so that a web page cannot reach
// the gateway through DNS rebinding. Without Config.Fetch the gateway
// serves only the roots this node shares (403 for others); the daemon sets
// Fetch for a loopback gateway and, on another address, only when asked
// (--gateway-fetch). No endpoint shares, unshares or changes anything.
//
// Why not boxo/gateway: its handler wants an IPFSBackend (Get with ranges,
// GetAll, GetBlock, Head, ResolvePath, GetCAR with dag-scope and
// entity-bytes, IsCached, IPNS records, DNSLink) or a blockservice that
// fetches any block by its CID alone. peer's swarm fetches per root, in
// sessions that move chunks by index, and node.Open is already the seekable
// reader that steers them; a backend over node would re-implement most of
// the handler's work behind ten methods, and bring boxo's gateway, tracing
// and metrics dependencies into the daemon. This handler is the part of
// the path and trustless gateway specs that peer's content needs
// (immutable /ipfs/ paths of UnixFS DAGs), on node.Open and node.Block.
package gateway
