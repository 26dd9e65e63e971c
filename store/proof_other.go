//go:build !linux

package store

import "os"

// stampOf: no proofs but on Linux; every read is hashed.
func stampOf(os.FileInfo) (stamp, bool) { return stamp{}, false }

func localFS(*os.File) bool { return false }
