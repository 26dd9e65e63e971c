package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShareHomeRefused: `peer share ~` through the daemon is a bad request
// that names the home and says what to do; nothing is shared.
func TestShareHomeRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	user := t.TempDir()
	home := filepath.Join(user, ".peer")
	if err := os.WriteFile(filepath.Join(user, "notes.txt"), []byte("notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, home)
	c := dial(t, ctx, home)
	for _, p := range []string{user, home, filepath.Join(home, TokenFile)} {
		if _, err := c.Share(ctx, ShareRequest{Path: p}); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), home) || !strings.Contains(err.Error(), "never be shared") {
			t.Errorf("share %s: %v; want a bad request naming the home", p, err)
		}
	}
	if sh, err := c.Shares(ctx); err != nil || len(sh) != 0 {
		t.Fatalf("shares: %+v, %v", sh, err)
	}
}
