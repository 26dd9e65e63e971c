package daemon

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// How a client makes sure that what answers at api.addr is this home's
// daemon before it tells it anything, and proves that it may drive it,
// without the token ever crossing the socket (issue 15: a program that took
// the port of a daemon that had crashed captured the token, and used it
// once the daemon was back).
//
//  1. The client sends a fresh nonce Nc (POST /v1/auth, no token).
//  2. The daemon answers with a fresh nonce Ns, its peer ID, a signature
//     with the node's identity key and an HMAC with the API token, both
//     over Nc, Ns and the address the connection reached it at.
//  3. The client checks the signature against the identity in the home
//     (identity.key, which only its owner can read): else it is not this
//     home's daemon, and the client stops, having sent nothing. It checks
//     the HMAC against api.token: else the file does not hold this
//     daemon's token (ErrUnauthorized).
//  4. Every request then carries Nc, Ns and an HMAC with the token under
//     another label, over the same address. It proves the token without
//     revealing it, and works only at that address: a program in the
//     middle, relaying to the daemon listening elsewhere, gets answers that
//     the client refuses and a proof the daemon refuses.
//
// The daemon keeps no state per handshake (an unauthenticated caller can
// make it hold nothing), and makes a new token at each start, so whatever a
// proof or token was worth ends with the daemon that made it.

// AuthScheme is the Authorization scheme of a proof: "PeerAuth NC.NS.MAC",
// each hex. The API also takes "Bearer TOKEN", for scripts.
const AuthScheme = "PeerAuth"

const (
	authNonceLen   = 32
	authDaemonSign = "peer api v1: the daemon signs\x00"
	authDaemonMAC  = "peer api v1: the daemon knows the token\x00"
	authClientMAC  = "peer api v1: the client knows the token\x00"
)

// authHello is the client's first message; authAnswer the daemon's.
type authHello struct {
	Nonce string `json:"nonce"`
}

type authAnswer struct {
	Nonce string `json:"nonce"`
	ID    string `json:"id"`    // the node's peer ID
	Sig   string `json:"sig"`   // hex, with the identity key, over authDaemonSign || Nc || Ns || addr
	Proof string `json:"proof"` // hex, HMAC-SHA256(token, authDaemonMAC || Nc || Ns || addr)
}

func newNonce() ([]byte, error) {
	b := make([]byte, authNonceLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("daemon: making a nonce: %w", err)
	}
	return b, nil
}

// authMAC is HMAC-SHA256 with the token over label, the two nonces (of
// fixed length) and the address the connection reached the daemon at.
func authMAC(token, label string, nc, ns []byte, addr string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(label))
	m.Write(nc)
	m.Write(ns)
	m.Write([]byte(addr))
	return m.Sum(nil)
}

func signedPayload(nc, ns []byte, addr string) []byte {
	b := make([]byte, 0, len(authDaemonSign)+2*authNonceLen+len(addr))
	b = append(b, authDaemonSign...)
	b = append(b, nc...)
	b = append(b, ns...)
	return append(b, addr...)
}

// answerAuth is the daemon's side of step 2, for a connection that reached
// it at addr.
func answerAuth(key crypto.PrivKey, token string, hello authHello, addr string) (authAnswer, error) {
	nc, err := hex.DecodeString(hello.Nonce)
	if err != nil || len(nc) != authNonceLen {
		return authAnswer{}, errorf(ErrBadRequest, "daemon: auth: the nonce must be %d bytes in hex", authNonceLen)
	}
	ns, err := newNonce()
	if err != nil {
		return authAnswer{}, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return authAnswer{}, err
	}
	sig, err := key.Sign(signedPayload(nc, ns, addr))
	if err != nil {
		return authAnswer{}, fmt.Errorf("daemon: auth: signing: %w", err)
	}
	return authAnswer{
		Nonce: hex.EncodeToString(ns),
		ID:    id.String(),
		Sig:   hex.EncodeToString(sig),
		Proof: hex.EncodeToString(authMAC(token, authDaemonMAC, nc, ns, addr)),
	}, nil
}

// checkAnswer is the client's step 3: nil if the answer comes from the
// daemon whose identity is want and who knows token; an error wrapping
// ErrImpostor if it is not that daemon, ErrUnauthorized if it is but does
// not know token. It returns Ns.
func checkAnswer(a authAnswer, want peer.ID, token string, nc []byte, addr string) ([]byte, error) {
	ns, err := hex.DecodeString(a.Nonce)
	if err != nil || len(ns) != authNonceLen {
		return nil, fmt.Errorf("%w: its answer holds no valid nonce", ErrImpostor)
	}
	if a.ID != want.String() {
		return nil, fmt.Errorf("%w: it claims to be %q, this home's node is %s", ErrImpostor, a.ID, want)
	}
	pub, err := want.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("daemon: auth: the home's identity %s: %w", want, err)
	}
	sig, err := hex.DecodeString(a.Sig)
	if err != nil {
		return nil, fmt.Errorf("%w: its signature is not hex", ErrImpostor)
	}
	if ok, err := pub.Verify(signedPayload(nc, ns, addr), sig); err != nil || !ok {
		return nil, fmt.Errorf("%w: it cannot sign as %s at %s", ErrImpostor, want, addr)
	}
	proof, err := hex.DecodeString(a.Proof)
	if err != nil || !hmac.Equal(proof, authMAC(token, authDaemonMAC, nc, ns, addr)) {
		return nil, ErrUnauthorized
	}
	return ns, nil
}

// clientAuth is the Authorization header of step 4.
func clientAuth(token string, nc, ns []byte, addr string) string {
	return AuthScheme + " " + hex.EncodeToString(nc) + "." + hex.EncodeToString(ns) + "." +
		hex.EncodeToString(authMAC(token, authClientMAC, nc, ns, addr))
}

// authorized reports whether the Authorization header h proves the token,
// for a request that reached the daemon at addr: a proof of step 4, or the
// token itself (Bearer).
func authorized(h, token, addr string) bool {
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(tok), []byte(token)) == 1
	}
	rest, ok := strings.CutPrefix(h, AuthScheme+" ")
	if !ok {
		return false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || len(parts[0]) != 2*authNonceLen || len(parts[1]) != 2*authNonceLen {
		return false
	}
	nc, err1 := hex.DecodeString(parts[0])
	ns, err2 := hex.DecodeString(parts[1])
	mac, err3 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	return hmac.Equal(mac, authMAC(token, authClientMAC, nc, ns, addr))
}
