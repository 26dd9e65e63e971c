package node

import (
	"errors"

	"github.com/peer-project/peer/importer"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/unixfs"
)

// Errors that the node's methods return, to match with errors.Is. Each
// wraps the error of the package below that caused it, which matches too,
// and keeps its message.
var (
	// ErrClosed is returned by calls on a closed node.
	ErrClosed = errors.New("node: closed")
	// ErrNotFound: the node does not share that root (Unshare), or a path
	// below a root names nothing.
	ErrNotFound = errors.New("node: not found")
	// ErrNoProviders: no peer that has the root could be found in time.
	ErrNoProviders = errors.New("node: no peer provides this root")
	// ErrExists: a fetch's destination exists and Force was not given.
	ErrExists = errors.New("node: destination exists")
	// ErrStalled: a fetch verified nothing for Config.StallTimeout; the
	// error names the peers it tried and what each did.
	ErrStalled = errors.New("node: fetch stalled")
	// ErrPrivate is returned by Share and Hash for a path that is the
	// node's home, holds it or lies inside it (identity key, API token,
	// database): never shared.
	ErrPrivate = errors.New("node: the node's home cannot be shared")
	// ErrTooLarge: a root claims more files, chunks or depth than a node
	// reads (unixfs.DefaultLimits); it is refused before it is loaded.
	ErrTooLarge = errors.New("node: too large")
	// ErrBadDAG: a node of the root's DAG is not valid UnixFS, or
	// contradicts its parent (sizes, names, a HAMT's shape); the peer that
	// sent it is banned.
	ErrBadDAG = errors.New("node: invalid DAG")
)

// kinds maps the errors of the packages below to the node's.
var kinds = []struct{ below, kind error }{
	{swarm.ErrClosed, ErrClosed},
	{store.ErrClosed, ErrClosed},
	{store.ErrNotFound, ErrNotFound},
	{unixfs.ErrNotFound, ErrNotFound},
	{swarm.ErrNoProviders, ErrNoProviders},
	{swarm.ErrExists, ErrExists},
	{swarm.ErrStalled, ErrStalled},
	{importer.ErrPrivate, ErrPrivate},
	{unixfs.ErrLimit, ErrTooLarge},
	{unixfs.ErrBadNode, ErrBadDAG},
}

// kindError is an error of a package below, marked with the node's kind.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// translate marks err with the node's error for each lower error it
// wraps, so that callers match node.ErrX (and still the lower one).
func translate(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range kinds {
		if errors.Is(err, k.below) && !errors.Is(err, k.kind) {
			err = &kindError{kind: k.kind, err: err}
		}
	}
	return err
}
