//go:build !unix

package node

// lockFile does nothing where flock is missing: only one follow per folder
// in one node is then enforced.
func lockFile(string) (func(), error) { return func() {}, nil }
