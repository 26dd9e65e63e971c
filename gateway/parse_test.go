package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/peer-project/peer/unixfs"
)

// FuzzParse feeds the request parser any path, query and Accept header:
// it never panics, and what it accepts is a root and a path of valid names
// only (no "..", ".", NUL or separator), in a known format.
func FuzzParse(f *testing.F) {
	const root = "bafybeigfghz42gyjer6sfnvjkz46mjfrsulpysffliy2zirxiwca6b6uie"
	for _, s := range []struct{ path, query, accept string }{
		{"/ipfs/" + root, "", ""},
		{"/ipfs/" + root + "/a/b.txt", "format=raw", ""},
		{"/ipfs/" + root + "/", "", "application/vnd.ipld.car; version=1, */*"},
		{"/ipfs/" + root + "/../x", "", ""},
		{"/ipfs/" + root + "/a\x00b", "", ""},
		{"/ipfs/bafkreicixnysael3p3dflmkcavbsermwaliw3hzjzebbktxzasrifazlc4", "format=car", ""},
		{"/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "", ""},
		{"/ipns/x", "", ""},
		{"/ipfs//", "format=tar", "text/html"},
	} {
		f.Add(s.path, s.query, s.accept)
	}
	f.Fuzz(func(t *testing.T, p, query, accept string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: p, RawQuery: query}, Header: http.Header{}}
		r.Header.Set("Accept", accept)
		req, status, err := parse(r)
		if err != nil {
			if status < 400 || status > 499 {
				t.Fatalf("parse(%q) refused with status %d", p, status)
			}
			if !strings.HasPrefix(err.Error(), "gateway: ") {
				t.Fatalf("parse(%q): error %q does not say who speaks", p, err)
			}
			return
		}
		if !req.target.Root.Defined() {
			t.Fatalf("parse(%q): no root", p)
		}
		if req.target.Path != strings.Join(req.elems, "/") {
			t.Fatalf("parse(%q): path %q, names %q", p, req.target.Path, req.elems)
		}
		for _, el := range req.elems {
			if err := unixfs.ValidName(el); err != nil {
				t.Fatalf("parse(%q) accepted the name %q: %v", p, el, err)
			}
		}
		if req.format != "" && req.format != "raw" && req.format != "car" {
			t.Fatalf("parse(%q, %q): format %q", p, query, req.format)
		}
	})
}
