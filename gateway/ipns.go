package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/peer-project/peer/node"
)

// nameMaxAge is the Cache-Control of what a name points at: a name moves,
// so a cache asks again within a minute (the TTL the node's records carry).
const nameMaxAge = "public, max-age=60"

// serveName serves /ipns/NAME[/path]: it resolves NAME (connected peers,
// then the DHT) and serves /ipfs/ROOT[/path] of the root it points at now,
// with a short Cache-Control instead of an immutable one.
func (g *Gateway) serveName(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/ipns/")
	head, tail, _ := strings.Cut(rest, "/")
	if strings.Contains(head, ".") {
		http.Error(w, fmt.Sprintf("gateway: %q looks like a DNSLink domain, which this gateway does not resolve: the URL is /ipns/k51…[/path]", head), http.StatusNotFound)
		return
	}
	name, err := node.ParseName(head)
	if err != nil {
		http.Error(w, fmt.Sprintf("gateway: %v; the URL is /ipns/NAME[/path]", err), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	rec, err := g.cfg.Node.Resolve(ctx, name)
	cancel()
	if err != nil {
		status := http.StatusNotFound
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		http.Error(w, "gateway: "+err.Error(), status)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/ipfs/" + rec.Root.String()
	if tail != "" || strings.HasSuffix(rest, "/") {
		r2.URL.Path += "/" + tail
	}
	r2.URL.RawPath = ""
	w.Header().Set("X-Ipns-Path", name+"/"+tail)
	g.ServeHTTP(&nameWriter{ResponseWriter: w}, r2)
}

// nameWriter replaces the immutable Cache-Control of /ipfs/ with
// nameMaxAge.
type nameWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *nameWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if w.Header().Get("Cache-Control") == immutable {
			w.Header().Set("Cache-Control", nameMaxAge)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *nameWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer below.
func (w *nameWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
