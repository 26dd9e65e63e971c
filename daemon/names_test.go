package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// logWatch is a slog handler that passes the daemon's records on to a
// channel (dropping them when it is full) and discards the rest.
type logWatch struct{ ch chan slog.Record }

func (l logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l logWatch) Handle(_ context.Context, r slog.Record) error {
	select {
	case l.ch <- r.Clone():
	default:
	}
	return nil
}
func (l logWatch) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logWatch) WithGroup(string) slog.Handler      { return l }

// startNamed starts a daemon whose own logs go to logs.
func startNamed(t *testing.T, home string, edit func(*Settings), logs chan slog.Record) *Daemon {
	t.Helper()
	s := DefaultSettings()
	s.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	s.NoMDNS = true
	s.DHT = "off"
	s.Gateway = "off"
	edit(&s)
	cfg, err := s.NodeConfig(home, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoSync = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := Start(ctx, Options{Home: home, Node: cfg, Publish: s.Publish, Follow: s.Follow, Logger: slog.New(logWatch{logs})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// waitLog waits for a record with message msg whose attribute key is val.
func waitLog(t *testing.T, ctx context.Context, logs chan slog.Record, msg, key string, val any) {
	t.Helper()
	for {
		select {
		case r := <-logs:
			if r.Message != msg {
				continue
			}
			found := false
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == key && a.Value.Any() == val {
					found = true
				}
				return !found
			})
			if found {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no log %q with %s=%v", msg, key, val)
		}
	}
}

// TestNameSettings: A's settings publish a folder, B's follow its name;
// B's folder gets the first version, and the next one once A's folder
// changes (A's daemon watches it).
func TestNameSettings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	site := filepath.Join(t.TempDir(), "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "a.txt"), []byte("one"), 0o644)
	logsA := make(chan slog.Record, 256)
	a := startNamed(t, t.TempDir(), func(s *Settings) { s.Publish = []PublishSetting{{Path: site}} }, logsA)
	waitLog(t, ctx, logsA, "published", "seq", uint64(1))

	mirror := filepath.Join(t.TempDir(), "mirror")
	logsB := make(chan slog.Record, 256)
	var peers []string
	for _, ad := range a.Node().Addrs() {
		peers = append(peers, ad.String())
	}
	startNamed(t, t.TempDir(), func(s *Settings) {
		s.Follow = []FollowSetting{{Name: "/ipns/" + a.Node().ID().String(), Dir: mirror, Peers: peers}}
	}, logsB)
	waitLog(t, ctx, logsB, "follow: version applied", "seq", uint64(1))
	if b, err := os.ReadFile(filepath.Join(mirror, "a.txt")); string(b) != "one" {
		t.Fatalf("the mirror's a.txt: %q, %v", b, err)
	}

	os.WriteFile(filepath.Join(site, "a.txt"), []byte("two"), 0o644)
	waitLog(t, ctx, logsB, "follow: version applied", "seq", uint64(2))
	if b, err := os.ReadFile(filepath.Join(mirror, "a.txt")); string(b) != "two" {
		t.Fatalf("the mirror's a.txt after the change: %q, %v", b, err)
	}
}

// TestNameSettingsChecked: a relative folder or a bad name in the
// settings stops the start with a message that says which setting.
func TestNameSettingsChecked(t *testing.T) {
	for _, tc := range []struct {
		pubs    []PublishSetting
		follows []FollowSetting
	}{
		{pubs: []PublishSetting{{Path: "rel/path"}}},
		{follows: []FollowSetting{{Name: "/ipns/nope", Dir: "/abs"}}},
		{follows: []FollowSetting{{Name: "/ipns/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", Dir: "rel"}}},
	} {
		if err := checkNameSettings(tc.pubs, tc.follows); err == nil {
			t.Errorf("settings %+v were taken", tc)
		} else {
			t.Logf("%v", err)
		}
	}
}

// TestRepublishAtStart: a name published through a daemon is published
// again, with a higher sequence, when a daemon starts on the home again.
func TestRepublishAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	site := filepath.Join(t.TempDir(), "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "a.txt"), []byte("one"), 0o644)
	logs := make(chan slog.Record, 256)
	d := startNamed(t, home, func(*Settings) {}, logs)
	c, err := Dial(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Publish(ctx, PublishRequest{Path: site, Key: "site"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Seq != 1 || info.Ticket == "" {
		t.Fatalf("Publish = %+v", info)
	}
	d.Close()
	startNamed(t, home, func(*Settings) {}, logs)
	waitLog(t, ctx, logs, "published again", "seq", uint64(2))
}

// TestClientFollow: a follow through the daemon's API streams its events
// for as long as the request lasts.
func TestClientFollow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	a := startNamed(t, homeA, func(*Settings) {}, make(chan slog.Record, 1))
	startNamed(t, homeB, func(*Settings) {}, make(chan slog.Record, 1))
	ca, err := Dial(ctx, homeA)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Dial(ctx, homeB)
	if err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(t.TempDir(), "site")
	os.MkdirAll(site, 0o755)
	os.WriteFile(filepath.Join(site, "a.txt"), []byte("one"), 0o644)
	info, err := ca.Publish(ctx, PublishRequest{Path: site})
	if err != nil {
		t.Fatal(err)
	}
	var peers []string
	for _, ad := range a.Node().Addrs() {
		peers = append(peers, ad.String())
	}
	mirror := filepath.Join(t.TempDir(), "mirror")
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	var got FollowEventInfo
	err = cb.Follow(fctx, FollowRequest{Name: info.Name, Dir: mirror, Peers: peers}, func(e FollowEventInfo) {
		if e.Applied && e.Root == info.Root {
			got = e
			fcancel()
		}
	})
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if got.Written != 1 || got.Seq != info.Seq {
		t.Fatalf("event %+v; want 1 file written at sequence %d", got, info.Seq)
	}
	if b, _ := os.ReadFile(filepath.Join(mirror, "a.txt")); string(b) != "one" {
		t.Fatalf("the mirror's a.txt: %q", b)
	}
}
