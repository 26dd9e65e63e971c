package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// LoginTTL is how long a login link stays good if nobody uses it.
	LoginTTL = 10 * time.Minute
	// SessionTTL is how long a browser stays signed in (at most: every
	// session ends with the daemon that made it).
	SessionTTL = 24 * time.Hour
	// maxLogins and maxSessions bound what the UI keeps: the oldest goes
	// first.
	maxLogins   = 16
	maxSessions = 64
	secretLen   = 32
)

// session is a signed-in browser.
type session struct {
	csrf    string // the forms' token
	expires time.Time
}

func newSecret() string {
	b := make([]byte, secretLen)
	if _, err := rand.Read(b); err != nil {
		panic("webui: crypto/rand failed: " + err.Error()) // the runtime's reader does not fail
	}
	return hex.EncodeToString(b)
}

// NewLogin returns a one-time token for a login link (URL?token=TOKEN):
// the first GET with it signs the browser in; it cannot be used twice and
// ends after LoginTTL. Safe for concurrent use.
func (u *UI) NewLogin() string {
	tok := newSecret()
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expireLocked(now)
	if len(u.logins) >= maxLogins {
		oldest := ""
		for k, exp := range u.logins {
			if oldest == "" || exp.Before(u.logins[oldest]) {
				oldest = k
			}
		}
		delete(u.logins, oldest)
	}
	u.logins[tok] = now.Add(LoginTTL)
	return tok
}

// expireLocked drops the logins and sessions that ended.
func (u *UI) expireLocked(now time.Time) {
	for k, exp := range u.logins {
		if !now.Before(exp) {
			delete(u.logins, k)
		}
	}
	for k, s := range u.sessions {
		if !now.Before(s.expires) {
			delete(u.sessions, k)
		}
	}
}

// redeem consumes a login token and returns a new session's ID, or false
// if the token is unknown, used or expired.
func (u *UI) redeem(tok string) (string, bool) {
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expireLocked(now)
	found := ""
	for k := range u.logins {
		// Constant time, whatever the map's order says.
		if subtle.ConstantTimeCompare([]byte(k), []byte(tok)) == 1 {
			found = k
		}
	}
	if found == "" {
		return "", false
	}
	delete(u.logins, found)
	if len(u.sessions) >= maxSessions {
		oldest := ""
		for k, s := range u.sessions {
			if oldest == "" || s.expires.Before(u.sessions[oldest].expires) {
				oldest = k
			}
		}
		delete(u.sessions, oldest)
	}
	id := newSecret()
	u.sessions[id] = &session{csrf: newSecret(), expires: now.Add(SessionTTL)}
	return id, true
}

// sessionOf returns the session r's cookie names, or nil.
func (u *UI) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(u.cookie)
	if err != nil || len(c.Value) != 2*secretLen {
		return nil
	}
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expireLocked(now)
	var found *session
	for k, s := range u.sessions {
		if subtle.ConstantTimeCompare([]byte(k), []byte(c.Value)) == 1 {
			found = s
		}
	}
	if found == nil {
		return nil
	}
	s := *found
	return &s
}

// sameOrigin reports whether a state-changing request comes from a page of
// this UI: its Origin (or, without one, its Referer) is http://HOST where
// HOST is the request's own (already checked) Host.
func sameOrigin(r *http.Request) bool {
	want := "http://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		return o == want
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || ref.Scheme == "" {
		return false
	}
	return ref.Scheme+"://"+ref.Host == want
}

// badPath reports whether p holds NUL or a "." or ".." element: the UI
// names none, and refuses them rather than cleaning them.
func badPath(p string) bool {
	if strings.ContainsRune(p, 0) {
		return true
	}
	for _, e := range strings.Split(p, "/") {
		if e == "." || e == ".." {
			return true
		}
	}
	return false
}
