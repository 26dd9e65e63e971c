package gateway_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/peer-project/peer/gateway"
)

// TestFilename: ?filename= names a file root, which has no name of its
// own: the type comes from the name's extension, and Content-Disposition
// carries the name (inline, or attachment with ?download=true), in ASCII
// and in UTF-8. A name that is not one safe file name is refused with 400.
func TestFilename(t *testing.T) {
	a := startNode(t)
	root, data := shareFile(t, a, 3*seamChunk+10, 31)
	base := serve(t, gateway.Config{Node: a, Loopback: true}).URL + "/ipfs/" + root.String()
	for _, tc := range []struct {
		query, ctype, disposition string
	}{
		{"", "application/octet-stream", ""}, // sniffed: random bytes
		{"?filename=report.pdf", "application/pdf", `inline; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{"?filename=report.pdf&download=true", "application/pdf", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{"?filename=r%C3%A9sum%C3%A9%20%22final%22%25.pdf", "application/pdf",
			`inline; filename="r_sum_ _final__.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%25.pdf`},
		{"?filename=notes", "application/octet-stream", `inline; filename="notes"; filename*=UTF-8''notes`}, // no extension: sniffed
	} {
		resp, body := get(t, "GET", base+tc.query, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("%s = %d with %d bytes, want 200 and the file", tc.query, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tc.query, got, tc.ctype)
		}
		if got := resp.Header.Get("Content-Disposition"); got != tc.disposition {
			t.Errorf("%s: Content-Disposition %q, want %q", tc.query, got, tc.disposition)
		}
	}
	for _, q := range []string{"a/b.pdf", "..", "a%0Ab.pdf", "c:report.pdf", strings.Repeat("x", 300) + ".pdf"} {
		resp, body := get(t, "GET", base+"?filename="+q, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "?filename") {
			t.Errorf("?filename=%.40s = %d %q, want 400 saying what is wrong with it", q, resp.StatusCode, body)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != "" {
			t.Errorf("?filename=%.40s: the error is given a Content-Disposition %q", q, cd)
		}
		t.Logf("?filename=%.40s: %d %s", q, resp.StatusCode, strings.TrimSpace(string(body)))
	}
}
