// Package kubovec holds the unixfs-v1-2025 test vectors of Kubo's own test
// suite (test/cli/cid_profiles_test.go, the unixfsV12025 expectations, and
// the CIDs every IPFS implementation knows), and makes their inputs the way
// that suite makes them, so that the tests of unixfs and importer check
// against one copy.
package kubovec

import (
	"crypto/sha256"
	"io"

	"golang.org/x/crypto/chacha20"
)

// Roots that Kubo computes with --profile=unixfs-v1-2025.
const (
	HelloWorld = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e" // "hello world"
	AtMaxLinks = "bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm" // 1024 MiB, Seeded("v1-2025-seed")
	OverMax    = "bafybeihmzokxxjqwxjcryerhp5ezpcog2wcawfryb2xm64xiakgm4a5jue" // 1025 MiB, same seed
	DirBasic   = "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4" // 4766 entries, block of exactly 256 KiB
	DirHAMT    = "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu" // the same, one byte over
	// The empty file and the empty folder.
	EmptyFile = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	EmptyDir  = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
)

// Seeded returns n bytes of the ChaCha20 key stream keyed by SHA-256(seed)
// with a zero nonce, as Kubo's tests make deterministic files.
func Seeded(seed string, n int64) io.Reader {
	key := sha256.Sum256([]byte(seed))
	// A 32-byte key and a nonce of NonceSize never fail.
	c, err := chacha20.NewUnauthenticatedCipher(key[:], make([]byte, chacha20.NonceSize))
	if err != nil {
		panic(err)
	}
	return io.LimitReader(keyStream{c}, n)
}

type keyStream struct{ c *chacha20.Cipher }

func (k keyStream) Read(p []byte) (int, error) {
	clear(p)
	k.c.XORKeyStream(p, p)
	return len(p), nil
}
