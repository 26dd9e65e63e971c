package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShareRefusesHome: the node's home holds its identity key (and a
// daemon's API token): sharing it, a folder that holds it, or a file in it
// is refused, with an error that names it, and nothing is shared.
func TestShareRefusesHome(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	user := t.TempDir()
	cfg := testConfig(t)
	cfg.Home = filepath.Join(user, ".peer")
	n := startNode(t, cfg)
	randomFile(t, user, "photos/a.jpg", 1000, 1)
	for _, p := range []string{user, cfg.Home, filepath.Join(cfg.Home, keyFile)} {
		for _, only := range []bool{false, true} {
			var err error
			if only {
				_, err = Hash(ctx, p, HashOptions{Private: []string{cfg.Home}})
			} else {
				_, err = n.Share(ctx, p, ShareOptions{})
			}
			if !errors.Is(err, ErrPrivate) || !strings.Contains(err.Error(), cfg.Home) {
				t.Errorf("Share(%s, only hash %v) = %v; want ErrPrivate naming the home", p, only, err)
			}
		}
	}
	if sh, err := n.Shares(); err != nil || len(sh) != 0 {
		t.Fatalf("shares after the refusals: %+v, %v", sh, err)
	}
	if _, err := n.Share(ctx, filepath.Join(user, "photos"), ShareOptions{}); err != nil {
		t.Fatalf("a folder beside the home: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, keyFile)); err != nil {
		t.Fatal(err)
	}
}
