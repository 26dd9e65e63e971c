//go:build !unix

package store

import "os"

// openFlags: no FIFOs that block an open here.
const openFlags = os.O_RDONLY
