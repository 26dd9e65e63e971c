package swarm

import "io/fs"

// Umask returns the process's file mode creation mask (022 where it cannot
// be read), which a mode stored in UnixFS metadata is applied less: a
// follow applies the modes of the folders it makes as a fetch does.
func Umask() fs.FileMode { return umask() }
