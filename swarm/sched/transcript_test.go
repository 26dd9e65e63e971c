package sched

import (
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/ with the actual output")

// epoch is the time of a transcript's first event.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// TestTranscripts replays every testdata/*.txt: lines are commands, and the
// lines starting "->" after a command are the actions (or error) it must
// produce. Run with -update to rewrite them. Commands:
//
//	new chunks=N size=BYTES [seed=K] [have=RANGES] [min=W] [max=W]
//	    [inflight=D] [timeout=D] [strikes=N] [dup=N]
//	join A [B ...]            leave A
//	have A all | have A RANGES
//	bitfield A HEX            (hex of the wire bitfield; "-" for none)
//	donthave A RANGES
//	block A RANGES ok|bad|fail
//	misbehave A REASON...
//	choke A | unchoke A
//	tick D                    (advance the clock by D, then Tick)
//	wait D                    (advance the clock only)
//	prio FROM TO | prio off
//	pause | resume
//	stats
//
// RANGES are like 0-3,7. Consecutive requests or cancels of one peer print
// on one line. The scheduler's invariants are checked after every command.
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
	t   *testing.T
	s   *Scheduler
	now time.Time
}

func replay(t *testing.T, in string) string {
	d := &driver{t: t, now: epoch}
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
		res, err := d.run(strings.Fields(cmd))
		if err != nil {
			res = append(res, "error: "+err.Error())
		}
		for _, r := range res {
			out.WriteString("-> " + r + "\n")
		}
		if d.s != nil {
			if err := d.s.check(true); err != nil {
				t.Fatalf("line %d %q: invariant: %v", n+1, cmd, err)
			}
		}
	}
	return out.String()
}

func (d *driver) run(f []string) ([]string, error) {
	if f[0] == "new" {
		return nil, d.newSched(f[1:])
	}
	if d.s == nil {
		d.t.Fatalf("%q before new", f[0])
	}
	s := d.s
	arg := func(k int) string {
		if k >= len(f) {
			d.t.Fatalf("%q: missing argument %d", strings.Join(f, " "), k)
		}
		return f[k]
	}
	var err error
	switch f[0] {
	case "join":
		for _, p := range f[1:] {
			s.PeerJoined(PeerID(p), d.now)
		}
	case "leave":
		s.PeerLeft(PeerID(arg(1)), d.now)
	case "have":
		if arg(2) == "all" {
			err = s.HaveAll(PeerID(arg(1)), d.now)
			break
		}
		for _, i := range d.ranges(arg(2)) {
			if err = s.Have(PeerID(arg(1)), i, d.now); err != nil {
				break
			}
		}
	case "bitfield":
		var b []byte
		if arg(2) != "-" {
			if b, err = hex.DecodeString(arg(2)); err != nil {
				d.t.Fatalf("bitfield %q: %v", arg(2), err)
			}
		}
		err = s.HaveBitfield(PeerID(arg(1)), b, d.now)
	case "donthave":
		for _, i := range d.ranges(arg(2)) {
			if err = s.DontHave(PeerID(arg(1)), i, d.now); err != nil {
				break
			}
		}
	case "block":
		for _, i := range d.ranges(arg(2)) {
			switch arg(3) {
			case "ok":
				err = s.BlockVerified(PeerID(arg(1)), i, d.now)
			case "bad":
				err = s.BlockBad(PeerID(arg(1)), i, d.now)
			case "fail":
				err = s.BlockWriteFailed(PeerID(arg(1)), i, d.now)
			default:
				d.t.Fatalf("block: outcome %q", arg(3))
			}
			if err != nil {
				break
			}
		}
	case "choke":
		err = s.Choke(PeerID(arg(1)), d.now)
	case "unchoke":
		err = s.Unchoke(PeerID(arg(1)), d.now)
	case "misbehave":
		err = s.Misbehaved(PeerID(arg(1)), strings.Join(f[2:], " "), d.now)
	case "tick":
		d.now = d.now.Add(d.dur(arg(1)))
		s.Tick(d.now)
	case "wait":
		d.now = d.now.Add(d.dur(arg(1)))
	case "prio":
		if arg(1) == "off" {
			s.Prioritize(0, 0, d.now)
			break
		}
		s.Prioritize(d.int(arg(1)), d.int(arg(2)), d.now)
	case "pause":
		s.Pause(d.now)
	case "resume":
		s.Resume(d.now)
	case "stats":
		return append(render(s.Actions()), statsLines(s.Stats())...), nil
	default:
		d.t.Fatalf("unknown command %q", f[0])
	}
	return render(s.Actions()), err
}

func (d *driver) newSched(args []string) error {
	cfg := Config{}
	seed := uint64(1)
	var have []int64
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			d.t.Fatalf("new: %q is not key=value", a)
		}
		switch k {
		case "chunks":
			cfg.Chunks = d.int(v)
		case "size":
			cfg.ChunkSize = int(d.int(v))
		case "seed":
			seed = uint64(d.int(v))
		case "have":
			have = d.ranges(v)
		case "min":
			cfg.MinWindow = int(d.int(v))
		case "max":
			cfg.MaxWindow = int(d.int(v))
		case "inflight":
			cfg.InFlight = d.dur(v)
		case "timeout":
			cfg.RequestTimeout = d.dur(v)
		case "strikes":
			cfg.MaxStrikes = int(d.int(v))
		case "dup":
			cfg.EndgameDup = int(d.int(v))
		default:
			d.t.Fatalf("new: unknown key %q", k)
		}
	}
	var wire []byte
	if have != nil {
		b := newBitfield(int32(cfg.Chunks))
		for _, i := range have {
			b.set(int32(i))
		}
		wire = b.wire(int32(cfg.Chunks))
	}
	d.now = epoch
	s, err := New(cfg, wire, rand.New(rand.NewPCG(seed, 0)))
	d.s = s
	return err
}

func (d *driver) int(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d.t.Fatalf("number %q: %v", v, err)
	}
	return n
}

func (d *driver) dur(v string) time.Duration {
	x, err := time.ParseDuration(v)
	if err != nil {
		d.t.Fatalf("duration %q: %v", v, err)
	}
	return x
}

func (d *driver) ranges(v string) []int64 {
	var out []int64
	for _, part := range strings.Split(v, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a := d.int(lo)
		b := a
		if ok {
			b = d.int(hi)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out
}

// render prints actions, joining consecutive requests or cancels of one
// peer on a line.
func render(as []Action) []string {
	var out []string
	for k := 0; k < len(as); {
		a := as[k]
		if a.Kind != Request && a.Kind != Cancel {
			out = append(out, a.String())
			k++
			continue
		}
		line := a.String()
		for k++; k < len(as) && as[k].Kind == a.Kind && as[k].Peer == a.Peer; k++ {
			line += " " + strconv.FormatInt(as[k].Index, 10)
		}
		out = append(out, line)
	}
	return out
}

func statsLines(st Stats) []string {
	out := []string{fmt.Sprintf("stats verified=%d pickable=%d outstanding=%d requests=%d endgame=%v dupblocks=%d timeouts=%d bad=%d",
		st.Verified, st.Pickable, st.Outstanding, st.Requests, st.Endgame, st.DuplicateBlocks, st.Timeouts, st.BadBlocks)}
	for _, p := range st.Peers {
		line := fmt.Sprintf("peer %s have=%d out=%d window=%d rate=%.0f strikes=%d", p.Peer, p.Have, p.Outstanding, p.Window, p.Rate, p.Strikes)
		if p.Seeder {
			line += " seeder"
		}
		if p.Snubbed {
			line += " snubbed"
		}
		if p.Choked {
			line += " choked"
		}
		if p.Banned {
			line += " banned"
		}
		out = append(out, line)
	}
	return out
}
