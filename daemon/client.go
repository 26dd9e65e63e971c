package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peer-project/peer/node"
)

// Client is the API of a running daemon, over HTTP on loopback. It is safe
// for concurrent use.
type Client struct {
	addr  string
	home  string
	token string
	auth  string // the Authorization header: a proof of the token, never the token
	http  *http.Client
}

// Dial finds the daemon of home (from its api.addr and api.token), makes
// sure that what answers there is that daemon (it signs with the node's
// identity key and proves it knows the token) before it sends anything, and
// proves the token to it without sending it (see AuthScheme). It returns an
// error wrapping ErrNoDaemon when none runs, ErrImpostor (which matches
// ErrNoDaemon) when something else answers at api.addr, and ErrUnauthorized
// when the daemon's token is not the one in api.token.
func Dial(ctx context.Context, home string) (*Client, error) {
	b, err := os.ReadFile(filepath.Join(home, AddrFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(ErrNoDaemon, "no daemon runs for %s: start one with `peer daemon`", home)
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: reading %s: %w", AddrFile, err)
	}
	addr := strings.TrimSpace(string(b))
	if err := checkLoopback(addr); err != nil {
		return nil, fmt.Errorf("daemon: %s in %s: %w", AddrFile, home, err)
	}
	c := &Client{addr: addr, home: home, http: &http.Client{Transport: &http.Transport{
		Proxy:       nil, // never through a proxy: the API is on loopback
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}}}
	tokFile := filepath.Join(home, TokenFile)
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		return nil, errorf(ErrUnauthorized, "daemon: the API token %s cannot be read: %v", tokFile, err)
	}
	c.token = strings.TrimSpace(string(tok))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	refused := func() error {
		return errorf(ErrUnauthorized, "the daemon at %s refused the API token in %s: it is not the token this daemon made when it started (another daemon's, or an old one); use that daemon's --home, or restart this one", addr, tokFile)
	}
	if err := c.handshake(pctx); err != nil {
		switch {
		case errors.Is(err, ErrImpostor):
			why := strings.TrimPrefix(err.Error(), ErrImpostor.Error()+": ")
			return nil, errorf(ErrImpostor, "%s in %s names %s, but what answers there is not this home's daemon (%s), so nothing was sent to it: the daemon probably stopped without cleaning up and another program took its port. Start the daemon with `peer daemon` (it writes a new address and token)", AddrFile, home, addr, why)
		case errors.Is(err, ErrUnauthorized):
			return c, refused()
		}
		var ne net.Error
		var oe *net.OpError
		if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.EOF) {
			return nil, errorf(ErrNoDaemon, "no daemon answers for %s at %s (it stopped without cleaning up?): start one with `peer daemon`", home, addr)
		}
		return nil, err
	}
	if _, err := c.ID(pctx); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return c, refused()
		}
		return nil, err
	}
	return c, nil
}

// handshake checks that the API at c.addr is the home's daemon and sets
// c.auth, the proof of the token that every request carries.
func (c *Client) handshake(ctx context.Context) error {
	nc, err := newNonce()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(authHello{Nonce: hex.EncodeToString(nc)})
	// The proofs cover the address the connection reached: the daemon's
	// side of it, as the client sees it.
	var reached string
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reached = info.Conn.RemoteAddr().String() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), "POST", c.url("/v1/auth"), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: it answered the handshake with HTTP %s", ErrImpostor, resp.Status)
	}
	var a authAnswer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&a); err != nil {
		return fmt.Errorf("%w: its answer to the handshake is not one: %v", ErrImpostor, err)
	}
	if _, err := os.Stat(filepath.Join(c.home, node.KeyFile)); err != nil {
		return fmt.Errorf("%w: the home has no identity key to check it against (%v)", ErrImpostor, err)
	}
	want, err := node.IdentityOf(c.home)
	if err != nil {
		return fmt.Errorf("daemon: the home's identity: %w", err)
	}
	ns, err := checkAnswer(a, want, c.token, nc, reached)
	if err != nil {
		return err
	}
	c.auth = clientAuth(c.token, nc, ns, reached)
	return nil
}

// Addr returns the daemon's API address.
func (c *Client) Addr() string { return c.addr }

func (c *Client) url(path string) string {
	return (&url.URL{Scheme: "http", Host: c.addr, Path: path}).String()
}

// do sends a request and returns the response of a 2xx status; any other
// status is turned into the error it carries.
func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", c.auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var we wireError
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&we); err != nil || we.Error == "" {
		return nil, fmt.Errorf("daemon: %s %s: HTTP %s", method, path, resp.Status)
	}
	return nil, fromWire(we)
}

func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("daemon: %s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

// ID implements API.
func (c *Client) ID(ctx context.Context) (out IDInfo, err error) {
	return out, c.call(ctx, "GET", "/v1/id", nil, &out)
}

// Status implements API.
func (c *Client) Status(ctx context.Context) (out StatusInfo, err error) {
	return out, c.call(ctx, "GET", "/v1/status", nil, &out)
}

// Peers implements API.
func (c *Client) Peers(ctx context.Context) (out []PeerInfo, err error) {
	return out, c.call(ctx, "GET", "/v1/peers", nil, &out)
}

// Shares implements API.
func (c *Client) Shares(ctx context.Context) (out []ShareInfo, err error) {
	return out, c.call(ctx, "GET", "/v1/shares", nil, &out)
}

// Share implements API.
func (c *Client) Share(ctx context.Context, req ShareRequest) (out ShareInfo, err error) {
	return out, c.call(ctx, "POST", "/v1/share", req, &out)
}

// Unshare implements API.
func (c *Client) Unshare(ctx context.Context, root string) error {
	return c.call(ctx, "POST", "/v1/unshare", map[string]string{"root": root}, nil)
}

// Inspect implements API.
func (c *Client) Inspect(ctx context.Context, req InspectRequest) (out ListingInfo, err error) {
	return out, c.call(ctx, "POST", "/v1/inspect", req, &out)
}

// Get implements API: progress is called from this goroutine, as each
// report arrives.
func (c *Client) Get(ctx context.Context, req GetRequest, progress func(ProgressInfo)) (GetResult, error) {
	resp, err := c.do(ctx, "POST", "/v1/get", req)
	if err != nil {
		return GetResult{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var line getLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return GetResult{}, fmt.Errorf("daemon: get: reading the answer: %w", err)
		}
		switch {
		case line.Progress != nil:
			if progress != nil {
				progress(*line.Progress)
			}
		case line.Result != nil:
			return *line.Result, nil
		case line.Error != nil:
			return GetResult{}, fromWire(*line.Error)
		}
	}
	if ctx.Err() != nil {
		return GetResult{}, ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return GetResult{}, fmt.Errorf("daemon: get: the daemon went away: %w", err)
	}
	return GetResult{}, errors.New("daemon: get: the daemon went away before the fetch ended")
}

// Cat implements API.
func (c *Client) Cat(ctx context.Context, req GetRequest, w io.Writer) error {
	return c.stream(ctx, "/v1/cat", req, w, "the stream")
}

// stream POSTs req to path and copies the response's body to w; what names
// the stream in the error if it breaks.
func (c *Client) stream(ctx context.Context, path string, req any, w io.Writer, what string) error {
	resp, err := c.do(ctx, "POST", path, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("daemon: %s broke: %w", what, err)
	}
	return nil
}
