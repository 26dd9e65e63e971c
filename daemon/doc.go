// Package daemon runs a peer node behind a local HTTP+JSON API, and is the
// API's Go client; cmd/peer is a thin layer of flags and printing over it.
//
// A daemon lives in a home directory (~/.peer by default) that holds the
// node's identity key and database, a config file (config.json, Settings),
// the API's address (api.addr) and its token (api.token, mode 0600, made
// anew at each start), and may hold a swarm.key (mode 0600) that makes the
// node's network private. The API listens on loopback only; every request
// must prove the token and name a loopback host, so neither another user nor
// a web page can drive it. Dial first makes sure that what answers at
// api.addr is the home's daemon (it signs a challenge with the node's
// identity key and proves it knows the token, both bound to the address), so
// a program that took the port of a daemon that crashed learns nothing; it
// then sends a proof of the token with each request, never the token (see
// AuthScheme). Scripts may send "Authorization: Bearer TOKEN". With a
// metrics address the daemon also serves Prometheus metrics (see the Metric
// constants).
//
// API is what the CLI needs: Client speaks to a running daemon, Local runs
// the same calls on a node in this process (when no daemon runs). The
// endpoints, all under /v1, take and return JSON:
//
//	POST /v1/auth      the handshake (no token): {"nonce"} → {"nonce","id","sig","proof"}
//	GET  /v1/id        IDInfo
//	GET  /v1/status    StatusInfo
//	GET  /v1/peers     []PeerInfo
//	GET  /v1/shares    []ShareInfo
//	POST /v1/share     ShareRequest → ShareInfo
//	POST /v1/unshare   {"root": ROOT}
//	POST /v1/inspect   InspectRequest → ListingInfo
//	POST /v1/get       GetRequest → NDJSON lines {"progress":…}, then {"result":…} or {"error":…}
//	POST /v1/cat       GetRequest → the file's bytes
//	POST /v1/export    ExportRequest → a CARv1 of the target's DAG
//	POST /v1/import    ImportRequest → ImportInfo
//	POST /v1/ui/login  {} → UILogin: a one-time link that signs a browser in to the web UI
//
// The web UI (package webui) is served under /ui/ on the same listener,
// with its own sign-in (a session cookie named after the API's port) and
// checks; the API's endpoints never take its cookie. Both want a Host that
// is a loopback name or address with the listener's own port.
//
// An error is {"error": message, "kind": "not_found"|"exists"|"bad_request"|
// "unauthorized"|"internal"} with a matching HTTP status; Client turns it
// back into an *Error that matches ErrNotFound, ErrExists, ... with
// errors.Is. A fetch runs as long as its request: a client that goes away
// cancels it, and its partial file stays for the next get to resume.
package daemon
