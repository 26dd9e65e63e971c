package names

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ic "github.com/libp2p/go-libp2p/core/crypto"
)

var (
	// ErrKeyName: a key name is not one plain, short word.
	ErrKeyName = errors.New("names: bad key name")
	// ErrKeyExists: Generate was asked for a name that is taken.
	ErrKeyExists = errors.New("names: key exists")
	// ErrNoKey: no key has that name.
	ErrNoKey = errors.New("names: no such key")
	// ErrKeyPerm: a key file or the keystore folder can be read by others.
	ErrKeyPerm = errors.New("names: key permissions too open")
)

const (
	keyExt      = ".key"
	maxKeyName  = 64
	maxKeyBytes = 8 << 10 // a marshalled ed25519 key is 68 bytes, RSA 4096 about 2.4 KiB
)

// Keystore keeps named private keys in one folder, one file per key
// (NAME.key, libp2p's protobuf encoding), mode 0600 in a folder 0700. Like
// ssh, it refuses a key file or folder that others may read. Its methods
// are safe for concurrent use; they block on the file system.
type Keystore struct {
	dir string
}

// OpenKeystore opens the keystore in dir, making the folder (mode 0700) if
// it is missing. It refuses a folder that group or others may use.
func OpenKeystore(dir string) (*Keystore, error) {
	if dir == "" {
		return nil, errors.New("names: keystore: no folder given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("names: keystore: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("names: keystore: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("names: keystore: %s is not a folder", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: folder %s has mode %04o; run chmod 700 %s", ErrKeyPerm, dir, fi.Mode().Perm(), dir)
	}
	return &Keystore{dir: dir}, nil
}

// CheckKeyName says whether name may name a key: 1 to 64 of a-z A-Z 0-9 .
// _ -, not starting with a dot or a dash. Such a name is one path element
// and can never leave the keystore folder.
func CheckKeyName(name string) error {
	if name == "" || len(name) > maxKeyName {
		return fmt.Errorf("%w: %q: use 1 to %d characters", ErrKeyName, name, maxKeyName)
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("%w: %q: must not start with %q", ErrKeyName, name, name[0])
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q: only letters, digits, '.', '_' and '-' are allowed", ErrKeyName, name)
		}
	}
	return nil
}

func (k *Keystore) path(name string) string { return filepath.Join(k.dir, name+keyExt) }

// Generate makes a new ed25519 key from crypto/rand, saves it under name
// (mode 0600) and returns it. It refuses a name that is taken.
func (k *Keystore) Generate(name string) (ic.PrivKey, error) {
	if err := CheckKeyName(name); err != nil {
		return nil, err
	}
	sk, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("names: generate key: %w", err)
	}
	b, err := ic.MarshalPrivateKey(sk)
	if err != nil {
		return nil, fmt.Errorf("names: encode key: %w", err)
	}
	// Write a temporary file and link it into place: the key appears whole
	// or not at all, and an existing key is never overwritten.
	tmp, err := os.CreateTemp(k.dir, ".tmp-"+name+"-*")
	if err != nil {
		return nil, fmt.Errorf("names: save key %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("names: save key %s: %w", name, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("names: save key %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("names: save key %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("names: save key %s: %w", name, err)
	}
	if err := os.Link(tmp.Name(), k.path(name)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %q; pick another name or remove %s", ErrKeyExists, name, k.path(name))
		}
		return nil, fmt.Errorf("names: save key %s: %w", name, err)
	}
	return sk, nil
}

// Get loads the key called name. It refuses a file that group or others
// may read or write, and anything but a regular file (a symlink, say).
func (k *Keystore) Get(name string) (ic.PrivKey, error) {
	if err := CheckKeyName(name); err != nil {
		return nil, err
	}
	p := k.path(name)
	f, err := os.OpenFile(p, os.O_RDONLY|noFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q (no %s); make it with Generate", ErrNoKey, name, p)
	}
	if err != nil {
		return nil, fmt.Errorf("names: key %q: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("names: key %q: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("names: key %q: %s is not a regular file", name, p)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrKeyPerm, p, fi.Mode().Perm(), p)
	}
	if fi.Size() > maxKeyBytes {
		return nil, fmt.Errorf("names: key %q: %s is %d bytes, more than a key", name, p, fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("names: key %q: %w", name, err)
	}
	if len(b) > maxKeyBytes {
		return nil, fmt.Errorf("names: key %q: %s grew past %d bytes", name, p, maxKeyBytes)
	}
	sk, err := ic.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("names: key %q: %s is not a private key: %w", name, p, err)
	}
	return sk, nil
}

// List returns the names of the keys, sorted.
func (k *Keystore) List() ([]string, error) {
	ents, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("names: keystore: %w", err)
	}
	var out []string
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), keyExt)
		if ok && e.Type().IsRegular() && CheckKeyName(n) == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}
