// Package browsertest starts a headless Chromium for the web UI's tests and
// hands back a chromedp context to drive it.
//
// It runs Debian's chromium (/usr/bin/chromium; PEER_CHROMIUM names
// another) headless, without sandbox or GPU, with a fresh profile in the
// test's temporary folder, and with everything that would reach the
// internet turned off: background networking, component updates, sync,
// QUIC, and name resolution for any host but the loopback names (so a
// page that names another host gets an error, not a packet sent). When
// there is no chromium the test is skipped, unless CI=true (CI installs
// it; see .ci/run), where it fails.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path returns the chromium to run, or "" when there is none.
func Path() string {
	if p := os.Getenv("PEER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Flags are the command-line switches Chromium runs with, beside headless
// mode, the executable and the profile folder.
var Flags = map[string]any{
	"no-sandbox":                             true,
	"disable-gpu":                            true,
	"disable-quic":                           true,
	"no-first-run":                           true,
	"no-default-browser-check":               true,
	"disable-background-networking":          true,
	"disable-component-update":               true,
	"disable-sync":                           true,
	"disable-extensions":                     true,
	"disable-default-apps":                   true,
	"disable-domain-reliability":             true,
	"disable-client-side-phishing-detection": true,
	"disable-breakpad":                       true,
	"metrics-recording-only":                 true,
	"no-pings":                               true,
	"mute-audio":                             true,
	"hide-scrollbars":                        true,
	"disable-dev-shm-usage":                  true,
	"disable-features":                       "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
	// Only the loopback names resolve: no lookup leaves the machine.
	"host-resolver-rules": "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
	"window-size":         "1280,900",
}

// New starts Chromium for t and returns a context of its first tab, done
// after timeout (every action on it is bounded by that deadline). The
// browser is closed, and its profile and home (temporary folders)
// removed, when t ends.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	bin := Path()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("browsertest: chromium is not installed, and CI=true: .ci/run installs Debian's chromium package")
		}
		t.Skip("browsertest: chromium is not installed (apt-get install chromium, or PEER_CHROMIUM=/path/to/chrome)")
	}
	home := t.TempDir() // what Chromium writes outside its profile goes here too
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("HOME="+home, "XDG_CONFIG_HOME="+home+"/config", "XDG_CACHE_HOME="+home+"/cache"),
	}
	for k, v := range Flags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser() // closes the browser and waits for it
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("browsertest: starting %s: %v", bin, err)
	}
	return bctx
}
