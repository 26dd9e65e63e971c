package node

import (
	"io/fs"
	"syscall"
)

// ctime returns a file's change time in ns since the epoch: the kernel's
// clock at the last write, truncate, chmod, rename or link of the file,
// which no system call can set back (a modification time can be). 0 where
// it is not known.
func ctime(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
