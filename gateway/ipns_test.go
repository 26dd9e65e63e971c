package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peer-project/peer/gateway"
	"github.com/peer-project/peer/node"
)

// TestIPNS: /ipns/NAME/path serves what the name points at now, with a
// short Cache-Control; after a new publish, the new version. A bad name
// and a name nobody published get clear errors.
func TestIPNS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startNode(t)
	site := filepath.Join(t.TempDir(), "site")
	writeFile(t, filepath.Join(site, "a.txt"), []byte("version 1"))
	pub, err := n.Publish(ctx, site, node.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Node: n})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	get := func(p string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	code, body, h := get(pub.Name + "/a.txt")
	if code != 200 || body != "version 1" || h.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("GET %s/a.txt: %d %q, Cache-Control %q", pub.Name, code, body, h.Get("Cache-Control"))
	}
	writeFile(t, filepath.Join(site, "a.txt"), []byte("version 2"))
	if _, err := n.Publish(ctx, site, node.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(pub.Name + "/a.txt"); code != 200 || body != "version 2" {
		t.Fatalf("after a new publish: %d %q", code, body)
	}
	if code, body, _ := get("/ipns/not-a-name/a.txt"); code != 400 || !strings.Contains(body, "not a name") {
		t.Errorf("a bad name: %d %q", code, body)
	}
	other := startNode(t)
	if code, body, _ := get("/ipns/" + other.ID().String()); code != 404 || !strings.Contains(body, "no record") {
		t.Errorf("a name nobody published: %d %q", code, body)
	}
}
