package store

import (
	"syscall"
	"testing"
	"time"
)

// ctimeOf returns the change time of the file at p.
func ctimeOf(t *testing.T, p string) time.Time {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return time.Unix(st.Ctim.Unix())
}
