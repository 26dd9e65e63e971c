//go:build !linux

package store

import (
	"testing"
	"time"
)

// ctimeOf skips the test: stamps, change time included, are kept on
// Linux only (proof_linux.go).
func ctimeOf(t *testing.T, _ string) time.Time {
	t.Helper()
	t.Skip("stamps are kept on Linux only")
	return time.Time{}
}
