//go:build unix

package names

import "syscall"

// noFollow makes opening a key file fail if it is a symlink.
const noFollow = syscall.O_NOFOLLOW
