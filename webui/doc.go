// Package webui is the daemon's web UI: server-rendered HTML pages, a
// stylesheet and a little JavaScript, all embedded (no Node toolchain), over
// a Backend that the daemon implements.
//
// Pages, under Prefix (/ui/): shares (share a path, unshare, copy a
// share's ticket and gateway link, stale shares marked), transfers (start
// a fetch, see each one's progress), peers (direct or relayed, and through
// which relay), network (bandwidth over the last five minutes as an SVG
// chart, the caps, changed at run time, and the node's reachability).
// Everything that is a list, a link or a form works with JavaScript off:
// forms POST and are answered with a redirect (or the page again with the
// error and what was typed); /ui/events (Server-Sent Events) only adds live
// progress and rates to an open page.
//
// Signing in: the daemon hands out one-time login tokens (UI.NewLogin;
// `peer ui` prints a URL with one). The first GET with ?token= sets an
// HttpOnly, SameSite=Strict session cookie on Path=/ (named by
// Config.Cookie, since browsers share cookies between the ports of a host;
// the session is also checked against those this UI made) and redirects
// to the same URL without the token. The token cannot be used twice.
//
// Safety, in ServeHTTP's order: every answer carries a strict
// Content-Security-Policy (CSP: script and style from the UI only, nothing
// inline, no frames), X-Frame-Options DENY and nosniff; a Host that is not
// a loopback name or address with the listener's own port is refused with
// 403 (DNS rebinding); a path with NUL, "." or ".." with 400; a request
// without a session with 401; a POST whose Origin (or Referer) is not the
// UI's own with 403, as is one without the session's form token (CSRF).
// Nothing is changed by a refused request.
package webui
