package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peer-project/peer/internal/loopback"
	"github.com/peer-project/peer/node"
)

// Options configure Start.
type Options struct {
	// Home is the node's home directory (absolute; see HomeDir).
	Home string
	// Node is the node's configuration (see Settings.NodeConfig); its
	// Home must be Home.
	Node node.Config
	// API is where the API listens: a loopback host and a port ("" means
	// 127.0.0.1:0, a random port).
	API string
	// Metrics, if set, is where Prometheus metrics are served (/metrics).
	Metrics string
	// Gateway, if set, is where the HTTP gateway listens (see
	// Settings.GatewayAddr); GatewayFetch lets a gateway that is not on
	// loopback serve roots this node does not share.
	Gateway      string
	GatewayFetch bool
	// Publish and Follow are the names the daemon publishes and follows
	// while it runs (Settings.Publish, Settings.Follow).
	Publish []PublishSetting
	Follow  []FollowSetting
	// Logger receives the daemon's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Daemon is a node serving the local API (and metrics). Make one with
// Start; stop it with Close. Its methods are safe for concurrent use.
type Daemon struct {
	home    string
	local   *Local
	log     *slog.Logger
	token   string         // made anew at each start
	key     crypto.PrivKey // the node's identity: the daemon signs the handshake with it
	apiLn   net.Listener
	api     *http.Server
	metLn   net.Listener
	met     *http.Server
	gwLn    net.Listener // the HTTP gateway (gateway.go); nil when off
	gw      *http.Server
	gwAny   bool            // the gateway serves roots this node does not share
	ui      *uiState        // the web UI (ui.go), on the API's listener
	base    context.Context // handlers' contexts derive from it; Close cancels it
	cancel  context.CancelFunc
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	closeEr error
}

// Start runs a daemon: it refuses to start if one already answers for the
// home, listens on the API (loopback only) and metrics addresses, starts the
// node, and writes the API's address to the home's api.addr. It returns a
// running daemon or an error with nothing left running. ctx bounds the
// start-up only.
func Start(ctx context.Context, opts Options) (_ *Daemon, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Home == "" || !filepath.IsAbs(opts.Home) {
		return nil, fmt.Errorf("daemon: home %q is not an absolute path", opts.Home)
	}
	if c, err := Dial(ctx, opts.Home); err == nil || errors.Is(err, ErrUnauthorized) {
		addr := ""
		if c != nil {
			addr = c.addr
		}
		return nil, fmt.Errorf("daemon: a daemon already runs for %s (API %s): stop it first, or use another --home", opts.Home, addr)
	} else if errors.Is(err, ErrImpostor) {
		// Not ours: the node's database lock stops a second daemon of
		// this home, and api.addr and the token are replaced below.
		opts.Logger.Warn("another program answers at the API address an earlier daemon left in api.addr (nothing was sent to it); starting anyway")
	}
	if err := checkNameSettings(opts.Publish, opts.Follow); err != nil {
		return nil, err
	}
	d := &Daemon{home: opts.Home, log: opts.Logger, stop: make(chan struct{})}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	apiAddr := opts.API
	if apiAddr == "" {
		apiAddr = "127.0.0.1:0"
	}
	if err := checkLoopback(apiAddr); err != nil {
		return nil, err
	}
	if d.apiLn, err = net.Listen("tcp", apiAddr); err != nil {
		return nil, fmt.Errorf("daemon: API address %s: %w", apiAddr, explainListen(err, "--api"))
	}
	cleanup = append(cleanup, func() { d.apiLn.Close() })
	if opts.Metrics != "" {
		if d.metLn, err = net.Listen("tcp", opts.Metrics); err != nil {
			return nil, fmt.Errorf("daemon: metrics address %s: %w", opts.Metrics, explainListen(err, "--metrics"))
		}
		cleanup = append(cleanup, func() { d.metLn.Close() })
	}
	var gwLn net.Listener
	if opts.Gateway != "" {
		if gwLn, err = d.listenGateway(opts.Gateway); err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { gwLn.Close() })
	}
	n, err := node.New(ctx, opts.Node)
	if err != nil {
		return nil, fmt.Errorf("daemon: starting the node: %w", explainListen(err, "--listen"))
	}
	cleanup = append(cleanup, func() { n.Close() })
	// A new token at each start (once the node holds the home's database,
	// so a second daemon that fails to start never replaces it): whatever
	// an old one was worth ends with the daemon that made it.
	if d.token, err = newToken(opts.Home); err != nil {
		return nil, err
	}
	if d.key = n.Host().Peerstore().PrivKey(n.ID()); d.key == nil {
		return nil, fmt.Errorf("daemon: the node's identity key is not in its peerstore")
	}
	d.local = NewLocal(n)
	if d.ui, err = newUIState(d); err != nil {
		return nil, err
	}
	d.base, d.cancel = context.WithCancel(context.Background())
	d.api = &http.Server{
		Handler:           d.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return d.base },
	}
	if d.metLn != nil {
		d.met = &http.Server{Handler: metricsHandler(n), ReadHeaderTimeout: 10 * time.Second}
	}
	if gwLn != nil {
		if err := d.startGateway(n, gwLn, opts.GatewayFetch); err != nil {
			d.cancel()
			return nil, err
		}
		cleanup = append(cleanup, func() { os.Remove(filepath.Join(opts.Home, GatewayFile)) })
	}
	if err := writeFileAtomic(filepath.Join(opts.Home, AddrFile), []byte(d.apiLn.Addr().String()+"\n"), 0o600); err != nil {
		d.cancel()
		return nil, fmt.Errorf("daemon: writing %s: %w", AddrFile, err)
	}
	d.spawn(func() { d.serve(d.api, d.apiLn, "API") })
	if d.met != nil {
		d.spawn(func() { d.serve(d.met, d.metLn, "metrics") })
	}
	if d.gw != nil {
		d.spawn(func() { d.serve(d.gw, d.gwLn, "gateway") })
	}
	d.spawn(d.sampleLoop)
	d.startNames(opts.Publish, opts.Follow)
	return d, nil
}

func (d *Daemon) spawn(fn func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		fn()
	}()
}

func (d *Daemon) serve(s *http.Server, ln net.Listener, what string) {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		d.log.Error("serving "+what, "err", err)
	}
}

func (d *Daemon) sampleLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	d.local.sample(time.Now())
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			d.local.sample(now)
			d.ui.record(now)
		}
	}
}

// checkLoopback refuses an API address that is not on loopback.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("daemon: API address %q: %w (want 127.0.0.1:PORT)", addr, err)
	}
	if !loopback.Name(host) {
		return fmt.Errorf("daemon: API address %q is not on loopback: the API listens on 127.0.0.1 or ::1 only", addr)
	}
	return nil
}

// explainListen adds what to do to an "address in use" error.
func explainListen(err error, flag string) error {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return fmt.Errorf("%w: the port is in use by another program; choose another with %s (port 0 picks a free one)", err, flag)
	}
	return err
}

// Node returns the daemon's node.
func (d *Daemon) Node() *node.Node { return d.local.n }

// APIAddr returns the API's host:port.
func (d *Daemon) APIAddr() string { return d.apiLn.Addr().String() }

// MetricsAddr returns the metrics' host:port, or "" without metrics.
func (d *Daemon) MetricsAddr() string {
	if d.metLn == nil {
		return ""
	}
	return d.metLn.Addr().String()
}

// Close stops the daemon: requests in flight are cancelled (a fetch keeps
// its partial file, to resume), the API and metrics stop, the node closes
// and flushes its database, and api.addr is removed. It waits for all of
// it; it is idempotent.
func (d *Daemon) Close() error {
	d.once.Do(func() {
		close(d.stop)
		d.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs := []error{d.api.Shutdown(ctx)}
		if d.met != nil {
			errs = append(errs, d.met.Shutdown(ctx))
		}
		errs = append(errs, d.closeGateway(ctx))
		d.wg.Wait()
		errs = append(errs, d.local.n.Close())
		addrFile := filepath.Join(d.home, AddrFile)
		if b, err := os.ReadFile(addrFile); err == nil && strings.TrimSpace(string(b)) == d.APIAddr() {
			os.Remove(addrFile)
		}
		d.closeEr = errors.Join(errs...)
	})
	return d.closeEr
}

// handler serves the API. Every request needs the token; the Host header
// must name loopback (so a web page cannot reach the API by DNS rebinding).
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/id", d.jsonHandler(func(r *http.Request) (any, error) { return d.local.ID(r.Context()) }))
	mux.HandleFunc("GET /v1/status", d.jsonHandler(func(r *http.Request) (any, error) { return d.local.Status(r.Context()) }))
	mux.HandleFunc("GET /v1/peers", d.jsonHandler(func(r *http.Request) (any, error) { return d.local.Peers(r.Context()) }))
	mux.HandleFunc("GET /v1/shares", d.jsonHandler(func(r *http.Request) (any, error) { return d.local.Shares(r.Context()) }))
	mux.HandleFunc("POST /v1/share", d.jsonHandler(func(r *http.Request) (any, error) {
		var req ShareRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return d.local.Share(r.Context(), req)
	}))
	mux.HandleFunc("POST /v1/unshare", d.jsonHandler(func(r *http.Request) (any, error) {
		var req struct {
			Root string `json:"root"`
		}
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return struct{}{}, d.local.Unshare(r.Context(), req.Root)
	}))
	mux.HandleFunc("POST /v1/inspect", d.jsonHandler(func(r *http.Request) (any, error) {
		var req InspectRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return d.local.Inspect(r.Context(), req)
	}))
	mux.HandleFunc("POST /v1/get", d.handleGet)
	mux.HandleFunc("POST /v1/cat", d.handleCat)
	d.carRoutes(mux)
	d.uiRoutes(mux)
	d.nameRoutes(mux)
	auth := d.jsonHandler(func(r *http.Request) (any, error) {
		var hello authHello
		if err := decode(r, &hello); err != nil {
			return nil, err
		}
		return answerAuth(d.key, d.token, hello, localAddr(r))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUIPath(r.URL.Path) {
			d.ui.ui.ServeHTTP(w, r) // with its own checks: Host, session, origin
			return
		}
		if !loopback.Request(r) {
			writeError(w, errorf(ErrBadRequest, "daemon: the API answers requests for loopback hosts at its own port only (Host %q)", r.Host))
			return
		}
		if r.Method == "POST" && r.URL.Path == "/v1/auth" {
			auth(w, r) // the handshake, before any token
			return
		}
		if !authorized(r.Header.Get("Authorization"), d.token, localAddr(r)) {
			writeError(w, errorf(ErrUnauthorized, "daemon: missing or wrong API token"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// localAddr is the address the request's connection reached the daemon at.
func localAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(ErrBadRequest, "daemon: request body: %v", err)
	}
	return nil
}

func (d *Daemon) jsonHandler(fn func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
}

// wireError is an error as the API sends it.
type wireError struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

var kinds = []struct {
	err    error
	name   string
	status int
}{
	{ErrUnauthorized, "unauthorized", http.StatusUnauthorized},
	{ErrNotFound, "not_found", http.StatusNotFound},
	{ErrExists, "exists", http.StatusConflict},
	{ErrBadRequest, "bad_request", http.StatusBadRequest},
}

func toWire(err error) (wireError, int) {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return wireError{Error: err.Error(), Kind: k.name}, k.status
		}
	}
	if errors.Is(err, context.Canceled) {
		return wireError{Error: err.Error(), Kind: "canceled"}, 499
	}
	return wireError{Error: err.Error(), Kind: "internal"}, http.StatusInternalServerError
}

func fromWire(we wireError) error {
	for _, k := range kinds {
		if we.Kind == k.name {
			return &Error{Kind: k.err, Msg: we.Error}
		}
	}
	if we.Kind == "canceled" {
		return &Error{Kind: context.Canceled, Msg: we.Error}
	}
	return errors.New(we.Error)
}

func writeError(w http.ResponseWriter, err error) {
	we, status := toWire(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(we)
}

// getLine is one line of /v1/get's NDJSON answer: exactly one field is set.
type getLine struct {
	Progress *ProgressInfo `json:"progress,omitempty"`
	Result   *GetResult    `json:"result,omitempty"`
	Error    *wireError    `json:"error,omitempty"`
}

// handleGet runs a fetch and streams its progress as NDJSON, then its
// result or error. The fetch ends when the client goes away.
func (d *Daemon) handleGet(w http.ResponseWriter, r *http.Request) {
	var req GetRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var (
		mu     sync.Mutex
		latest *ProgressInfo
		signal = make(chan struct{}, 1)
		done   = make(chan struct{})
		res    GetResult
		err    error
	)
	progress := func(p ProgressInfo) {
		mu.Lock()
		latest = &p
		mu.Unlock()
		select {
		case signal <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(done)
		res, err = d.local.Get(r.Context(), req, progress)
	}()
	started := false
	enc := json.NewEncoder(w)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	sendProgress := func() {
		mu.Lock()
		p := latest
		latest = nil
		mu.Unlock()
		if p == nil {
			return
		}
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			started = true
		}
		enc.Encode(getLine{Progress: p})
		flush()
	}
	for {
		select {
		case <-signal:
			sendProgress()
			continue
		case <-done:
		}
		break
	}
	sendProgress()
	if err != nil {
		if !started {
			writeError(w, err)
			return
		}
		we, _ := toWire(err)
		enc.Encode(getLine{Error: &we})
		return
	}
	if !started {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	enc.Encode(getLine{Result: &res})
}

// startWriter sends a 200 header before the first byte of a body.
type startWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.w.Header().Set("Content-Type", "application/octet-stream")
		s.started = true
	}
	return s.w.Write(p)
}

// handleCat streams one file. An error before the first byte is a JSON
// error; after it, the connection is cut so the client sees a short body.
func (d *Daemon) handleCat(w http.ResponseWriter, r *http.Request) {
	var req GetRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	sw := &startWriter{w: w}
	if err := d.local.Cat(r.Context(), req, sw); err != nil {
		if !sw.started {
			writeError(w, err)
			return
		}
		d.log.Warn("streaming a file", "target", req.Target, "err", err)
		panic(http.ErrAbortHandler)
	}
}
