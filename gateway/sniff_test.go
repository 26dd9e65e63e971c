package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// startReads is an io.ReadSeeker of size bytes that records whether the
// first byte was read.
type startReads struct {
	*bytes.Reader
	start bool
}

func (s *startReads) Read(p []byte) (int, error) {
	if len(p) > 0 && s.Size()-int64(s.Len()) == 0 && s.Len() > 0 {
		s.start = true
	}
	return s.Reader.Read(p)
}

const testEtag = `"bafkreitest"`

// servesStart reports whether http.ServeContent, as serveFile calls it,
// sends the first byte of a file of size bytes for a GET with these Range
// and If-Range headers.
func servesStart(rng, ifRange string, size int64) bool {
	req := httptest.NewRequest("GET", "/ipfs/x", nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	if ifRange != "" {
		req.Header.Set("If-Range", ifRange)
	}
	w := httptest.NewRecorder()
	w.Header().Set("Etag", testEtag)
	w.Header().Set("Content-Type", "application/octet-stream") // no sniffing
	content := &startReads{Reader: bytes.NewReader(make([]byte, size))}
	http.ServeContent(w, req, "", time.Time{}, content)
	io.Copy(io.Discard, w.Result().Body)
	return content.start
}

// TestSendsStart checks sendsStart against what http.ServeContent does.
func TestSendsStart(t *testing.T) {
	const size = 1000
	for _, tt := range []struct {
		rng, ifRange string
		want         bool
	}{
		{"", "", true},
		{"bytes=0-", "", true},
		{"bytes=0-99", "", true},
		{"bytes=100-", "", false},
		{"bytes=100-199", "", false},
		{"bytes=-10", "", false},
		{"bytes=-1000", "", true},     // a suffix as long as the file
		{"bytes=-5000", "", true},     // longer
		{"bytes=100-,0-9", "", true},  // one part from the start
		{"bytes=100-,200-", "", true}, // more than the file: sent whole
		{"bytes=100-199,500-599", "", false},
		{"bytes=100-, 2000-", "", false}, // the one past the end left out
		{"bytes=2000-", "", false},       // 416
		{"bytes=500-100", "", false},     // 416
		{"bytes=abc", "", false},         // 416
		{"items=0-", "", false},          // 416
		{"bytes=", "", true},             // no range: the whole file
		{"bytes= , ", "", true},
		{"bytes=100-", testEtag, false},
		{"bytes=100-", `"bafkreiother"`, true}, // If-Range fails: the whole file
		{"bytes=100-", "W/" + testEtag, true},  // weak: fails
		{"bytes=100-", "Mon, 02 Jan 2006 15:04:05 GMT", true},
	} {
		if got := servesStart(tt.rng, tt.ifRange, size); got != tt.want {
			t.Fatalf("the test is wrong: ServeContent sends the start for Range %q If-Range %q: %v", tt.rng, tt.ifRange, got)
		}
		if got := sendsStart(rangeRequest(tt.rng, tt.ifRange), testEtag, size); got != tt.want {
			t.Errorf("sendsStart(Range %q, If-Range %q) = %v, want %v", tt.rng, tt.ifRange, got, tt.want)
		}
	}
}

func rangeRequest(rng, ifRange string) *http.Request {
	req := httptest.NewRequest("GET", "/ipfs/x", nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	if ifRange != "" {
		req.Header.Set("If-Range", ifRange)
	}
	return req
}

// FuzzSendsStart: whenever http.ServeContent would send a file's first
// byte, sendsStart says so: a body that holds the start is never sent
// without its sniffed type.
func FuzzSendsStart(f *testing.F) {
	for _, s := range []string{"bytes=0-", "bytes=100-", "bytes=-10", "bytes=100-,200-", "bytes=5-1", "bytes=", "bytes=-0", "bytes=0-0,-1"} {
		f.Add(s, "", uint16(1000))
	}
	f.Add("bytes=100-", testEtag, uint16(1000))
	f.Add("bytes=1-", `"x"`, uint16(1))
	f.Fuzz(func(t *testing.T, rng, ifRange string, size uint16) {
		if servesStart(rng, ifRange, int64(size)) && !sendsStart(rangeRequest(rng, ifRange), testEtag, int64(size)) {
			t.Errorf("Range %q If-Range %q on %d bytes: ServeContent sends the first byte, sendsStart says not", rng, ifRange, size)
		}
	})
}
