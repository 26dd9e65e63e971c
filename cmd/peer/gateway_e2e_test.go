package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestGatewayE2E: `peer daemon --gateway` serves the gateway and says
// where; `peer share` prints the file's gateway URL beside the ticket,
// named by ?filename=, and the URL gives the file, typed by its name and
// saved under it; `--gateway off` runs none and share prints none.
func TestGatewayE2E(t *testing.T) {
	d := startDaemon(t, "--gateway", "127.0.0.1:0")
	if !strings.HasPrefix(d.info.Gateway, "http://127.0.0.1:") || !strings.HasSuffix(d.info.Gateway, "/ipfs/") {
		t.Fatalf("daemon's gateway = %q", d.info.Gateway)
	}
	data := randomBytes(300<<10, 9)
	src := filepath.Join(t.TempDir(), "clip one.mp4")
	writeFile(t, src, data)
	out := ok(t, "share", "--home", d.home, src)
	m := regexp.MustCompile(`(?m)^gateway: (http://\S+)$`).FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], d.info.Gateway) {
		t.Fatalf("share printed no gateway URL on %s:\n%s", d.info.Gateway, out)
	}
	client := &http.Client{Timeout: time.Minute}
	if !strings.HasSuffix(m[1], "?filename=clip+one.mp4") {
		t.Fatalf("share's gateway URL %s does not name the file", m[1])
	}
	resp, err := client.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET %s = %d, %d bytes, %v", m[1], resp.StatusCode, len(body), err)
	}
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "video/mp4" || !strings.Contains(cd, "clip one.mp4") {
		t.Fatalf("GET %s: Content-Type %q, Content-Disposition %q; want video/mp4 and the file's name", m[1], ct, cd)
	}

	off := startDaemon(t, "--gateway", "off")
	if off.info.Gateway != "" {
		t.Fatalf("--gateway off serves at %q", off.info.Gateway)
	}
	if out := ok(t, "share", "--home", off.home, src); strings.Contains(out, "gateway:") {
		t.Fatalf("share printed a gateway with none running:\n%s", out)
	}
	fails(t, "HOST:PORT", "daemon", "--home", t.TempDir(), "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--gateway", "8080")
}
