package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUICommand: `peer ui` prints a one-time link to the daemon's UI: its
// first GET signs in (a cookie, a redirect without the token), a second is
// refused; --open hands the link to xdg-open; without a daemon it says to
// start one.
func TestUICommand(t *testing.T) {
	d := startDaemon(t, "--dht", "off", "--gateway", "off")
	link := strings.TrimSpace(ok(t, "ui", "--home", d.home))
	if !strings.HasPrefix(link, "http://127.0.0.1:") || !strings.Contains(link, "/ui/?token=") {
		t.Fatalf("peer ui printed %q", link)
	}
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func() *http.Response {
		resp, err := c.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" ||
		!strings.Contains(resp.Header.Get("Set-Cookie"), "HttpOnly") {
		t.Fatalf("the link: %s, Location %q, Set-Cookie %q", resp.Status, resp.Header.Get("Location"), resp.Header.Get("Set-Cookie"))
	}
	if resp := get(); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the link used twice: %s, want 403", resp.Status)
	}

	// --open: a stand-in xdg-open writes down what it was given.
	bin, got := t.TempDir(), filepath.Join(t.TempDir(), "opened")
	script := "#!/bin/sh\nprintf '%s' \"$1\" > " + got + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := peerCmd(t, []string{"PATH=" + bin + ":" + os.Getenv("PATH")}, "ui", "--home", d.home, "--open")
	opened, _ := os.ReadFile(got)
	if r.code != 0 || string(opened) != strings.TrimSpace(r.stdout) || !strings.Contains(string(opened), "token=") {
		t.Fatalf("peer ui --open: exit %d, printed %q, opened %q\n%s", r.code, r.stdout, opened, r.stderr)
	}

	fails(t, "start one with `peer daemon`", "ui", "--home", t.TempDir())
}
