package node

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestIdentityKeyFlushed: a new identity key is flushed to disk, and so is
// the home after the key is renamed into it; without the second flush a
// crash could lose the rename, and the next start would make another
// identity (another peer ID, and every ticket out there stale).
func TestIdentityKeyFlushed(t *testing.T) {
	home := t.TempDir()
	var calls []string
	rec := func(dir string) error {
		_, err := os.Stat(filepath.Join(dir, keyFile))
		calls = append(calls, dir+" with the key: "+map[bool]string{true: "yes", false: "no"}[err == nil])
		return syncDir(dir)
	}
	k, err := loadIdentityWith(home, rec)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{home + " with the key: yes"}; !slices.Equal(calls, want) {
		t.Fatalf("folder flushes %q, want %q", calls, want)
	}
	calls = nil
	again, err := loadIdentityWith(home, rec)
	if err != nil || !again.Equals(k) || len(calls) != 0 {
		t.Fatalf("loading the key again: %v, same key %v, flushes %q", err, again.Equals(k), calls)
	}
}
