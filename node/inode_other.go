//go:build !unix

package node

import "io/fs"

// inode returns 0: only unix systems have inode numbers here.
func inode(fs.FileInfo) uint64 { return 0 }
