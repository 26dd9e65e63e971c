package main

import (
	"testing"

	"github.com/peer-project/peer/daemon"
)

// TestReuseLine: the line share prints of the files it did not read again.
func TestReuseLine(t *testing.T) {
	for _, tc := range []struct {
		sh   daemon.ShareInfo
		want string
	}{
		{daemon.ShareInfo{Files: 100, Size: 100 << 30}, ""},
		{daemon.ShareInfo{Files: 100, Size: 100 << 30, Reused: 99, ReusedBytes: 99 << 30},
			"  reused 99 unchanged files (99.0 GiB) from the last share; hashed 1 file (1.0 GiB)"},
		{daemon.ShareInfo{Files: 3, Size: 3000, Reused: 1, ReusedBytes: 1000},
			"  reused 1 unchanged file (1000 B) from the last share; hashed 2 files (2.0 KiB)"},
		{daemon.ShareInfo{Files: 1, Size: 5 << 20, Reused: 1, ReusedBytes: 5 << 20},
			"  reused 1 unchanged file (5.0 MiB) from the last share; hashed nothing"},
		// Files of no bytes.
		{daemon.ShareInfo{Files: 2, Reused: 2}, "  reused 2 unchanged files (0 B) from the last share; hashed nothing"},
	} {
		if got := reuseLine(tc.sh); got != tc.want {
			t.Errorf("reuseLine(%+v) = %q, want %q", tc.sh, got, tc.want)
		}
	}
}
