//go:build unix

package node

import (
	"io/fs"
	"syscall"
)

// inode returns the inode number of a file, 0 where there is none.
func inode(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
