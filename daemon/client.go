package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Client is the API of a running daemon, over HTTP on loopback. It is safe
// for concurrent use.
type Client struct {
	addr  string
	home  string
	token string
	http  *http.Client
}

// Dial finds the daemon of home (from its api.addr and api.token) and checks
// that it answers and accepts the token. It returns an error wrapping
// ErrNoDaemon when none runs, ErrUnauthorized when the token is refused.
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
	tok, err := os.ReadFile(filepath.Join(home, TokenFile))
	if err != nil {
		return nil, errorf(ErrUnauthorized, "daemon: the API token %s cannot be read: %v", filepath.Join(home, TokenFile), err)
	}
	c.token = strings.TrimSpace(string(tok))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.ID(pctx); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return c, errorf(ErrUnauthorized, "the daemon at %s refused the API token in %s: it belongs to another daemon; use that daemon's --home, or restart this one", addr, filepath.Join(home, TokenFile))
		}
		var ne net.Error
		var oe *net.OpError
		if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.EOF) {
			return nil, errorf(ErrNoDaemon, "no daemon answers for %s at %s (it stopped without cleaning up?): start one with `peer daemon`", home, addr)
		}
		return nil, err
	}
	return c, nil
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
	req.Header.Set("Authorization", "Bearer "+c.token)
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
func (c *Client) Inspect(ctx context.Context, req InspectRequest) (out ManifestInfo, err error) {
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
	resp, err := c.do(ctx, "POST", "/v1/cat", req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("daemon: the stream broke: %w", err)
	}
	return nil
}
