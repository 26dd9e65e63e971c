package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/peer-project/peer/internal/browsertest"
	"github.com/peer-project/peer/node"
)

// The web UI in a real browser (Debian's chromium, headless; see
// internal/browsertest). With PEER_UPDATE_SCREENSHOTS=1 each page's
// screenshot is written under docs/, for the README.

func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// wavNoise returns a WAV file of size bytes: 16-bit stereo PCM at 44.1
// kHz, of noise from seed (a player can open it and seek in it).
func wavNoise(size int, seed uint64) []byte {
	b := randomData(size, seed)
	le32 := func(off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	le16 := func(off int, v uint16) { b[off], b[off+1] = byte(v), byte(v>>8) }
	copy(b[0:], "RIFF")
	le32(4, uint32(size-8))
	copy(b[8:], "WAVEfmt ")
	le32(16, 16)
	le16(20, 1) // PCM
	le16(22, 2)
	le32(24, 44100)
	le32(28, 44100*4)
	le16(32, 4)
	le16(34, 16)
	copy(b[36:], "data")
	le32(40, uint32(size-44))
	return b
}

// screenshot takes a full-page PNG of the tab and, when asked to, writes it
// to docs/NAME.png.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	if os.Getenv("PEER_UPDATE_SCREENSHOTS") == "1" {
		p := filepath.Join("..", "docs", name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", p, len(png))
	}
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, ctx, what, chromedp.Steps(steps...))
}

// TestBrowserUI: sign in with the link `peer ui` prints, share a file
// through A's UI, copy its ticket and link, paste the ticket into B's UI
// and watch the fetch's progress reach 100% live (Server-Sent Events, no
// reload), see A among B's peers, change B's caps.
func TestBrowserUI(t *testing.T) {
	ctx := browsertest.New(t, 60*time.Second)
	homeA, homeB := t.TempDir(), t.TempDir()
	a := startGatewayDaemon(t, homeA, "127.0.0.1:0")
	b := startGatewayDaemon(t, homeB, "127.0.0.1:0")
	// A serves at 4 MB/s, so that B's progress takes a few seconds.
	if err := a.Node().SetCaps(node.Caps{UploadRate: 4e6}); err != nil {
		t.Fatal(err)
	}
	data := randomData(12<<20, 1)
	src := filepath.Join(t.TempDir(), "field-recording.flac")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// Every page records what its Content-Security-Policy refused: the
	// UI's own pages must need nothing it forbids.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.cspRefused = []; document.addEventListener("securitypolicyviolation", e => window.cspRefused.push(e.violatedDirective + " " + e.blockedURI));`,
	}); err != nil {
		t.Fatal(err)
	}
	noViolations := func(where string) {
		t.Helper()
		if v := run(t, ctx, "CSP violations", chromedp.Evaluate[[]string](`window.cspRefused`)); len(v) != 0 {
			t.Errorf("%s: the CSP refused %q", where, v)
		}
	}

	// Sign in to A: the token leaves the URL.
	do(t, ctx, "open A's sign-in link", chromedp.Navigate(a.UIURL()), chromedp.WaitVisible(chromedp.CSS("#path")))
	if loc := run(t, ctx, "location", chromedp.Location()); loc != "http://"+a.APIAddr()+"/ui/shares" {
		t.Errorf("after sign-in the browser is at %s, want A's shares page without the token", loc)
	}
	if js := run(t, ctx, "the script's mark", chromedp.AttributeValue(chromedp.CSS("html"), "data-js")); js.Value != "on" {
		t.Errorf("the UI's script did not run (html data-js %q)", js.Value)
	}
	do(t, ctx, "share through the form",
		chromedp.SetValue(chromedp.CSS("#path"), src),
		chromedp.Click(chromedp.CSS(`form[action="/ui/shares/add"] button`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")))
	notice := run(t, ctx, "notice", chromedp.Text(chromedp.CSS("p.notice")))
	if !strings.Contains(notice, "Shared field-recording.flac") {
		t.Errorf("notice %q", notice)
	}
	ticket := run(t, ctx, "ticket", chromedp.Value(chromedp.CSS("input.ticket")))
	link := run(t, ctx, "link", chromedp.AttributeValue(chromedp.CSS("a.link"), "href"))
	shares, err := a.local.Shares(context.Background())
	if err != nil || len(shares) != 1 || shares[0].Ticket != ticket || ShareURL(a.GatewayURL(shares[0].Root), shares[0]) != link.Value {
		t.Fatalf("the page shows ticket %q and link %q; A shares %+v (%v)", ticket, link.Value, shares, err)
	}
	// Copy the link with its button, as a user would, and read the
	// clipboard back.
	if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "clipboard-read"}, Setting: browser.PermissionSettingGranted, Origin: "http://" + a.APIAddr(),
	}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "copy the link", chromedp.Click(chromedp.CSS(`button[data-copy^="link-"]`)))
	copied := run(t, ctx, "read the clipboard", chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if copied != link.Value {
		t.Errorf("the clipboard holds %q, want the link %q", copied, link.Value)
	}
	noViolations("ui-shares")
	screenshot(t, ctx, "ui-shares")

	// Fetch the ticket through B's UI (another port: another cookie).
	dir := t.TempDir()
	do(t, ctx, "open B's sign-in link", chromedp.Navigate(b.UIURL()), chromedp.WaitVisible(chromedp.CSS("#path")))
	do(t, ctx, "fetch through B's form",
		chromedp.Navigate("http://"+b.APIAddr()+"/ui/transfers"),
		chromedp.SetValue(chromedp.CSS("#target"), ticket),
		chromedp.SetValue(chromedp.CSS("#dir"), dir),
		chromedp.Click(chromedp.CSS(`form[action="/ui/transfers/fetch"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#transfers tbody tr")))
	// Mark the page: a reload would lose the mark.
	run(t, ctx, "mark the page", chromedp.Evaluate[bool](`window.peerMark = true`))
	start := time.Now()
	first := run(t, ctx, "progress shown first", chromedp.Text(chromedp.CSS("#transfers tbody tr .pct")))
	// Mid-way: the screenshot shows a fetch in progress.
	run(t, ctx, "progress past 20%", chromedp.Poll[bool](
		`(() => { const p = document.querySelector("#transfers tbody tr progress"); return p && p.value >= 20 && p.value < 100 })()`))
	noViolations("ui-transfers")
	screenshot(t, ctx, "ui-transfers")
	run(t, ctx, "progress at 100%", chromedp.Poll[bool](
		`document.querySelector("#transfers tbody tr .pct").textContent === "100%" && document.querySelector("#transfers tbody tr .state").textContent === "done"`))
	t.Logf("B's page showed %s at first, 100%% and done %v later", first, time.Since(start).Round(time.Millisecond))
	if !run(t, ctx, "the mark", chromedp.Evaluate[bool](`window.peerMark === true`)) {
		t.Error("the page was reloaded: progress should come live, by Server-Sent Events")
	}
	got, err := os.ReadFile(filepath.Join(dir, shares[0].Root))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the fetched file: %d bytes, %v", len(got), err)
	}

	// B's peers: A, directly.
	do(t, ctx, "B's peers", chromedp.Navigate("http://"+b.APIAddr()+"/ui/peers"), chromedp.WaitVisible(chromedp.CSS("#peers")))
	peers := run(t, ctx, "peers table", chromedp.Text(chromedp.CSS("#peers tbody")))
	if !strings.Contains(peers, "direct") || !strings.Contains(peers, a.Node().ID().String()[:8]) {
		t.Errorf("B's peers page: %q; want A, direct", peers)
	}
	noViolations("ui-peers")
	screenshot(t, ctx, "ui-peers")

	// B's network: the chart has points, and the caps form changes B's
	// node.
	do(t, ctx, "B's network page", chromedp.Navigate("http://"+b.APIAddr()+"/ui/network"), chromedp.WaitVisible(chromedp.CSS("#bw")))
	run(t, ctx, "the chart's download line", chromedp.Poll[bool](`document.getElementById("bw-down").getAttribute("points").split(" ").length > 2`))
	do(t, ctx, "set caps",
		chromedp.SetValue(chromedp.CSS(`input[name="upload"]`), "5MB"),
		chromedp.SetValue(chromedp.CSS(`input[name="peer_download"]`), "750KB"),
		chromedp.Click(chromedp.CSS(`form.caps button`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")))
	if c := b.Node().Caps(); c != (node.Caps{UploadRate: 5e6, PeerDownloadRate: 750e3}) {
		t.Errorf("B's caps after the form: %+v", c)
	}
	noViolations("ui-network")
	screenshot(t, ctx, "ui-network")
}

// TestBrowserNoJS: with JavaScript off, the UI still signs in, shares
// through its form, lists the share with its ticket and link, and
// unshares: forms POST and come back with the page.
func TestBrowserNoJS(t *testing.T) {
	ctx := browsertest.New(t, 60*time.Second)
	d := startGatewayDaemon(t, t.TempDir(), "127.0.0.1:0")
	src := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(src, []byte("no script needed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "sign in", chromedp.Navigate(d.UIURL()), chromedp.WaitVisible(chromedp.CSS("#path")))
	do(t, ctx, "share through the form",
		chromedp.SendKeys(chromedp.CSS("#path"), src),
		chromedp.Click(chromedp.CSS(`form[action="/ui/shares/add"] button`)),
		chromedp.WaitVisible(chromedp.CSS("p.notice")))
	if js, _ := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("html"), "data-js")); js.Exists {
		t.Fatal("the UI's script ran: JavaScript should be off in this test")
	}
	shares, err := d.local.Shares(context.Background())
	if err != nil || len(shares) != 1 {
		t.Fatalf("shares: %+v, %v", shares, err)
	}
	ticket := run(t, ctx, "ticket", chromedp.Value(chromedp.CSS("input.ticket")))
	link := run(t, ctx, "link", chromedp.AttributeValue(chromedp.CSS("a.link"), "href"))
	if ticket != shares[0].Ticket || link.Value != ShareURL(d.GatewayURL(shares[0].Root), shares[0]) {
		t.Errorf("the page shows ticket %q and link %q", ticket, link.Value)
	}
	do(t, ctx, "unshare", chromedp.Click(chromedp.CSS(`form[action="/ui/shares/remove"] button`)), chromedp.WaitVisible(chromedp.CSS("p.empty")))
	if shares, _ := d.local.Shares(context.Background()); len(shares) != 0 {
		t.Errorf("still shared after the Unshare button: %+v", shares)
	}
	for _, p := range []string{"transfers", "peers", "network"} {
		do(t, ctx, p, chromedp.Navigate("http://"+d.APIAddr()+"/ui/"+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
	}
}

// TestBrowserGatewayRange: while a node downloads a file (a WAV) from two
// seeders, the browser opens the file's link on that node's gateway and
// its player seeks to the end; then a script in the page reads the last
// MiB with a Range request, and the bytes it received equal the source's.
func TestBrowserGatewayRange(t *testing.T) {
	ctx := browsertest.New(t, 60*time.Second)
	const size = 24 << 20
	data := wavNoise(size, 2)
	src := filepath.Join(t.TempDir(), "recording.wav")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Two seeders of the same bytes, each serving at 2 MB/s: the whole
	// file takes some 6 s from both.
	var seeders []*Daemon
	var root string
	for i := range 2 {
		s := startDaemon(t, t.TempDir())
		sh, err := s.local.Share(context.Background(), ShareRequest{Path: src})
		if err != nil {
			t.Fatal(err)
		}
		if root != "" && sh.Root != root {
			t.Fatalf("seeder %d: root %s, want %s", i, sh.Root, root)
		}
		root = sh.Root
		if err := s.Node().SetCaps(node.Caps{UploadRate: 2e6}); err != nil {
			t.Fatal(err)
		}
		seeders = append(seeders, s)
	}
	f := startGatewayDaemon(t, t.TempDir(), "127.0.0.1:0")
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range seeders {
		if err := f.Node().Connect(cctx, s.Node().AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	// F downloads the whole file (as its UI's fetch form does)...
	dir := t.TempDir()
	if err := (uiBackend{f.ui}).Fetch(cctx, root, dir); err != nil {
		t.Fatal(err)
	}
	progress := func() (int64, string) {
		ts := (uiBackend{f.ui}).Transfers()
		if len(ts) == 0 {
			return 0, ""
		}
		return ts[0].Bytes, ts[0].State
	}
	// ... and, while it does, a page on F's gateway asks for the last MiB.
	before, state := progress()
	if state != "running" || before >= size {
		t.Fatalf("F's fetch is %s with %d of %d bytes before the seek; the test wants it running", state, before, size)
	}
	// A player: a page of F's gateway plays the file's link in a <video>
	// and seeks to the end.
	start := time.Now()
	do(t, ctx, "open a page of the gateway", chromedp.Navigate(f.GatewayURL("")))
	seek := run(t, ctx, "seek to the end", chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
		const v = document.createElement("video");
		v.muted = true;
		v.preload = "metadata";
		document.body.append(v);
		v.src = %q;
		if (isNaN(v.duration)) await new Promise((ok, fail) => { v.onloadedmetadata = ok; v.onerror = () => fail(new Error("media error " + (v.error && v.error.code))); });
		v.pause();
		const seeked = new Promise((ok, fail) => { v.onseeked = ok; v.onerror = () => fail(new Error("media error " + (v.error && v.error.code))); });
		v.currentTime = v.duration - 0.5;
		await seeked;
		while (v.readyState < 2) await new Promise(ok => v.addEventListener("canplay", ok, {once: true}));
		return v.duration.toFixed(2) + " " + v.currentTime.toFixed(2) + " " + v.readyState;
	})()`, f.GatewayURL(root)), chromedp.EvalAwaitPromise))
	mid, _ := progress()
	t.Logf("the player seeked to the end in %v (duration, position, readyState: %s) while F's fetch had %d of %d bytes",
		time.Since(start).Round(time.Millisecond), seek, mid, size)
	const tail = 1 << 20
	js := fmt.Sprintf(`(async () => {
		const r = await fetch(%q, {headers: {Range: "bytes=%d-"}});
		const b = new Uint8Array(await r.arrayBuffer());
		let s = "";
		for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode.apply(null, b.subarray(i, i + 8192));
		return r.status + " " + (r.headers.get("Content-Range") || "") + " " + btoa(s);
	})()`, f.GatewayURL(root), size-tail)
	start = time.Now()
	out := run(t, ctx, "ranged read in the page", chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	took := time.Since(start)
	after, state := progress()
	parts := strings.SplitN(out, " ", 4)
	if len(parts) != 4 {
		t.Fatalf("the page returned %.200q", out)
	}
	status, crange := parts[0], parts[1]+" "+parts[2]
	got, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the page read the last %d bytes (status %s, %s) in %v, while F's fetch went from %d to %d bytes of %d (%s)",
		len(got), status, crange, took.Round(time.Millisecond), before, after, size, state)
	if status != "206" || crange != fmt.Sprintf("bytes %d-%d/%d", size-tail, size-1, size) {
		t.Errorf("status %s, Content-Range %q", status, crange)
	}
	if !bytes.Equal(got, data[size-tail:]) {
		t.Fatalf("the page received %d bytes that are not the source's last %d", len(got), tail)
	}
	if after >= size {
		t.Logf("note: F's own fetch had finished by the time the read returned")
	}
	for i, s := range seeders {
		if up := s.Node().Stats().BytesUp; up == 0 {
			t.Errorf("seeder %d sent nothing: the file should come from both", i)
		} else {
			t.Logf("seeder %d sent %d bytes", i, up)
		}
	}
}
