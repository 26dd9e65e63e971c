package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/gateway"
	"github.com/peer-project/peer/node"
)

// seamChunk is startNode's chunk size.
const seamChunk = 256 << 10

// shareFile shares size random bytes on n as one file root.
func shareFile(t *testing.T, n *node.Node, size int, seed uint64) (cid.Cid, []byte) {
	t.Helper()
	data := randomBytes(size, seed)
	p := filepath.Join(t.TempDir(), "f.bin")
	writeFile(t, p, data)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sh, err := n.Share(ctx, p, node.ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sh.Root, data
}

// fetcher starts a node connected to a, with none of a's files, behind a
// gateway that fetches: the body of its first GET of a root comes from
// Open's fetch, read back from the streams folder as it arrives.
func fetcher(t *testing.T, a *node.Node) string {
	t.Helper()
	b := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	return serve(t, gateway.Config{Node: b, Loopback: true, Fetch: true, Timeout: 30 * time.Second}).URL
}

// TestFileRangesAtSeams reads ranges that start, end or cross at the seams
// between chunks, from the node that shares the file (each chunk read and
// verified from the user's file) and from fresh nodes that fetch it (each
// chunk read back from the fetch as it arrives): every byte must be the
// file's, and nothing past the range may be sent or waited for.
func TestFileRangesAtSeams(t *testing.T) {
	a := startNode(t)
	const c = seamChunk
	size := 6*c + 777 // a short last chunk
	root, data := shareFile(t, a, size, 21)
	sharer := serve(t, gateway.Config{Node: a, Loopback: true}).URL
	type part struct{ from, to int } // bytes from to to, inclusive
	for _, tt := range []struct {
		name  string
		rng   string
		parts []part // nil: the whole file, 200
	}{
		{"whole file", "", nil},
		{"first byte", "bytes=0-0", []part{{0, 0}}},
		{"first chunk exactly", fmt.Sprintf("bytes=0-%d", c-1), []part{{0, c - 1}}},
		{"second chunk exactly", fmt.Sprintf("bytes=%d-%d", c, 2*c-1), []part{{c, 2*c - 1}}},
		{"last byte of a chunk and first of the next", fmt.Sprintf("bytes=%d-%d", 2*c-1, 2*c), []part{{2*c - 1, 2 * c}}},
		{"across two seams", fmt.Sprintf("bytes=%d-%d", c+5, 3*c+5), []part{{c + 5, 3*c + 5}}},
		{"from a seam to the end", fmt.Sprintf("bytes=%d-", 3*c), []part{{3 * c, size - 1}}},
		{"the short last chunk", fmt.Sprintf("bytes=%d-", 6*c), []part{{6 * c, size - 1}}},
		{"last byte", "bytes=-1", []part{{size - 1, size - 1}}},
		{"past the end, clamped", fmt.Sprintf("bytes=%d-%d", size-5, size+100000), []part{{size - 5, size - 1}}},
		{"two ranges at seams", fmt.Sprintf("bytes=%d-%d,%d-%d", c-1, c, 5*c-1, 5*c), []part{{c - 1, c}, {5*c - 1, 5 * c}}},
	} {
		for _, via := range []string{"sharer", "fetcher"} {
			t.Run(via+"/"+tt.name, func(t *testing.T) {
				base := sharer
				if via == "fetcher" {
					base = fetcher(t, a)
				}
				var hdr map[string]string
				if tt.rng != "" {
					hdr = map[string]string{"Range": tt.rng}
				}
				resp, body := get(t, "GET", base+"/ipfs/"+root.String(), hdr)
				switch {
				case tt.parts == nil:
					if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
						t.Fatalf("GET = %d with %d bytes, want 200 and the file's %d", resp.StatusCode, len(body), size)
					}
				case len(tt.parts) == 1:
					p := tt.parts[0]
					if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[p.from:p.to+1]) {
						t.Fatalf("Range %s = %d with %d bytes, want 206 and bytes %d-%d of the file", tt.rng, resp.StatusCode, len(body), p.from, p.to)
					}
					if cr, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", p.from, p.to, size); cr != want {
						t.Errorf("Content-Range = %q, want %q", cr, want)
					}
				default:
					_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
					if resp.StatusCode != http.StatusPartialContent || err != nil {
						t.Fatalf("Range %s = %d %q, want 206 multipart/byteranges", tt.rng, resp.StatusCode, resp.Header.Get("Content-Type"))
					}
					mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
					for _, p := range tt.parts {
						mp, err := mr.NextPart()
						if err != nil {
							t.Fatalf("part %d-%d: %v", p.from, p.to, err)
						}
						got, err := io.ReadAll(mp)
						if err != nil || !bytes.Equal(got, data[p.from:p.to+1]) {
							t.Fatalf("part %d-%d: %d bytes, %v; want the file's", p.from, p.to, len(got), err)
						}
						if cr, want := mp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", p.from, p.to, size); cr != want {
							t.Errorf("part's Content-Range = %q, want %q", cr, want)
						}
					}
					if _, err := mr.NextPart(); err != io.EOF {
						t.Errorf("after the parts asked for: %v, want the end", err)
					}
				}
			})
		}
	}
}

// TestRangePastTheEnd: a range that starts at or past the end of the file
// is refused with 416 and the file's size, from the sharer and from a node
// that would fetch it.
func TestRangePastTheEnd(t *testing.T) {
	a := startNode(t)
	size := 3*seamChunk + 10
	root, _ := shareFile(t, a, size, 22)
	sharer := serve(t, gateway.Config{Node: a, Loopback: true}).URL
	for _, rng := range []string{fmt.Sprintf("bytes=%d-", size), fmt.Sprintf("bytes=%d-%d", size+10, size+20)} {
		for _, via := range []string{"sharer", "fetcher"} {
			base := sharer
			if via == "fetcher" {
				base = fetcher(t, a)
			}
			resp, body := get(t, "GET", base+"/ipfs/"+root.String(), map[string]string{"Range": rng})
			if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
				t.Fatalf("%s: Range %s = %d with %d bytes, want 416", via, rng, resp.StatusCode, len(body))
			}
			if cr, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes */%d", size); cr != want {
				t.Errorf("%s: Range %s: Content-Range = %q, want %q", via, rng, cr, want)
			}
		}
	}
}

// TestClientHangsUp: a client that hangs up in the middle of a body ends
// the request while the file is still far from fetched (the handler does
// not go on fetching and writing for nobody), and no goroutine is left
// behind (TestMain's goleak, once the nodes are closed).
func TestClientHangsUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The sharer sends 2 MB a second: the 16 MiB would take 8 s.
	a := startNodeWith(t, func(c *node.Config) { c.UploadRate = 2e6 })
	root, data := shareFile(t, a, 16<<20, 23)
	b := startNode(t)
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Node: b, Loopback: true, Fetch: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		g.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ipfs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", root)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
		t.Fatalf("GET = %d, Content-Length %d; want 200 and %d", resp.StatusCode, resp.ContentLength, len(data))
	}
	head := make([]byte, seamChunk+1) // the first chunk and a byte of the next
	if _, err := io.ReadFull(resp.Body, head); err != nil || !bytes.Equal(head, data[:len(head)]) {
		t.Fatalf("the body's first %d bytes: %v, or not the file's", len(head), err)
	}
	conn.Close()
	select {
	case <-returned:
	case <-ctx.Done():
		t.Fatal("the handler still runs after its client hung up")
	}
	if got := b.Stats().BytesDown; got >= int64(len(data)) {
		t.Fatalf("the node had fetched %d bytes, the whole file, when the handler returned: the test proves nothing", got)
	}
}

// TestClientHangsUpWhileWaiting: a client that hangs up in the middle of
// a body while the handler waits for a chunk that is slow to come ends the
// request at once: the reader is bound to the request's context, so no
// write has to fail first (none would: nothing comes to write). The
// gateway's node has the first chunk here (a file of its own holds it),
// and the sharer sends 1000 bytes a second: the next would take minutes.
// A multi-range answer reads the file in a goroutine of net/http's while
// the handler waits on a pipe; it must end as well.
func TestClientHangsUpWhileWaiting(t *testing.T) {
	const c = seamChunk
	for _, tt := range []struct{ name, rng string }{
		{"whole file", ""},
		{"two ranges", fmt.Sprintf("bytes=0-%d,%d-%d", c-1, 2*c, 2*c+9)},
	} {
		rng := tt.rng
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a := startNodeWith(t, func(c *node.Config) { c.UploadRate = 1000 })
			root, data := shareFile(t, a, 4*c, 24)
			// A stall would end the wait too, but not within the test.
			b := startNodeWith(t, func(c *node.Config) { c.StallTimeout = 10 * time.Minute })
			shareFile(t, b, c, 24) // the same first chunk, alone
			if err := b.Connect(ctx, a.AddrInfo()); err != nil {
				t.Fatal(err)
			}
			g, err := gateway.New(gateway.Config{Node: b, Loopback: true, Fetch: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			returned := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(returned) // one request only
				g.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := fmt.Sprintf("GET /ipfs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n", root)
			if rng != "" {
				req += "Range: " + rng + "\r\n"
			}
			fmt.Fprint(conn, req+"\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body := resp.Body
			if rng != "" {
				_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
				if resp.StatusCode != http.StatusPartialContent || err != nil {
					t.Fatalf("GET = %d %q, want 206 multipart/byteranges", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				mp, err := multipart.NewReader(body, params["boundary"]).NextPart()
				if err != nil {
					t.Fatal(err)
				}
				body = mp
			} else if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET = %d, want 200", resp.StatusCode)
			}
			head := make([]byte, c)
			if _, err := io.ReadFull(body, head); err != nil || !bytes.Equal(head, data[:c]) {
				t.Fatalf("the first chunk: %v, or not the file's", err)
			}
			conn.Close()
			select {
			case <-returned:
			case <-ctx.Done():
				b.Close() // ends the wait: the server's Close waits for the handler
				t.Fatal("the handler still waits for a chunk a minute after its client hung up")
			}
			if got := b.Stats().BytesDown; got >= int64(len(data)-c) {
				t.Fatalf("the node had received %d bytes when the handler returned, all it lacked: the test proves nothing", got)
			}
		})
	}
}
