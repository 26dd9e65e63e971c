package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/carfile"
	"github.com/peer-project/peer/internal/loopback"
	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/unixfs"
)

// Config configures a gateway.
type Config struct {
	// Node is the node whose content is served; required.
	Node *node.Node
	// Loopback refuses requests whose Host header is not a loopback name
	// (localhost, 127.0.0.1, ::1): set it for a gateway on a loopback
	// address, against DNS rebinding.
	Loopback bool
	// Fetch serves roots this node does not share, fetched from the swarm;
	// false serves only this node's shares.
	Fetch bool
	// Timeout bounds how long a request waits for the DAG of what it names
	// (not the transfer of a file's bytes); zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives the gateway's logs; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 2 * time.Minute

// ErrConfig is wrapped by New's errors.
var ErrConfig = errors.New("gateway: bad configuration")

// Gateway is the http.Handler. Make one with New; it is safe for
// concurrent use and holds no goroutine of its own: each request's work
// ends with the request.
type Gateway struct {
	cfg Config
}

// New returns a gateway on cfg.Node.
func New(cfg Config) (*Gateway, error) {
	if cfg.Node == nil {
		return nil, fmt.Errorf("%w: no node", ErrConfig)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative timeout %v", ErrConfig, cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Gateway{cfg: cfg}, nil
}

// The media types of the trustless gateway.
const (
	typeRaw = "application/vnd.ipld.raw"
	typeCAR = "application/vnd.ipld.car"
)

// request is one parsed request.
type request struct {
	target node.Target
	elems  []string // the path's names
	format string   // "", "raw" or "car"
	slash  bool     // the URL path ends in "/"
	// filename (?filename=) names a file answer: its type comes from the
	// name's extension, and Content-Disposition carries it (attachment
	// with ?download=true, else inline), as the path gateway spec says.
	filename string
	download bool
}

// ServeHTTP serves GET and HEAD of /ipfs/ROOT[/path] and /ipns/NAME[/path].
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Loopback && !loopback.Host(r.Host) {
		http.Error(w, fmt.Sprintf("gateway: Host %q is not a loopback name: this gateway answers only to localhost, 127.0.0.1 and [::1]", r.Host), http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "gateway: read-only: only GET and HEAD are served", http.StatusMethodNotAllowed)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/ipns/") {
		g.serveName(w, r)
		return
	}
	req, status, err := parse(r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	if !g.cfg.Fetch {
		shared, err := g.shared(req.target.Root)
		if err != nil {
			http.Error(w, "gateway: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if !shared {
			http.Error(w, fmt.Sprintf("gateway: %s is not shared by this node, and this gateway serves only what it shares (the daemon's --gateway-fetch serves any root)", req.target.Root), http.StatusForbidden)
			return
		}
	}
	g.serve(w, r, req)
}

// shared reports whether this node shares root.
func (g *Gateway) shared(root cid.Cid) (bool, error) {
	shares, err := g.cfg.Node.Shares()
	if err != nil {
		return false, err
	}
	for _, s := range shares {
		if s.Root.Equals(root) {
			return true, nil
		}
	}
	return false, nil
}

// parse reads the request's path, format and Accept header, refusing bad
// input with a status and what is wrong.
func parse(r *http.Request) (request, int, error) {
	p := r.URL.Path
	rest, ok := strings.CutPrefix(p, "/ipfs/")
	if !ok {
		return request{}, http.StatusNotFound, fmt.Errorf("gateway: %q: this gateway serves /ipfs/ROOT[/path] and /ipns/NAME[/path] only", p)
	}
	if strings.ContainsRune(rest, 0) {
		return request{}, http.StatusBadRequest, errors.New("gateway: the path holds a NUL byte")
	}
	var req request
	req.slash = strings.HasSuffix(rest, "/")
	head, tail, _ := strings.Cut(rest, "/")
	c, err := cid.Decode(head)
	if err != nil {
		return request{}, http.StatusBadRequest, fmt.Errorf("gateway: %q is not a CID: %v; the URL is /ipfs/ROOT[/path]", head, err)
	}
	t, err := node.ParseTarget(c.String())
	if err != nil {
		return request{}, http.StatusBadRequest, fmt.Errorf("gateway: %w", err)
	}
	for el := range strings.SplitSeq(tail, "/") {
		if el == "" {
			continue // a trailing slash, or doubled ones
		}
		if err := unixfs.ValidName(el); err != nil {
			return request{}, http.StatusBadRequest, fmt.Errorf("gateway: path %q: %w", tail, err)
		}
		req.elems = append(req.elems, el)
	}
	t.Path = strings.Join(req.elems, "/")
	req.target = t
	if fn := r.URL.Query().Get("filename"); fn != "" {
		if err := unixfs.ValidName(fn); err != nil {
			return request{}, http.StatusBadRequest, fmt.Errorf("gateway: ?filename: %w; it is the one name the file is shown or saved as, e.g. ?filename=report.pdf", err)
		}
		req.filename = fn
	}
	req.download = r.URL.Query().Get("download") == "true"
	switch f := r.URL.Query().Get("format"); f {
	case "raw", "car":
		req.format = f
	case "":
		req.format = formatOfAccept(r.Header.Get("Accept"))
	default:
		return request{}, http.StatusBadRequest, fmt.Errorf("gateway: format %q: this gateway gives raw or car (or, without format, the file or folder)", f)
	}
	return req, 0, nil
}

// formatOfAccept returns the trustless format an Accept header asks for
// first, or "".
func formatOfAccept(accept string) string {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case typeRaw:
			return "raw"
		case typeCAR:
			return "car"
		}
	}
	return ""
}

// status maps an error of the node to an HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, node.ErrNotFound), errors.Is(err, unixfs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, node.ErrNoProviders), errors.Is(err, node.ErrStalled), errors.Is(err, node.ErrBadDAG),
		errors.Is(err, node.ErrTooLarge), errors.Is(err, unixfs.ErrBadNode), errors.Is(err, unixfs.ErrLimit):
		return http.StatusBadGateway
	case errors.Is(err, node.ErrClosed), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

// fail answers with err's status and message.
func fail(w http.ResponseWriter, err error) {
	http.Error(w, "gateway: "+err.Error(), status(err))
}

// failBlock answers a block that could not be read: a chunk this node
// does not hold is a 502 (the path named it, so it exists), not a 404.
func failBlock(w http.ResponseWriter, c cid.Cid, err error) {
	if c.Prefix().Codec == cid.Raw && errors.Is(err, node.ErrNotFound) {
		http.Error(w, "gateway: "+err.Error(), http.StatusBadGateway)
		return
	}
	fail(w, err)
}

// blocks reads the blocks of target's DAG through the node.
func (g *Gateway) blocks(target node.Target) unixfs.Getter {
	return unixfs.GetterFunc(func(ctx context.Context, c cid.Cid) ([]byte, error) {
		return g.cfg.Node.Block(ctx, target, c)
	})
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, req request) {
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	defer cancel()
	// Resolve the path name by name: X-Ipfs-Roots names the CID that each
	// segment of the path resolves to, root first, as boxo's gateway does
	// (a cache can keep what did not change below a changed root).
	walker := unixfs.NewWalker(g.blocks(req.target), unixfs.DefaultLimits())
	roots := []string{req.target.Root.String()}
	cur := unixfs.Link{CID: req.target.Root}
	for i, el := range req.elems {
		if cur.CID.Prefix().Codec == cid.Raw {
			// A raw leaf is a file: nothing is below it (and its bytes
			// are not read to find that out).
			http.Error(w, fmt.Sprintf("gateway: /ipfs/%s/%s is a file, not a folder: nothing is below it", req.target.Root, strings.Join(req.elems[:i], "/")), http.StatusNotFound)
			return
		}
		l, err := walker.Resolve(ctx, cur.CID, []string{el})
		if err != nil {
			if nd, nerr := walker.Node(ctx, cur.CID); nerr == nil && nd.Kind != unixfs.KindDir && nd.Kind != unixfs.KindHAMT {
				// A name below a file: nothing there.
				http.Error(w, fmt.Sprintf("gateway: /ipfs/%s/%s is a %s, not a folder: nothing is below it", req.target.Root, strings.Join(req.elems[:i], "/"), nd.Kind), http.StatusNotFound)
				return
			}
			fail(w, fmt.Errorf("/ipfs/%s/%s: %w", req.target.Root, strings.Join(req.elems[:i+1], "/"), err))
			return
		}
		cur = l
		roots = append(roots, cur.CID.String())
	}
	h := w.Header()
	h.Set("X-Ipfs-Path", contentPath(req))
	h.Set("X-Ipfs-Roots", strings.Join(roots, ","))
	switch req.format {
	case "raw":
		g.serveRaw(w, r, ctx, req, cur.CID)
		return
	case "car":
		g.serveCAR(w, r, req, cur.CID)
		return
	}
	if cur.CID.Prefix().Codec == cid.Raw {
		// A file of one chunk. Its bytes come through node.Open, which
		// fetches chunks: the swarm gives interior nodes one by one, not
		// chunks, so the leaf is not read here to learn its kind.
		g.serveFile(w, r, req, cur.CID, path.Base("/"+req.target.Path))
		return
	}
	nd, err := walker.Node(ctx, cur.CID)
	if err != nil {
		fail(w, fmt.Errorf("%s: %w", contentPath(req), err))
		return
	}
	switch nd.Kind {
	case unixfs.KindDir, unixfs.KindHAMT:
		g.serveDir(w, r, ctx, req, walker, cur.CID)
	case unixfs.KindFile, unixfs.KindRaw:
		g.serveFile(w, r, req, cur.CID, path.Base("/"+req.target.Path))
	default:
		http.Error(w, fmt.Sprintf("gateway: %s is a %s, which this gateway does not serve (ask ?format=raw for its block)", contentPath(req), nd.Kind), http.StatusNotImplemented)
	}
}

// contentPath is the request's /ipfs/ path, cleaned.
func contentPath(req request) string {
	p := "/ipfs/" + req.target.Root.String()
	if req.target.Path != "" {
		p += "/" + req.target.Path
	}
	return p
}

// immutable is the Cache-Control of everything under /ipfs/.
const immutable = "public, max-age=29030400, immutable"

func (g *Gateway) serveFile(w http.ResponseWriter, r *http.Request, req request, c cid.Cid, name string) {
	h := w.Header()
	h.Set("Etag", `"`+c.String()+`"`)
	h.Set("Cache-Control", immutable)
	h.Set("Accept-Ranges", "bytes")
	// A revalidation needs no reader, and so no fetch.
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, h.Get("Etag")) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if req.filename != "" {
		name = req.filename
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" && (req.target.Path != "" || req.filename != "") {
		h.Set("Content-Type", t)
	}
	// The reader lives as long as the request: the fetch it drives (for a
	// root not here) stops when the last reader closes.
	rd, err := g.cfg.Node.Open(r.Context(), req.target, node.FetchOptions{})
	if err != nil {
		h.Del("Etag")
		h.Del("Cache-Control")
		fail(w, err)
		return
	}
	defer rd.Close()
	if h.Get("Content-Type") == "" && !rd.Here(0) && !sendsStart(r, h.Get("Etag"), rd.Size()) {
		// Sniffing reads the first chunk: on a root not here, a Range
		// past it would wait for that chunk's fetch before its own bytes.
		// The type is unknown until then: said as such, as RFC 9110
		// (8.3) has it. A browser's first request of a file reads from
		// its start (no Range, or bytes=0-), and is sniffed; a range that
		// starts past it comes from a seek or a resumed download, which
		// has the type from that first answer or reads the bytes' own.
		// Not kept by caches: the same URL is sniffed once the first
		// chunk is here, and an immutable answer would say
		// octet-stream for a year.
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Cache-Control", "no-store")
	}
	if h.Get("Content-Type") == "" {
		// Sniff as ServeContent would, but say it in one place.
		var buf [512]byte
		n, err := io.ReadFull(rd, buf[:])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			fail(w, err)
			return
		}
		h.Set("Content-Type", http.DetectContentType(buf[:n]))
		if _, err := rd.Seek(0, io.SeekStart); err != nil {
			fail(w, err)
			return
		}
	}
	if req.filename != "" {
		// Here, not before: an error answer is not saved under the name.
		h.Set("Content-Disposition", disposition(req.filename, req.download))
	}
	// A read that fails after the status line is sent leaves the body
	// short of its Content-Length: net/http then closes the connection, and
	// the client sees a cut transfer, not a short file.
	http.ServeContent(chunkWrites{w, rd}, r, "", time.Time{}, rd)
}

// disposition returns the Content-Disposition of a file answer named name:
// inline (shown where the browser can), or attachment (saved) when
// download; the name as RFC 6266 has it, in ASCII (any other byte, '"',
// '\\' and '%' made '_') for old browsers and in UTF-8 (RFC 8187) for the
// others. name is a ValidName: no control character.
func disposition(name string, download bool) string {
	kind := "inline"
	if download {
		kind = "attachment"
	}
	ascii := make([]byte, 0, len(name))
	ext := make([]byte, 0, len(name))
	for _, r := range name {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' {
			ascii = append(ascii, '_')
		} else {
			ascii = append(ascii, byte(r))
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			ext = append(ext, c)
		} else {
			ext = fmt.Appendf(ext, "%%%02X", c)
		}
	}
	return fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, ascii, ext)
}

// sendsStart reports whether the answer to r may hold the file's first
// bytes, reading r as http.ServeContent does (parseRange, checkIfRange): a
// request with no Range, or whose If-Range is not etag, or whose ranges
// are none or add up to more than the file, is answered with the whole
// file; a range from byte 0 (a suffix as long as the file) holds it too. A
// Range that does not parse, or that no byte of the file satisfies, is
// answered 416, with no bytes: it does not.
func sendsStart(r *http.Request, etag string, size int64) bool {
	rng := r.Header.Get("Range")
	if rng == "" || size == 0 {
		return true // an empty file has nothing to wait for
	}
	if ir := r.Header.Get("If-Range"); ir != "" && textproto.TrimString(ir) != etag {
		return true
	}
	specs, ok := strings.CutPrefix(rng, "bytes=")
	if !ok {
		return false
	}
	var n, sum int64
	for spec := range strings.SplitSeq(specs, ",") {
		spec = textproto.TrimString(spec)
		if spec == "" {
			continue
		}
		a, b, ok := strings.Cut(spec, "-")
		if !ok {
			return false
		}
		a, b = textproto.TrimString(a), textproto.TrimString(b)
		var from, length int64
		if a == "" {
			k, err := strconv.ParseInt(b, 10, 64)
			if b == "" || b[0] == '-' || err != nil || k < 0 {
				return false
			}
			from = size - min(k, size)
			length = size - from
		} else {
			i, err := strconv.ParseInt(a, 10, 64)
			if err != nil || i < 0 {
				return false
			}
			if i >= size {
				continue // satisfies nothing: left out
			}
			from, length = i, size-i
			if b != "" {
				j, err := strconv.ParseInt(b, 10, 64)
				if err != nil || i > j {
					return false
				}
				length = min(j, size-1) - i + 1
			}
		}
		if from == 0 {
			return true
		}
		n++
		sum += length
	}
	if n == 0 {
		// None satisfiable is a 416; none at all ("bytes=") the whole file.
		for spec := range strings.SplitSeq(specs, ",") {
			if textproto.TrimString(spec) != "" {
				return false
			}
		}
		return true
	}
	return sum > size
}

// chunkWrites is the ResponseWriter that serveFile gives http.ServeContent,
// for its copy of the body. net/http copies a body through a 32 KiB buffer:
// a Read of the Reader (a copy out of its chunk) and a write on the
// connection every 32 KiB. This writes each verified chunk, or what the
// range wants of it, in one write from the Reader's own buffer.
type chunkWrites struct {
	http.ResponseWriter
	rd *node.Reader
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w chunkWrites) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom implements io.ReaderFrom, which io.CopyN in http.ServeContent
// calls with the Reader under an io.LimitedReader; any other source (the
// parts of a multi-range answer) is copied as net/http would.
func (w chunkWrites) ReadFrom(src io.Reader) (int64, error) {
	lr, ok := src.(*io.LimitedReader)
	if !ok || lr.R != io.Reader(w.rd) {
		return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	if lr.N <= 0 {
		return 0, nil
	}
	lw := &limitWriter{w: w.ResponseWriter, left: lr.N}
	n, err := w.rd.WriteTo(lw)
	lr.N -= n
	if err == errLimit {
		err = nil
	}
	return n, err
}

// errLimit ends a Reader's WriteTo once a limitWriter has written all it
// may: not an error, and said at once, so that WriteTo does not wait for
// the next chunk, which the range does not want.
var errLimit = errors.New("gateway: the range is written")

// limitWriter writes the first left bytes given to it and then errLimit.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	if err == nil && l.left == 0 {
		err = errLimit
	}
	return n, err
}

// etagMatch reports whether an If-None-Match header names etag.
func etagMatch(inm, etag string) bool {
	for t := range strings.SplitSeq(inm, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func (g *Gateway) serveRaw(w http.ResponseWriter, r *http.Request, ctx context.Context, req request, c cid.Cid) {
	data, err := g.cfg.Node.Block(ctx, req.target, c)
	if err != nil {
		failBlock(w, c, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", typeRaw)
	h.Set("Etag", `"`+c.String()+`.raw"`)
	h.Set("Cache-Control", immutable)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", `attachment; filename="`+c.String()+`.bin"`)
	h.Set("Vary", "Accept")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func (g *Gateway) serveCAR(w http.ResponseWriter, r *http.Request, req request, c cid.Cid) {
	h := w.Header()
	etag := `W/"` + c.String() + `.car"`
	h.Set("Etag", etag)
	h.Set("Cache-Control", immutable)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// The root's block first, within the timeout: a root nobody has gets
	// an error status, not an empty CAR.
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	_, err := g.cfg.Node.Block(ctx, req.target, c)
	cancel()
	if err != nil {
		h.Del("Etag")
		h.Del("Cache-Control")
		failBlock(w, c, err)
		return
	}
	h.Set("Content-Type", typeCAR+"; version=1")
	h.Set("Content-Disposition", `attachment; filename="`+c.String()+`.car"`)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	if _, err := carfile.Export(r.Context(), g.blocks(req.target), c, w); err != nil {
		// The status line is sent: cut the connection so the client
		// knows the CAR is not whole.
		g.cfg.Logger.Warn("gateway: CAR cut short", "root", c, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// entry is one row of a folder listing.
type entry struct {
	Name, Href, CID string
	Size            uint64
	Dir             bool
}

var listing = template.Must(template.New("dir").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Path}}</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:.2em 1em}td.cid{font-family:monospace;color:#666}</style></head>
<body><h1>Index of {{.Path}}</h1>
<p class="cid">{{.CID}}</p>
<table>
{{if .Up}}<tr><td><a href="../">..</a></td><td></td><td></td></tr>{{end}}
{{range .Entries}}<tr><td><a href="{{.Href}}">{{.Name}}{{if .Dir}}/{{end}}</a></td><td>{{.Size}}</td><td class="cid">{{.CID}}</td></tr>
{{end}}</table></body></html>
`))

func (g *Gateway) serveDir(w http.ResponseWriter, r *http.Request, ctx context.Context, req request, walker *unixfs.Walker, c cid.Cid) {
	if !req.slash {
		// Relative links need the folder's URL to end in a slash.
		u := *r.URL
		u.Path += "/"
		u.RawPath = ""
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
		return
	}
	var entries []entry
	var index *unixfs.Link
	err := walker.List(ctx, c, func(name string, l unixfs.Link) error {
		if name == "index.html" {
			index = &l
		}
		if len(entries) >= maxListing {
			return nil
		}
		entries = append(entries, entry{Name: name, Href: url.PathEscape(name), CID: l.CID.String(), Size: l.Size})
		return nil
	})
	if err != nil {
		fail(w, fmt.Errorf("%s: %w", contentPath(req), err))
		return
	}
	if index != nil {
		t := req.target
		t.Path = path.Join(t.Path, "index.html")
		g.serveFile(w, r, request{target: t, elems: append(req.elems, "index.html")}, index.CID, "index.html")
		return
	}
	// Which entries are folders: one node each, read within the timeout.
	for i := range entries {
		e := &entries[i]
		ec, _ := cid.Decode(e.CID)
		if ec.Prefix().Codec != cid.DagProtobuf {
			continue
		}
		nd, err := walker.Node(ctx, ec)
		if err != nil {
			fail(w, fmt.Errorf("%s/%s: %w", contentPath(req), e.Name, err))
			return
		}
		if nd.Kind == unixfs.KindDir || nd.Kind == unixfs.KindHAMT {
			e.Dir = true
			e.Href += "/"
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", immutable)
	h.Set("Etag", `"DirIndex-`+c.String()+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, h.Get("Etag")) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	err = listing.Execute(w, map[string]any{
		"Path": contentPath(req) + "/", "CID": c.String(), "Up": len(req.elems) > 0, "Entries": entries,
	})
	if err != nil {
		g.cfg.Logger.Debug("gateway: listing cut short", "err", err)
	}
}

// maxListing is the most entries a listing shows: a folder of a million
// names is a page nobody reads, and the walk's limits bound it anyway.
const maxListing = 10000
