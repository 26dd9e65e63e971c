package importer

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/unixfs"
)

// TestImportRefusesHome: `peer share ~` published the node's identity key
// and API token. The home, a folder that holds it, a file or folder inside
// it, and a link into it are refused with ErrPrivate and an error that
// says what to do; the sink is given nothing.
func TestImportRefusesHome(t *testing.T) {
	user := t.TempDir()
	home := filepath.Join(user, ".peer")
	write(t, filepath.Join(home, "identity.key"), []byte("private key"))
	write(t, filepath.Join(home, "api.token"), []byte("token"))
	write(t, filepath.Join(user, "photos", "a.jpg"), []byte("a photo"))
	other := t.TempDir()
	write(t, filepath.Join(other, "note.txt"), []byte("note"))
	if err := os.Symlink(home, filepath.Join(other, "to-home")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(home, filepath.Join(t.TempDir(), "home-link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		follow     bool
	}{
		{"the user's home, which holds it", user, false},
		{"the node's home", home, false},
		{"its identity key", filepath.Join(home, "identity.key"), false},
		{"a path through a link to it", filepath.Join(filepath.Dir(filepath.Join(other, "to-home")), "to-home", "api.token"), false},
		{"a folder with a followed link into it", other, true},
	} {
		s := newMemSink()
		_, err := Import(context.Background(), tc.path, Options{Params: chunker.FixedParams(small), Private: []string{home}, FollowLinks: tc.follow}, s)
		if !errors.Is(err, ErrPrivate) || !strings.Contains(err.Error(), home) || !strings.Contains(err.Error(), "never be shared") {
			t.Errorf("%s: Import = %v; want ErrPrivate naming %s", tc.name, err, home)
		}
		for p := range s.files {
			if strings.HasPrefix(p, home) {
				t.Errorf("%s: the sink was given %s", tc.name, p)
			}
		}
	}
	// Beside the home, sharing goes on as before.
	if _, err := Import(context.Background(), filepath.Join(user, "photos"), Options{Private: []string{home}}, nil); err != nil {
		t.Fatalf("a folder beside the home: %v", err)
	}
}

// TestImportLinksOut: a link that leads out of the shared folder is left
// out and listed (sharing ~/photos must not publish ~/.ssh through a link),
// unless FollowLinks; a link that stays inside is shared as a symlink, or
// followed with FollowLinks.
func TestImportLinksOut(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret", "id_ed25519"), []byte("ssh key"))
	write(t, filepath.Join(outside, "passwords.txt"), []byte("hunter2"))
	dir := filepath.Join(t.TempDir(), "photos")
	write(t, filepath.Join(dir, "a.jpg"), []byte("a photo"))
	write(t, filepath.Join(dir, "sub", "b.jpg"), []byte("b photo"))
	rel, err := filepath.Rel(dir, filepath.Join(outside, "passwords.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"out-dir":  filepath.Join(outside, "secret"),
		"out-file": filepath.Join(outside, "passwords.txt"),
		"relative": rel, // ../../…/passwords.txt
		"in-file":  filepath.Join(dir, "a.jpg"),
		"in-dir":   "sub",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	s := newMemSink()
	res, err := Import(context.Background(), dir, Options{Params: chunker.FixedParams(small)}, s)
	if err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, p := range res.SkippedLinks {
		skipped = append(skipped, strings.TrimPrefix(p, dir+"/"))
	}
	slices.Sort(skipped)
	if want := []string{"out-dir", "out-file", "relative"}; !slices.Equal(skipped, want) {
		t.Errorf("SkippedLinks = %q, want %q", skipped, want)
	}
	var got []string
	for p := range s.files {
		got = append(got, strings.TrimPrefix(p, dir+"/"))
	}
	slices.Sort(got)
	if want := []string{"a.jpg", "sub/b.jpg"}; !slices.Equal(got, want) {
		t.Errorf("shared %q, want %q", got, want)
	}
	// The links that stay inside are UnixFS symlinks, targets as written.
	links := map[string]string{}
	err = unixfs.NewWalker(s, unixfs.DefaultLimits()).Walk(context.Background(), res.Root, unixfs.Visitor{
		Symlink: func(p, target string) error { links[p] = target; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"in-dir": "sub", "in-file": filepath.Join(dir, "a.jpg")}; !maps.Equal(links, want) || res.Symlinks != 2 {
		t.Errorf("symlinks %q (%d), want %q", links, res.Symlinks, want)
	}
	for p := range s.files {
		if b, _ := os.ReadFile(p); string(b) == "ssh key" || string(b) == "hunter2" {
			t.Errorf("a file from outside the folder was shared: %s", p)
		}
	}
	// Asked to, it follows them.
	s = newMemSink()
	res, err = Import(context.Background(), dir, Options{Params: chunker.FixedParams(small), FollowLinks: true}, s)
	if err != nil || len(res.SkippedLinks) != 0 || res.Files != 7 {
		t.Fatalf("FollowLinks: %+v, %v; want 7 files, no link left out", res, err)
	}
}
