package names

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestKeystore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	ks, err := OpenKeystore(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("keystore folder mode %04o, want 0700", fi.Mode().Perm())
	}
	sk, err := ks.Generate("photos")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "photos.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %04o, want 0600", err, fi.Mode().Perm())
	}
	got, err := ks.Get("photos")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(sk) {
		t.Fatal("Get returned another key")
	}
	if _, err := ks.Generate("photos"); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second Generate: %v, want ErrKeyExists", err)
	}
	if again, _ := ks.Get("photos"); !again.Equals(sk) {
		t.Fatal("a refused Generate replaced the key")
	}
	if _, err := ks.Get("missing"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Get missing: %v, want ErrNoKey", err)
	}
	if _, err := ks.Generate("music"); err != nil {
		t.Fatal(err)
	}
	list, err := ks.List()
	if err != nil || strings.Join(list, ",") != "music,photos" {
		t.Fatalf("List = %v, %v", list, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("%d files in the keystore, want 2 (no temporary file left)", len(ents))
	}
}

func TestKeyNames(t *testing.T) {
	ks, err := OpenKeystore(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../x", "..", ".", "a/b", `a\b`, ".hidden", "-flag", "a\x00b", "über", "a b", strings.Repeat("k", 65), "/etc/passwd"} {
		if _, err := ks.Generate(bad); !errors.Is(err, ErrKeyName) {
			t.Errorf("Generate(%q): %v, want ErrKeyName", bad, err)
		}
		if _, err := ks.Get(bad); !errors.Is(err, ErrKeyName) {
			t.Errorf("Get(%q): %v, want ErrKeyName", bad, err)
		}
	}
	for _, good := range []string{"a", "my-key_2.old", strings.Repeat("k", 64)} {
		if err := CheckKeyName(good); err != nil {
			t.Errorf("CheckKeyName(%q): %v", good, err)
		}
	}
}

func TestKeyPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix permissions")
	}
	dir := filepath.Join(t.TempDir(), "keys")
	ks, err := OpenKeystore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate("k"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "k.key")
	for _, mode := range []os.FileMode{0o640, 0o604, 0o666} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ks.Get("k")
		if !errors.Is(err, ErrKeyPerm) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("key mode %04o: %v, want ErrKeyPerm saying chmod 600", mode, err)
		}
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Get("k"); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}

	// A symlink in place of a key file is refused.
	other := filepath.Join(t.TempDir(), "other.key")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(other, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(dir, "link.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Get("link"); err == nil {
		t.Error("a symlinked key file was read")
	}

	// A folder others can enter is refused.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeystore(dir); !errors.Is(err, ErrKeyPerm) || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("folder 0755: %v, want ErrKeyPerm saying chmod 700", err)
	}
	// A file that is not a key.
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.key"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Get("junk"); err == nil || !strings.Contains(err.Error(), "not a private key") {
		t.Errorf("junk key file: %v", err)
	}
}
