package choker

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/ with the actual output")

// epoch is the time of a transcript's first event.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// TestTranscripts replays every testdata/*.txt: lines are commands, and the
// lines starting "->" after a command are the actions it must produce. Run
// with -update to rewrite them. Sessions and peers are named by words; a
// session's peer is named at join. Commands:
//
//	new [slots=N] [turn=N] [optimistic=N] [idle=D] [stuck=D] [check=D]
//	join S PEER [quiet]      leave S
//	want S N                 cancel S N
//	write S                  sent S
//	turn                     (the first slot holder is sent a turn's blocks:
//	                         write and sent, TurnBlocks times; prints who)
//	notint S                 (NOT_INTERESTED)
//	credit PEER BYTES
//	wait D                   (advance the clock)
//	tick                     (a Tick at the current time)
//	state                    (slots, line, next check, sessions, credit)
//
// The choker's invariants are checked after every command.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := replay(t, string(in))
			if got == string(in) {
				return
			}
			if *update {
				if err := os.WriteFile(f, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Errorf("%s differs (run with -update to accept):\n%s", f, firstDiff(string(in), got))
		})
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for k := 0; k < max(len(w), len(g)); k++ {
		var a, b string
		if k < len(w) {
			a = w[k]
		}
		if k < len(g) {
			b = g[k]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n want %q\n  got %q", k+1, a, b)
		}
	}
	return ""
}

type driver struct {
	t     *testing.T
	c     *Choker
	now   time.Time
	ids   map[string]SessionID
	names map[SessionID]string
}

func replay(t *testing.T, in string) string {
	d := &driver{t: t}
	var out strings.Builder
	lines := strings.Split(strings.TrimRight(in, "\n"), "\n")
	for n, line := range lines {
		if strings.HasPrefix(line, "->") {
			continue
		}
		out.WriteString(line + "\n")
		cmd := strings.TrimSpace(line)
		if cmd == "" || strings.HasPrefix(cmd, "#") {
			continue
		}
		for _, r := range d.run(strings.Fields(cmd)) {
			out.WriteString("-> " + r + "\n")
		}
		if d.c != nil {
			if err := d.c.invariants(); err != nil {
				t.Fatalf("line %d %q: invariant: %v", n+1, cmd, err)
			}
		}
	}
	return out.String()
}

func (d *driver) run(f []string) []string {
	arg := func(k int) string {
		if k >= len(f) {
			d.t.Fatalf("%q: missing argument %d", strings.Join(f, " "), k)
		}
		return f[k]
	}
	if f[0] == "new" {
		d.newChoker(f[1:])
		return nil
	}
	if d.c == nil {
		d.t.Fatalf("%q before new", f[0])
	}
	step := func(ev Event) []string {
		ev.At = d.now
		return d.show(d.c.Step(ev))
	}
	switch f[0] {
	case "join":
		if _, ok := d.ids[arg(1)]; !ok {
			id := SessionID(len(d.ids) + 1)
			d.ids[arg(1)], d.names[id] = id, arg(1)
		}
		quiet := len(f) > 3 && f[3] == "quiet"
		return step(Event{Kind: Join, Session: d.ids[arg(1)], Peer: PeerID(arg(2)), Quiet: quiet})
	case "leave":
		return step(Event{Kind: Leave, Session: d.session(arg(1))})
	case "want":
		return step(Event{Kind: Want, Session: d.session(arg(1)), N: d.int(arg(2))})
	case "cancel":
		return step(Event{Kind: Cancel, Session: d.session(arg(1)), N: d.int(arg(2))})
	case "write":
		return step(Event{Kind: Writing, Session: d.session(arg(1))})
	case "sent":
		return step(Event{Kind: Sent, Session: d.session(arg(1))})
	case "notint":
		return step(Event{Kind: NotInterested, Session: d.session(arg(1))})
	case "credit":
		return step(Event{Kind: Credit, Peer: PeerID(arg(1)), N: d.int(arg(2))})
	case "turn":
		if len(d.c.holders) == 0 {
			return []string{"no holder"}
		}
		s := d.c.holders[0].id
		res := []string{"served " + d.names[s]}
		for range d.c.cfg.TurnBlocks {
			res = append(res, step(Event{Kind: Writing, Session: s})...)
			res = append(res, step(Event{Kind: Sent, Session: s})...)
		}
		return res
	case "wait":
		v, err := time.ParseDuration(arg(1))
		if err != nil {
			d.t.Fatal(err)
		}
		d.now = d.now.Add(v)
		return nil
	case "tick":
		return step(Event{Kind: Tick})
	case "state":
		return d.state()
	}
	d.t.Fatalf("unknown command %q", f[0])
	return nil
}

func (d *driver) newChoker(args []string) {
	var cfg Config
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "slots":
			cfg.Slots = d.int(v)
		case "turn":
			cfg.TurnBlocks = d.int(v)
		case "optimistic":
			cfg.OptimisticEvery = d.int(v)
		case "idle", "stuck", "check":
			x, err := time.ParseDuration(v)
			if err != nil {
				d.t.Fatal(err)
			}
			*map[string]*time.Duration{"idle": &cfg.IdleRelease, "stuck": &cfg.StuckRevoke, "check": &cfg.CheckEvery}[k] = x
		default:
			d.t.Fatalf("new: unknown setting %q", a)
		}
	}
	d.c = New(cfg)
	d.now = epoch
	d.ids, d.names = map[string]SessionID{}, map[SessionID]string{}
}

func (d *driver) session(name string) SessionID {
	if id, ok := d.ids[name]; ok {
		return id
	}
	// A session that never joined: a fresh id the choker does not know.
	id := SessionID(1000 + len(d.names))
	d.ids[name], d.names[id] = id, name
	return id
}

func (d *driver) int(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		d.t.Fatalf("%q: %v", v, err)
	}
	return n
}

func (d *driver) show(as []Action) []string {
	var out []string
	for _, a := range as {
		s := a.Kind.String() + " " + d.names[a.Session]
		if a.Kind == Queue || a.Kind == Drop {
			s += " " + strconv.Itoa(a.N)
		}
		out = append(out, s)
	}
	return out
}

func (d *driver) state() []string {
	c := d.c
	names := func(ss []*session) string {
		var n []string
		for _, s := range ss {
			n = append(n, d.names[s.id])
		}
		if len(n) == 0 {
			return "-"
		}
		return strings.Join(n, ",")
	}
	next := "-"
	if at, ok := c.NextCheck(); ok {
		next = "+" + at.Sub(epoch).String()
	}
	out := []string{fmt.Sprintf("t=+%v slots=%s line=%s grants=%d check=%s", d.now.Sub(epoch), names(c.holders), names(c.waiting), c.grants, next)}
	ids := make([]SessionID, 0, len(c.sessions))
	for id := range c.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := c.sessions[id]
		line := fmt.Sprintf("session %s peer=%s wants=%d turn=%d idle=%v", d.names[id], s.peer.id, s.wants, s.turn, d.now.Sub(s.active))
		for _, f := range []struct {
			on   bool
			name string
		}{{s.quiet, "quiet"}, {s.slot, "slot"}, {s.queued, "queued"}, {s.choked, "choked"}, {s.writing, "writing"}} {
			if f.on {
				line += " " + f.name
			}
		}
		out = append(out, line)
	}
	peers := make([]string, 0, len(c.peers))
	for p := range c.peers {
		peers = append(peers, string(p))
	}
	slices.Sort(peers)
	for _, p := range peers {
		out = append(out, fmt.Sprintf("peer %s credit=%.0f sessions=%d", p, c.Credited(PeerID(p), d.now), c.peers[PeerID(p)].sessions))
	}
	return out
}

// invariants returns the first broken invariant, or nil.
func (c *Choker) invariants() error {
	if len(c.holders) > c.cfg.Slots {
		return fmt.Errorf("%d holders, %d slots", len(c.holders), c.cfg.Slots)
	}
	if len(c.waiting) > 0 && len(c.holders) < c.cfg.Slots {
		return fmt.Errorf("%d wait while %d of %d slots are held", len(c.waiting), len(c.holders), c.cfg.Slots)
	}
	if len(c.waiting) > 0 && c.checkAt.IsZero() {
		return fmt.Errorf("%d wait and no check is due", len(c.waiting))
	}
	seen := map[*session]bool{}
	for _, s := range c.holders {
		if seen[s] || !s.slot || s.queued || s.choked || c.sessions[s.id] != s {
			return fmt.Errorf("holder %d: slot=%v queued=%v choked=%v", s.id, s.slot, s.queued, s.choked)
		}
		seen[s] = true
	}
	for _, s := range c.waiting {
		if seen[s] || s.slot || !s.queued || !s.choked || c.sessions[s.id] != s {
			return fmt.Errorf("waiting %d: slot=%v queued=%v choked=%v", s.id, s.slot, s.queued, s.choked)
		}
		seen[s] = true
	}
	refs := map[*peerState]int{}
	for _, s := range c.sessions {
		if (s.slot || s.queued) != seen[s] {
			return fmt.Errorf("session %d: slot=%v queued=%v but not in its list", s.id, s.slot, s.queued)
		}
		if s.wants < 0 || s.choked && !s.quiet && s.wants > 0 {
			return fmt.Errorf("session %d: %d wants, choked=%v", s.id, s.wants, s.choked)
		}
		if c.peers[s.peer.id] != s.peer {
			return fmt.Errorf("session %d: its peer %s is forgotten", s.id, s.peer.id)
		}
		refs[s.peer]++
	}
	for _, p := range c.peers {
		if refs[p] != p.sessions {
			return fmt.Errorf("peer %s: %d sessions, counted %d", p.id, refs[p], p.sessions)
		}
	}
	return nil
}
