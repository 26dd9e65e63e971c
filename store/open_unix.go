//go:build unix

package store

import (
	"os"
	"syscall"
)

// openFlags opens a shared file to read without waiting: O_NONBLOCK makes
// open(2) of a FIFO return at once instead of waiting for a writer (no
// context can wake that wait), and changes nothing for a regular file.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
