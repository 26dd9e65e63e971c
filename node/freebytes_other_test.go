//go:build !unix

package node

// freeBytes reports that this system does not say what is free.
func freeBytes(string) (int64, bool) { return 0, false }
