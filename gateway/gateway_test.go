package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"go.uber.org/goleak"

	"github.com/peer-project/peer/carfile"
	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/gateway"
	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/unixfs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p-kad-dht/internal/net.(*peerMessageSender).ctxReadMsg"),
	)
}

// startNode runs a node on 127.0.0.1 only: no mDNS, no DHT peers, 256 KiB
// chunks.
func startNode(t *testing.T) *node.Node {
	t.Helper()
	return startNodeWith(t, nil)
}

// startNodeWith is startNode with edit applied to its Config (nil: none).
func startNodeWith(t *testing.T, edit func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Home = t.TempDir()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.NoMDNS = true
	cfg.NoSync = true
	cfg.Chunking = chunker.FixedParams(256 << 10)
	cfg.FindTimeout = 5 * time.Second
	cfg.RequestTimeout = 2 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func randomBytes(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// serve runs a gateway on n behind an httptest server on 127.0.0.1.
func serve(t *testing.T, cfg gateway.Config) *httptest.Server {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv
}

// get sends a request with the given headers ("Host" sets the Host) and
// returns the response with its body read.
func get(t *testing.T, method, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	client := &http.Client{
		Timeout:       time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, u, err)
	}
	return resp, body
}

// folder is a shared folder of a few files.
type folder struct {
	root  cid.Cid
	files map[string][]byte
}

func shareFolder(t *testing.T, n *node.Node) folder {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "site")
	files := map[string][]byte{
		"hello.txt":          []byte("hello, gateway\n"),
		"big.bin":            randomBytes(3<<20+12345, 1),
		"sub/page.html":      []byte("<!DOCTYPE html><html><body><p>hi</p></body></html>"),
		"<b>&odd name?#.txt": []byte("escaped\n"),
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sh, err := n.Share(ctx, dir, node.ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return folder{root: sh.Root, files: files}
}

func TestFile(t *testing.T) {
	a := startNode(t)
	f := shareFolder(t, a)
	srv := serve(t, gateway.Config{Node: a, Loopback: true})
	base := srv.URL + "/ipfs/" + f.root.String()

	resp, body := get(t, "GET", base+"/hello.txt", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, f.files["hello.txt"]) {
		t.Fatalf("GET hello.txt = %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("Cache-Control = %q, want immutable", cc)
	}
	if p := resp.Header.Get("X-Ipfs-Path"); p != "/ipfs/"+f.root.String()+"/hello.txt" {
		t.Errorf("X-Ipfs-Path = %q", p)
	}
	etag := resp.Header.Get("Etag")
	if r := resp.Header.Get("X-Ipfs-Roots"); r != f.root.String()+","+strings.Trim(etag, `"`) {
		t.Errorf("X-Ipfs-Roots = %q, want the root and the file's CID %s", r, etag)
	}
	if !strings.HasPrefix(etag, `"bafk`) {
		t.Errorf("Etag = %q, want the file's CID (a raw leaf) in quotes", etag)
	}
	resp, body = get(t, "GET", base+"/hello.txt", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match the Etag = %d with %d bytes, want 304 and nothing", resp.StatusCode, len(body))
	}

	// A file in a subfolder: its type from the name, both roots named.
	resp, body = get(t, "GET", base+"/sub/page.html", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, f.files["sub/page.html"]) {
		t.Fatalf("GET sub/page.html = %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	if r := strings.Split(resp.Header.Get("X-Ipfs-Roots"), ","); len(r) != 3 || r[0] != f.root.String() || `"`+r[2]+`"` != resp.Header.Get("Etag") {
		t.Errorf("X-Ipfs-Roots = %q, want the root, sub's CID and the file's", r)
	}

	// Ranges of the big file, one and several.
	big := f.files["big.bin"]
	resp, body = get(t, "GET", base+"/big.bin", map[string]string{"Range": "bytes=1000000-1099999"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, big[1000000:1100000]) {
		t.Fatalf("Range = %d with %d bytes, want 206 and the bytes", resp.StatusCode, len(body))
	}
	resp, body = get(t, "GET", base+"/big.bin", map[string]string{"Range": "bytes=-10"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, big[len(big)-10:]) {
		t.Fatalf("suffix Range = %d %x", resp.StatusCode, body)
	}
	resp, body = get(t, "HEAD", base+"/big.bin", nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(big)) {
		t.Fatalf("HEAD = %d, %d bytes, Content-Length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
}

// TestRangeNotFetched reads the end of a file the gateway's node does not
// have: the fetch starts there, and the bytes are the source's.
func TestRangeNotFetched(t *testing.T) {
	a, b := startNode(t), startNode(t)
	data := randomBytes(8<<20+777, 3)
	p := filepath.Join(t.TempDir(), "video.bin")
	writeFile(t, p, data)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sh, err := a.Share(ctx, p, node.ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, gateway.Config{Node: b, Loopback: true, Fetch: true})
	u := srv.URL + "/ipfs/" + sh.Root.String()
	from := len(data) - 300<<10
	resp, body := get(t, "GET", u, map[string]string{"Range": fmt.Sprintf("bytes=%d-", from)})
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("Range near the end = %d %q", resp.StatusCode, body)
	}
	if !bytes.Equal(body, data[from:]) {
		t.Fatalf("Range near the end: %d bytes, sha256 %x; want %d, %x", len(body), sha256.Sum256(body), len(data)-from, sha256.Sum256(data[from:]))
	}
	if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", from, len(data)-1, len(data)) {
		t.Errorf("Content-Range = %q", cr)
	}
	// And the whole file, still from the swarm.
	resp, body = get(t, "GET", u, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET = %d, %d bytes, want 200 and the source's %d", resp.StatusCode, len(body), len(data))
	}
}

func TestListing(t *testing.T) {
	a := startNode(t)
	f := shareFolder(t, a)
	srv := serve(t, gateway.Config{Node: a, Loopback: true})
	base := srv.URL + "/ipfs/" + f.root.String()

	resp, _ := get(t, "GET", base, nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ipfs/"+f.root.String()+"/" {
		t.Fatalf("GET folder without slash = %d to %q, want 301 to the slash", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := get(t, "GET", base+"/", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("listing = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	if strings.Contains(page, "<b>&odd") {
		t.Fatalf("the listing holds a name unescaped:\n%s", page)
	}
	if !strings.Contains(page, "&lt;b&gt;&amp;odd name?#.txt") {
		t.Fatalf("the listing lacks the escaped name:\n%s", page)
	}
	// Every link of the listing works, relative to the folder's URL.
	u, _ := url.Parse(base + "/")
	for name, data := range f.files {
		first, _, isDir := strings.Cut(name, "/")
		href := url.PathEscape(first)
		if isDir {
			href += "/"
		}
		if !strings.Contains(page, `href="`+template.HTMLEscapeString(href)+`"`) {
			t.Errorf("no link %q for %q in the listing:\n%s", href, name, page)
			continue
		}
		if isDir {
			continue
		}
		ref, _ := url.Parse(href)
		resp, got := get(t, "GET", u.ResolveReference(ref).String(), nil)
		if resp.StatusCode != 200 || !bytes.Equal(got, data) {
			t.Errorf("the link of %q: %d, %d bytes", name, resp.StatusCode, len(got))
		}
	}
	resp, body = get(t, "GET", base+"/sub/", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `href="page.html"`) || !strings.Contains(string(body), `href="../"`) {
		t.Fatalf("sub listing = %d:\n%s", resp.StatusCode, body)
	}
}

func TestIndexHTML(t *testing.T) {
	a := startNode(t)
	dir := filepath.Join(t.TempDir(), "www")
	index := []byte("<html><body>home</body></html>")
	writeFile(t, filepath.Join(dir, "index.html"), index)
	writeFile(t, filepath.Join(dir, "other.txt"), []byte("other"))
	sh, err := a.Share(context.Background(), dir, node.ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, gateway.Config{Node: a, Loopback: true})
	resp, body := get(t, "GET", srv.URL+"/ipfs/"+sh.Root.String()+"/", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, index) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("folder with index.html = %d %q %s", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

func TestRaw(t *testing.T) {
	a := startNode(t)
	f := shareFolder(t, a)
	srv := serve(t, gateway.Config{Node: a, Loopback: true})
	base := srv.URL + "/ipfs/" + f.root.String()
	for _, tc := range []struct {
		name, query string
		hdr         map[string]string
	}{
		{"format", "?format=raw", nil},
		{"accept", "", map[string]string{"Accept": "application/vnd.ipld.raw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A file of one chunk is a raw leaf: its block is its bytes.
			resp, body := get(t, "GET", base+"/hello.txt"+tc.query, tc.hdr)
			if resp.StatusCode != 200 || !bytes.Equal(body, f.files["hello.txt"]) {
				t.Fatalf("raw hello.txt = %d %q", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.ipld.raw" {
				t.Errorf("Content-Type = %q", ct)
			}
			// The root: a dag-pb block whose hash is the root.
			resp, body = get(t, "GET", base+"/"+tc.query, tc.hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("raw root = %d %q", resp.StatusCode, body)
			}
			mh, _ := multihash.Sum(body, multihash.SHA2_256, -1)
			if got := cid.NewCidV1(cid.DagProtobuf, mh); !got.Equals(f.root) {
				t.Fatalf("raw root block hashes to %s, want %s", got, f.root)
			}
			if _, err := unixfs.Decode(f.root, body); err != nil {
				t.Fatalf("raw root block: %v", err)
			}
		})
	}
}

func TestCAR(t *testing.T) {
	a := startNode(t)
	f := shareFolder(t, a)
	srv := serve(t, gateway.Config{Node: a, Loopback: true})
	for _, tc := range []struct {
		name, query string
		hdr         map[string]string
	}{
		{"format", "?format=car", nil},
		{"accept", "", map[string]string{"Accept": "application/vnd.ipld.car; version=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, "GET", srv.URL+"/ipfs/"+f.root.String()+tc.query, tc.hdr)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.ipld.car") {
				t.Fatalf("CAR = %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body[:min(len(body), 200)])
			}
			blocks := map[cid.Cid][]byte{}
			res, err := carfile.Import(context.Background(), bytes.NewReader(body), func(b unixfs.Block) error {
				blocks[b.CID] = b.Data
				return nil
			})
			if err != nil {
				t.Fatalf("import the CAR: %v", err)
			}
			if len(res.Roots) != 1 || !res.Roots[0].Equals(f.root) {
				t.Fatalf("CAR roots %v, want %s", res.Roots, f.root)
			}
			// Each block is the node's; each file's chunks are its bytes.
			m, err := a.Inspect(context.Background(), node.Target{Root: f.root}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Files) != len(f.files) {
				t.Fatalf("the DAG has %d files, want %d", len(m.Files), len(f.files))
			}
			for _, mf := range m.Files {
				data := f.files[mf.Path]
				for _, ch := range mf.Chunks {
					got, ok := blocks[ch.CID]
					if !ok {
						t.Fatalf("%s: chunk %s at %d is not in the CAR", mf.Path, ch.CID, ch.Offset)
					}
					if !bytes.Equal(got, data[ch.Offset:ch.Offset+int64(ch.Size)]) {
						t.Fatalf("%s: chunk at %d differs", mf.Path, ch.Offset)
					}
				}
			}
			for c, data := range blocks {
				want, err := a.Block(context.Background(), node.Target{Root: f.root}, c)
				if err != nil || !bytes.Equal(want, data) {
					t.Fatalf("block %s of the CAR: the node's is %d bytes, %v", c, len(want), err)
				}
			}
		})
	}
}

// TestBadInput sends each bad input of issue 19 and more: each gets its
// status code and a message, and the gateway goes on serving.
func TestBadInput(t *testing.T) {
	a := startNode(t)
	f := shareFolder(t, a)
	srv := serve(t, gateway.Config{Node: a, Loopback: true})
	root := f.root.String()
	mh, _ := multihash.Sum([]byte("a dag-cbor block"), multihash.SHA2_256, -1)
	cbor := cid.NewCidV1(cid.DagCBOR, mh)
	size := len(f.files["big.bin"])
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		want               int
	}{
		{"dotdot", "GET", "/ipfs/" + root + "/sub/../hello.txt", nil, 400},
		{"dotdot escaped", "GET", "/ipfs/" + root + "/sub/%2e%2e/hello.txt", nil, 400},
		{"dot", "GET", "/ipfs/" + root + "/./hello.txt", nil, 400},
		{"NUL", "GET", "/ipfs/" + root + "/hello.txt%00.png", nil, 400},
		{"not a CID", "GET", "/ipfs/not-a-cid/hello.txt", nil, 400},
		{"not UnixFS", "GET", "/ipfs/" + cbor.String(), nil, 400},
		{"unknown format", "GET", "/ipfs/" + root + "/hello.txt?format=tar", nil, 400},
		{"no such entry", "GET", "/ipfs/" + root + "/nope.txt", nil, 404},
		{"below a file", "GET", "/ipfs/" + root + "/hello.txt/more", nil, 404},
		{"not /ipfs/", "GET", "/ipns/example.org", nil, 404},
		{"range past the end", "GET", "/ipfs/" + root + "/big.bin", map[string]string{"Range": fmt.Sprintf("bytes=%d-", size+10)}, 416},
		{"range inverted", "GET", "/ipfs/" + root + "/big.bin", map[string]string{"Range": "bytes=500-100"}, 416},
		{"Host evil.example", "GET", "/ipfs/" + root + "/hello.txt", map[string]string{"Host": "evil.example"}, 403},
		{"Host evil.example with port", "GET", "/ipfs/" + root + "/hello.txt", map[string]string{"Host": "evil.example:8080"}, 403},
		{"Host in brackets but not IPv6", "GET", "/ipfs/" + root + "/hello.txt", map[string]string{"Host": "[localhost]:8080"}, 403},
		{"Host IPv6 without brackets", "GET", "/ipfs/" + root + "/hello.txt", map[string]string{"Host": "::1"}, 403},
		{"Host with a port that is not a number", "GET", "/ipfs/" + root + "/hello.txt", map[string]string{"Host": "localhost:http"}, 403},
		{"POST", "POST", "/ipfs/" + root + "/hello.txt", nil, 405},
		{"DELETE", "DELETE", "/ipfs/" + root, nil, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.method, srv.URL+tc.path, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s = %d %q, want %d", tc.method, tc.path, resp.StatusCode, body, tc.want)
			}
			if tc.want != 416 && !strings.Contains(string(body), "gateway: ") {
				t.Errorf("the answer does not say what is wrong: %q", body)
			}
			t.Logf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		})
	}
	// Loopback names pass.
	for _, host := range []string{"localhost", "127.0.0.1", "[::1]:8080", "LOCALHOST:1"} {
		resp, _ := get(t, "GET", srv.URL+"/ipfs/"+root+"/hello.txt", map[string]string{"Host": host})
		if resp.StatusCode != 200 {
			t.Errorf("Host %q = %d, want 200", host, resp.StatusCode)
		}
	}
}

// twoNodes starts a, which shares the test folder f, and b, connected to
// a, which has nothing.
func twoNodes(t *testing.T) (a, b *node.Node, f folder) {
	t.Helper()
	a, b = startNode(t), startNode(t)
	f = shareFolder(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	return a, b, f
}

// TestSharedOnly: without Fetch, a root this node does not share is
// refused before anything is fetched; a non-loopback gateway takes any
// Host.
func TestSharedOnly(t *testing.T) {
	a, b, f := twoNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := serve(t, gateway.Config{Node: b})
	resp, body := get(t, "GET", srv.URL+"/ipfs/"+f.root.String()+"/hello.txt", map[string]string{"Host": "gw.example"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "--gateway-fetch") {
		t.Fatalf("a root not shared = %d %q, want 403 naming --gateway-fetch", resp.StatusCode, body)
	}
	if _, err := b.Describe(ctx, node.Target{Root: f.root}, nil); err != nil {
		t.Fatal(err)
	}
	// Now b has the DAG's nodes, but still does not share it.
	resp, _ = get(t, "GET", srv.URL+"/ipfs/"+f.root.String()+"/hello.txt", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a root known but not shared = %d, want 403", resp.StatusCode)
	}
	srv = serve(t, gateway.Config{Node: a})
	resp, body = get(t, "GET", srv.URL+"/ipfs/"+f.root.String()+"/hello.txt", map[string]string{"Host": "gw.example"})
	if resp.StatusCode != 200 || !bytes.Equal(body, f.files["hello.txt"]) {
		t.Fatalf("a shared root on a public gateway = %d %q", resp.StatusCode, body)
	}
}

// TestNobodyHasIt: a root no peer has gets 504 once the gateway's timeout
// passes (shorter than the node's FindTimeout), not a hang.
func TestNobodyHasIt(t *testing.T) {
	a := startNode(t)
	srv := serve(t, gateway.Config{Node: a, Loopback: true, Fetch: true, Timeout: 3 * time.Second})
	mh, _ := multihash.Sum([]byte("a root nobody has"), multihash.SHA2_256, -1)
	c := cid.NewCidV1(cid.DagProtobuf, mh)
	for _, q := range []string{"", "?format=raw", "?format=car"} {
		resp, body := get(t, "GET", srv.URL+"/ipfs/"+c.String()+q, nil)
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("a root nobody has%s = %d %q, want 504 (not found within the timeout)", q, resp.StatusCode, body)
		}
		t.Logf("%s: %d %s", q, resp.StatusCode, strings.TrimSpace(string(body)))
	}
}

// TestFetchPath reads files below a folder root that the gateway's node
// does not have: a file of one chunk, and one of many read with a Range.
func TestFetchPath(t *testing.T) {
	_, b, f := twoNodes(t)
	srv := serve(t, gateway.Config{Node: b, Loopback: true, Fetch: true, Timeout: 20 * time.Second})
	base := srv.URL + "/ipfs/" + f.root.String()
	big := f.files["big.bin"]
	resp, body := get(t, "GET", base+"/big.bin", map[string]string{"Range": "bytes=3000000-"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, big[3000000:]) {
		t.Fatalf("Range of big.bin = %d, %d bytes %q", resp.StatusCode, len(body), body[:min(len(body), 300)])
	}
	resp, body = get(t, "GET", base+"/hello.txt", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, f.files["hello.txt"]) {
		t.Fatalf("hello.txt = %d %q", resp.StatusCode, body)
	}
}

// TestBlocksNotHere: the swarm gives chunks only in a fetch of their file,
// so ?format=raw of a chunk the node lacks is a 502 at once, and a CAR
// whose chunks are not here is cut, never ended as if whole.
func TestBlocksNotHere(t *testing.T) {
	_, b, f := twoNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := serve(t, gateway.Config{Node: b, Loopback: true, Fetch: true, Timeout: 20 * time.Second})
	base := srv.URL + "/ipfs/" + f.root.String()
	start := time.Now()
	resp, body := get(t, "GET", base+"/hello.txt?format=raw", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "fetch its file first") {
		t.Fatalf("raw chunk not here = %d %q, want 502 saying what to do", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("raw chunk not here took %v: it waited for the timeout", d)
	}
	// The root's node comes from a: a raw block of it is served.
	if resp, _ := get(t, "GET", base+"/?format=raw", nil); resp.StatusCode != 200 {
		t.Fatalf("raw root = %d", resp.StatusCode)
	}
	req, err := http.NewRequest("GET", base+"?format=car", nil)
	if err != nil {
		t.Fatal(err)
	}
	cresp, err := http.DefaultClient.Do(req)
	if err != nil {
		// Cut before the first bytes left the server's buffer.
		t.Logf("CAR cut short: %v", err)
		return
	}
	defer cresp.Body.Close()
	_, err = carfile.Import(ctx, cresp.Body, func(unixfs.Block) error { return nil })
	if err == nil {
		t.Fatal("a CAR of chunks the node lacks imported as whole")
	}
	t.Logf("CAR cut short: %v", err)
}

// writeSizes records the size of each Write of a response body.
type writeSizes struct {
	*httptest.ResponseRecorder
	sizes []int
}

func (w *writeSizes) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.ResponseRecorder.Write(p)
}

// TestFileWholeChunkWrites: a file's body, whole or a range of it, goes to
// the connection in one write per verified chunk (what the range wants of
// it), from the reader's own buffer: not net/http's copy through a 32 KiB
// buffer, a read and a write syscall every 32 KiB. A multi-range answer
// still comes whole.
func TestFileWholeChunkWrites(t *testing.T) {
	a := startNode(t)
	f := shareFolder(t, a)
	g, err := gateway.New(gateway.Config{Node: a, Loopback: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	big := f.files["big.bin"]
	const chunk = 256 << 10 // startNode's chunks
	for _, tt := range []struct {
		rng      string
		from, to int // the bytes wanted
	}{
		{"", 0, len(big)},
		{"bytes=1000000-1099999", 1000000, 1100000},
		{fmt.Sprintf("bytes=%d-", len(big)-10), len(big) - 10, len(big)},
	} {
		req := httptest.NewRequest("GET", "http://127.0.0.1/ipfs/"+f.root.String()+"/big.bin", nil)
		if tt.rng != "" {
			req.Header.Set("Range", tt.rng)
		}
		w := &writeSizes{ResponseRecorder: httptest.NewRecorder()}
		g.ServeHTTP(w, req)
		if body := w.Body.Bytes(); w.Code/100 != 2 || !bytes.Equal(body, big[tt.from:tt.to]) {
			t.Fatalf("GET %q = %d with %d bytes, want the file's bytes %d to %d", tt.rng, w.Code, len(body), tt.from, tt.to)
		}
		var want []int
		for off := tt.from; off < tt.to; {
			end := min((off/chunk+1)*chunk, tt.to)
			want = append(want, end-off)
			off = end
		}
		if !slices.Equal(w.sizes, want) {
			t.Errorf("GET %q: writes of %v bytes, want one per chunk: %v", tt.rng, w.sizes, want)
		}
	}
	resp, body := get(t, "GET", serve(t, gateway.Config{Node: a, Loopback: true}).URL+"/ipfs/"+f.root.String()+"/big.bin",
		map[string]string{"Range": "bytes=0-9,1000000-1000009"})
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(ct, "multipart/byteranges") ||
		!bytes.Contains(body, big[:10]) || !bytes.Contains(body, big[1000000:1000010]) {
		t.Fatalf("two ranges = %d %q with %d bytes, want 206 multipart/byteranges holding both", resp.StatusCode, ct, len(body))
	}
}
