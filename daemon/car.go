package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/peer-project/peer/node"
)

// ExportRequest asks for a CAR of a target's DAG.
type ExportRequest struct {
	Target string   `json:"target"` // ROOT, TICKET or ROOT/path
	Peers  []string `json:"peers,omitempty"`
}

// ImportRequest asks to import a CAR file.
type ImportRequest struct {
	Path string `json:"path"` // absolute
}

// ImportInfo is what an import shared.
type ImportInfo struct {
	Roots   []string `json:"roots"`
	Tickets []string `json:"tickets"`
	Blocks  int64    `json:"blocks"`
	Bytes   int64    `json:"bytes"`
	// Leaves is the file of the home that holds the imported leaves.
	Leaves string `json:"leaves"`
}

// Export implements API: it writes a CARv1 of the target's whole DAG to w
// through node.Export, which first fetches what the node lacks.
func (l *Local) Export(ctx context.Context, req ExportRequest, w io.Writer) error {
	t, peers, err := parseTarget(req.Target, req.Peers)
	if err != nil {
		return err
	}
	// Find the root within the find timeout first.
	if _, err := l.describe(ctx, t, peers); err != nil {
		return err
	}
	if _, err := l.n.Export(ctx, t, w, node.ExportOptions{Peers: peers}); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return l.explain(t, err)
	}
	return nil
}

// Import implements API.
func (l *Local) Import(ctx context.Context, req ImportRequest) (ImportInfo, error) {
	if !filepath.IsAbs(req.Path) {
		return ImportInfo{}, errorf(ErrBadRequest, "import: %q is not an absolute path", req.Path)
	}
	f, err := os.Open(req.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ImportInfo{}, errorf(ErrNotFound, "import: %s does not exist", req.Path)
		}
		return ImportInfo{}, errorf(ErrBadRequest, "import: %v", err)
	}
	defer f.Close()
	res, err := l.n.Import(ctx, f)
	if errors.Is(err, node.ErrBadCAR) {
		return ImportInfo{}, errorf(ErrBadRequest, "%s: %v", req.Path, err)
	}
	if err != nil {
		return ImportInfo{}, err
	}
	out := ImportInfo{Roots: []string{}, Tickets: []string{}, Blocks: res.Blocks, Bytes: res.Bytes, Leaves: res.Path}
	for _, r := range res.Roots {
		out.Roots = append(out.Roots, r.String())
		out.Tickets = append(out.Tickets, l.n.Ticket(r))
	}
	return out, nil
}

// carRoutes adds /v1/export and /v1/import to mux.
func (d *Daemon) carRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/export", d.handleExport)
	mux.HandleFunc("POST /v1/import", d.jsonHandler(func(r *http.Request) (any, error) {
		var req ImportRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return d.local.Import(r.Context(), req)
	}))
}

// handleExport streams a CAR. An error before the first byte is a JSON
// error; after it, the connection is cut so the client sees a short body.
func (d *Daemon) handleExport(w http.ResponseWriter, r *http.Request) {
	var req ExportRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	sw := &startWriter{w: w}
	if err := d.local.Export(r.Context(), req, sw); err != nil {
		if !sw.started {
			writeError(w, err)
			return
		}
		d.log.Warn("exporting a CAR", "target", req.Target, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// Export implements API.
func (c *Client) Export(ctx context.Context, req ExportRequest, w io.Writer) error {
	return c.stream(ctx, "/v1/export", req, w, "the CAR's stream")
}

// Import implements API.
func (c *Client) Import(ctx context.Context, req ImportRequest) (out ImportInfo, err error) {
	return out, c.call(ctx, "POST", "/v1/import", req, &out)
}
