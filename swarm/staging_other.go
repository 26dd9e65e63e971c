//go:build !unix

package swarm

import (
	"io/fs"
	"os"
)

// noFollow is not a flag of open here: openStaged checks with Lstat.
const noFollow = 0

// lockStaging does nothing here: two fetches of one root to one
// destination at once are not detected.
func lockStaging(*os.File) error { return nil }

// checkOwned does nothing here: file ownership is not a mode.
func checkOwned(string, fs.FileInfo) error { return nil }

func umask() fs.FileMode { return 0o022 }

// dirSync says whether a folder can be fsynced here: not on Windows.
const dirSync = false
