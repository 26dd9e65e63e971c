//go:build unix

package node

import "syscall"

// freeBytes returns the bytes free to this user in dir's file system, and
// whether the system said.
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
