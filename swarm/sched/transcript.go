package sched

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A transcript is a Scheduler's life in text, one command a line, as the
// golden files in testdata/ hold it and as a Recorder writes it:
//
//	new chunks=N size=BYTES [sizes=BYTES*COUNT,...] [seed=K] [seq=K]
//	    [have=RANGES] [min=W] [max=W] [inflight=D] [timeout=D] [strikes=N] [dup=N]
//	join A [B ...]            leave A
//	have A all | have A RANGES
//	bitfield A HEX            (hex of the wire bitfield; "-" for none)
//	donthave A RANGES
//	block A RANGES ok|bad|fail
//	misbehave A REASON...     (or a Go-quoted REASON)
//	choke A | unchoke A
//	tick [D]                  (advance the clock by D, then Tick)
//	wait D                    (advance the clock only)
//	prio FROM TO | prio off
//	pause | resume
//	stats
//
// Each line but new, wait and stats is one or more Events (see
// Event.String for the form of one); RANGES are like 0-3,7. A line that
// starts "->" is what the command before it gave: the actions (requests
// or cancels of one peer that follow each other on one line), an error, or
// the stats. Lines starting with # are comments. The clock starts at
// 2000-01-01 00:00 UTC, where a testing/synctest bubble's clock starts too.

// transcriptEpoch returns the time of a transcript's start.
func transcriptEpoch() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }

// Parser reads the event lines of a transcript, keeping its clock.
// The zero Parser starts at the transcript epoch (see above). It is not
// safe for concurrent use; no method blocks.
type Parser struct {
	now     time.Time
	started bool
}

// Now returns the parser's clock: the time of the events it returns next.
func (p *Parser) Now() time.Time {
	if !p.started {
		return transcriptEpoch()
	}
	return p.now
}

// Parse returns the events of one line: none for "wait D" (which moves the
// clock), a blank line or a comment, one or more for the others. A line
// that is not an event line (new, stats, "->") or is malformed is refused
// with an error wrapping ErrTranscript that says what is wrong; the clock
// is unchanged then.
func (p *Parser) Parse(line string) ([]Event, error) {
	if !p.started {
		p.now, p.started = transcriptEpoch(), true
	}
	f := strings.Fields(line)
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return nil, nil
	}
	bad := func(format string, a ...any) ([]Event, error) {
		return nil, fmt.Errorf("%w: %q: %s", ErrTranscript, line, fmt.Sprintf(format, a...))
	}
	lo, hi := arity(f[0])
	switch {
	case lo < 0:
		return bad("unknown command %q", f[0])
	case len(f)-1 < lo || len(f)-1 > hi:
		return bad("wrong number of arguments")
	}
	now := p.now
	ev := func(k EventKind) Event { return Event{Kind: k, Time: now} }
	var out []Event
	switch f[0] {
	case "wait", "tick":
		var d time.Duration
		if len(f) == 2 {
			var err error
			if d, err = time.ParseDuration(f[1]); err != nil || d < 0 {
				return bad("%q is not a duration of 0 or more", f[1])
			}
		}
		p.now = p.now.Add(d)
		if f[0] == "tick" {
			return []Event{{Kind: Tick, Time: p.now}}, nil
		}
		return nil, nil
	case "pause":
		return []Event{ev(Pause)}, nil
	case "resume":
		return []Event{ev(Resume)}, nil
	case "prio":
		e := ev(Prioritize)
		if len(f) == 2 {
			if f[1] != "off" {
				return bad("want prio FROM TO or prio off")
			}
			return []Event{e}, nil
		}
		var err1, err2 error
		e.Index, err1 = strconv.ParseInt(f[1], 10, 64)
		e.To, err2 = strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return bad("want prio FROM TO with whole numbers")
		}
		return []Event{e}, nil
	case "join":
		for _, id := range f[1:] {
			e := ev(PeerJoined)
			e.Peer = PeerID(id)
			out = append(out, e)
		}
		return out, nil
	}
	e := ev(0)
	e.Peer = PeerID(f[1])
	switch f[0] {
	case "leave":
		e.Kind = PeerLeft
	case "choke":
		e.Kind = Choke
	case "unchoke":
		e.Kind = Unchoke
	case "bitfield":
		e.Kind = HaveBitfield
		if f[2] != "-" {
			b, err := hex.DecodeString(f[2])
			if err != nil {
				return bad("bitfield %q is not hex: %v", f[2], err)
			}
			e.Bits = b
		}
	case "misbehave":
		e.Kind = Misbehaved
		// The rest of the line after the peer, as it stands.
		rest := strings.TrimLeftFunc(line, unicode.IsSpace)
		rest = strings.TrimLeftFunc(rest[len(f[0]):], unicode.IsSpace)
		rest = strings.TrimSpace(rest[len(f[1]):])
		if strings.HasPrefix(rest, `"`) {
			r, err := strconv.Unquote(rest)
			if err != nil {
				return bad("reason %s is not a quoted string: %v", rest, err)
			}
			e.Reason = r
		} else {
			e.Reason = strings.Join(f[2:], " ")
		}
	case "have", "donthave", "block":
		if f[0] == "have" && f[2] == "all" {
			e.Kind = HaveAll
			break
		}
		e.Kind = Have
		if f[0] == "donthave" {
			e.Kind = DontHave
		} else if f[0] == "block" {
			switch f[3] {
			case "ok":
				e.Kind = BlockVerified
			case "bad":
				e.Kind = BlockBad
			case "fail":
				e.Kind = BlockWriteFailed
			default:
				return bad("outcome %q is not ok, bad or fail", f[3])
			}
		}
		err := parseRanges(f[2], maxLineEvents, func(i int64) {
			e.Index = i
			out = append(out, e)
		})
		if err != nil {
			return bad("%v", err)
		}
		return out, nil
	}
	return []Event{e}, nil
}

// arity returns the least and the most arguments an event line's command
// takes; lo is -1 for an unknown command.
func arity(cmd string) (lo, hi int) {
	switch cmd {
	case "pause", "resume":
		return 0, 0
	case "tick":
		return 0, 1
	case "leave", "choke", "unchoke", "wait":
		return 1, 1
	case "prio":
		return 1, 2
	case "have", "bitfield", "donthave":
		return 2, 2
	case "block":
		return 3, 3
	case "misbehave":
		return 2, math.MaxInt
	case "join":
		return 1, math.MaxInt
	}
	return -1, -1
}

// maxLineEvents bounds the events one transcript line may name ("have A
// 0-99"), so that a line cannot make a parser allocate without bound.
const maxLineEvents = 1 << 16

// parseRanges calls f for each index of RANGES (like 0-3,7; a lone index
// may be negative), in order, and refuses more than limit indices in all.
func parseRanges(v string, limit int64, f func(i int64)) error {
	var count int64
	for part := range strings.SplitSeq(v, ",") {
		a, err := strconv.ParseInt(part, 10, 64)
		b := a
		if err != nil {
			k := strings.Index(part[min(1, len(part)):], "-") + 1
			if k <= 0 {
				return fmt.Errorf("%q is not an index or a range", part)
			}
			var err1, err2 error
			a, err1 = strconv.ParseInt(part[:k], 10, 64)
			b, err2 = strconv.ParseInt(part[k+1:], 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("%q is not an index or a range", part)
			}
		}
		if b < a {
			continue
		}
		if b-a < 0 || b-a >= limit-count {
			return fmt.Errorf("ranges %q name more than %d indices", v, limit)
		}
		count += b - a + 1
		for i := a; ; i++ {
			f(i)
			if i == b { // b may be the largest int64
				break
			}
		}
	}
	return nil
}

// formatRanges writes the set bits of the wire bitfield of n chunks as
// RANGES.
func formatRanges(b []byte, n int64) string {
	var s strings.Builder
	for i := int64(0); i < n; i++ {
		if b[i/8]&(0x80>>(i%8)) == 0 {
			continue
		}
		j := i
		for j+1 < n && b[(j+1)/8]&(0x80>>((j+1)%8)) != 0 {
			j++
		}
		if s.Len() > 0 {
			s.WriteByte(',')
		}
		s.WriteString(strconv.FormatInt(i, 10))
		if j > i {
			s.WriteByte('-')
			s.WriteString(strconv.FormatInt(j, 10))
		}
		i = j
	}
	return s.String()
}

// Printer writes events as the lines of a transcript, with the time
// between them as "wait D" lines (or in "tick D"). Times that go backwards
// print as no wait: the scheduler's clock never goes back. It is not safe
// for concurrent use; no method blocks.
type Printer struct {
	now time.Time
}

// NewPrinter returns a Printer for a transcript that starts at start: the
// first event waits for the time from start to its own.
func NewPrinter(start time.Time) *Printer { return &Printer{now: start} }

// AppendEvent appends e to b as a transcript line, after a "wait D" line if
// its time is later than the last event's. An event that has no text form
// (see Event.String) is refused with an error wrapping ErrTranscript and b
// is returned as it was.
func (p *Printer) AppendEvent(b []byte, e Event) ([]byte, error) {
	n := len(b)
	var tick time.Duration
	for e.Time.After(p.now) {
		d := e.Time.Sub(p.now) // at most 292 years: then more than one wait
		if e.Kind == Tick && p.now.Add(d).Equal(e.Time) {
			tick = d
			break
		}
		b = append(append(append(b, "wait "...), d.String()...), '\n')
		p.now = p.now.Add(d)
	}
	b, err := e.AppendText(b)
	if err != nil {
		return b[:n], err
	}
	if tick > 0 {
		b = append(append(b, ' '), tick.String()...)
		p.now = e.Time
	}
	return append(b, '\n'), nil
}

// Header is the "new" line of a transcript: what New needs.
type Header struct {
	// Config is the Scheduler's; its SizeOf is replaced by Sizes.
	Config Config
	// Sizes, if not empty, gives every chunk's size: runs of Count chunks
	// of Size bytes, in index order, counting Config.Chunks in all. Empty
	// means every chunk is Config.ChunkSize bytes.
	Sizes []SizeRun
	// Have is the resume bitfield given to New (nil for none).
	Have []byte
	// Seed and Seq seed the rng: rand.New(rand.NewPCG(Seed, Seq)).
	Seed, Seq uint64
}

// SizeRun is Count chunks of Size bytes.
type SizeRun struct {
	Size  int
	Count int64
}

// NewHeader describes the Scheduler New(cfg, have, rand.New(rand.NewPCG(seed,
// seq))) makes, calling cfg.SizeOf once per chunk.
func NewHeader(cfg Config, have []byte, seed, seq uint64) Header {
	h := Header{Config: cfg, Have: have, Seed: seed, Seq: seq}
	h.Config.SizeOf = nil
	if cfg.SizeOf == nil || cfg.Chunks < 1 || cfg.Chunks > MaxChunks {
		return h
	}
	s := &Scheduler{cfg: cfg}
	uniform := true
	for i := range int32(cfg.Chunks) {
		z := s.size(i)
		if n := len(h.Sizes); n > 0 && h.Sizes[n-1].Size == z {
			h.Sizes[n-1].Count++
		} else {
			h.Sizes = append(h.Sizes, SizeRun{z, 1})
		}
		uniform = uniform && z == cfg.ChunkSize
	}
	if uniform {
		h.Sizes = nil
	}
	return h
}

// New returns the Scheduler the header describes.
func (h Header) New() (*Scheduler, error) {
	cfg := h.Config
	if len(h.Sizes) > 0 {
		var total int64
		ends := make([]int64, len(h.Sizes))
		for k, r := range h.Sizes {
			if r.Count < 1 || r.Size < 1 || r.Size > MaxChunkSize {
				return nil, fmt.Errorf("%w: sizes: run %d of %d chunks of %d bytes", ErrConfig, k, r.Count, r.Size)
			}
			total += r.Count
			if total > cfg.Chunks {
				break
			}
			ends[k] = total
		}
		if total != cfg.Chunks {
			return nil, fmt.Errorf("%w: sizes count %d chunks, not %d", ErrConfig, total, cfg.Chunks)
		}
		runs := slices.Clone(h.Sizes)
		cfg.SizeOf = func(i int64) int {
			k, found := slices.BinarySearch(ends, i+1)
			if !found && k >= len(runs) {
				return 0
			}
			return runs[k].Size
		}
	}
	return New(cfg, h.Have, rand.New(rand.NewPCG(h.Seed, h.Seq)))
}

// String returns the header's "new" line.
func (h Header) String() string {
	c := h.Config
	var b strings.Builder
	fmt.Fprintf(&b, "new chunks=%d size=%d", c.Chunks, c.ChunkSize)
	if len(h.Sizes) > 0 {
		b.WriteString(" sizes=")
		for k, r := range h.Sizes {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d*%d", r.Size, r.Count)
		}
	}
	fmt.Fprintf(&b, " seed=%d", h.Seed)
	if h.Seq != 0 {
		fmt.Fprintf(&b, " seq=%d", h.Seq)
	}
	if h.Have != nil && c.Chunks >= 1 && int64(len(h.Have)) == (c.Chunks+7)/8 {
		if r := formatRanges(h.Have, c.Chunks); r != "" {
			fmt.Fprintf(&b, " have=%s", r)
		}
	}
	for _, kv := range []struct {
		k string
		v int64
	}{{"min", int64(c.MinWindow)}, {"max", int64(c.MaxWindow)}, {"strikes", int64(c.MaxStrikes)}, {"dup", int64(c.EndgameDup)}} {
		if kv.v != 0 {
			fmt.Fprintf(&b, " %s=%d", kv.k, kv.v)
		}
	}
	if c.InFlight != 0 {
		fmt.Fprintf(&b, " inflight=%s", c.InFlight)
	}
	if c.RequestTimeout != 0 {
		fmt.Fprintf(&b, " timeout=%s", c.RequestTimeout)
	}
	return b.String()
}

// ParseHeader parses a "new" line. Seed defaults to 1.
func ParseHeader(line string) (Header, error) {
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "new" {
		return Header{}, fmt.Errorf("%w: %q is not a new line", ErrTranscript, line)
	}
	h := Header{Seed: 1}
	bad := func(format string, a ...any) (Header, error) {
		return Header{}, fmt.Errorf("%w: %q: %s", ErrTranscript, line, fmt.Sprintf(format, a...))
	}
	var have string
	for _, a := range f[1:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return bad("%q is not key=value", a)
		}
		var n int64
		var d time.Duration
		var err error
		switch k {
		case "inflight", "timeout":
			d, err = time.ParseDuration(v)
		case "seed", "seq":
			var u uint64
			u, err = strconv.ParseUint(v, 10, 64)
			if k == "seed" {
				h.Seed = u
			} else {
				h.Seq = u
			}
		case "have", "sizes":
		default:
			n, err = strconv.ParseInt(v, 10, 64)
			if err == nil && n != int64(int(n)) {
				err = fmt.Errorf("too large")
			}
		}
		if err != nil {
			return bad("%s=%q: %v", k, v, err)
		}
		switch k {
		case "chunks":
			h.Config.Chunks = n
		case "size":
			h.Config.ChunkSize = int(n)
		case "min":
			h.Config.MinWindow = int(n)
		case "max":
			h.Config.MaxWindow = int(n)
		case "strikes":
			h.Config.MaxStrikes = int(n)
		case "dup":
			h.Config.EndgameDup = int(n)
		case "inflight":
			h.Config.InFlight = d
		case "timeout":
			h.Config.RequestTimeout = d
		case "have":
			have = v
		case "sizes":
			for run := range strings.SplitSeq(v, ",") {
				z, c, ok := strings.Cut(run, "*")
				size, err1 := strconv.Atoi(z)
				count, err2 := strconv.ParseInt(c, 10, 64)
				if !ok || err1 != nil || err2 != nil || len(h.Sizes) >= MaxChunks {
					return bad("sizes: %q is not BYTES*COUNT", run)
				}
				h.Sizes = append(h.Sizes, SizeRun{size, count})
			}
		case "seed", "seq":
		default:
			return bad("unknown key %q", k)
		}
	}
	if have != "" {
		n := h.Config.Chunks
		if n < 1 || n > MaxChunks {
			return bad("have= needs chunks in [1, %d]", MaxChunks)
		}
		h.Have = make([]byte, (n+7)/8)
		var out []int64 // the first index out of range
		err := parseRanges(have, n, func(i int64) {
			if i < 0 || i >= n {
				if out == nil {
					out = []int64{i}
				}
			} else {
				h.Have[i/8] |= 0x80 >> (i % 8)
			}
		})
		if err != nil {
			return bad("have: %v", err)
		}
		if out != nil {
			return bad("have: chunk %d not in [0, %d)", out[0], n)
		}
		if !slices.ContainsFunc(h.Have, func(b byte) bool { return b != 0 }) {
			h.Have = nil // empty ranges: nothing had, as with no have=
		}
	}
	return h, nil
}

// Replay runs the transcript in through new Schedulers, one per "new"
// line, and returns it with the lines each command gives ("->" lines; those
// of in are dropped, and so are blank lines at its end), so that a
// transcript replays to itself when the Scheduler still takes the
// decisions it records. check, if not nil, is called after each command. A
// malformed line ends it with an error wrapping ErrTranscript that gives
// the line number.
func Replay(in string, check func(*Scheduler) error) (string, error) {
	var out strings.Builder
	var s *Scheduler
	var p Parser
	for n, line := range strings.Split(strings.TrimRight(in, "\n"), "\n") {
		if strings.HasPrefix(line, "->") {
			continue
		}
		out.WriteString(line + "\n")
		res, err := replayLine(&s, &p, line)
		if err != nil {
			return "", fmt.Errorf("line %d: %w", n+1, err)
		}
		for _, r := range res {
			out.WriteString("-> " + r + "\n")
		}
		if s != nil && check != nil {
			if err := check(s); err != nil {
				return "", fmt.Errorf("line %d %q: %w", n+1, line, err)
			}
		}
	}
	return out.String(), nil
}

// replayLine runs one line; the lines it returns are what the line gave.
func replayLine(s **Scheduler, p *Parser, line string) ([]string, error) {
	f := strings.Fields(line)
	switch {
	case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		return nil, nil
	case f[0] == "new":
		h, err := ParseHeader(line)
		if err != nil {
			return nil, err
		}
		*p = Parser{}
		sch, err := h.New()
		*s = sch
		if err != nil {
			return []string{"error: " + err.Error()}, nil
		}
		return nil, nil
	case *s == nil:
		return nil, fmt.Errorf("%w: %q before new", ErrTranscript, f[0])
	case f[0] == "stats" && len(f) == 1:
		return append(RenderActions((*s).drain()), StatsLines((*s).Stats())...), nil
	}
	evs, err := p.Parse(line)
	if err != nil {
		return nil, err
	}
	var acts []Action
	for _, e := range evs {
		as, err := (*s).Step(e)
		acts = append(acts, as...)
		if err != nil {
			return append(RenderActions(acts), "error: "+err.Error()), nil
		}
	}
	return RenderActions(acts), nil
}

// RenderActions prints actions as the "->" lines of a transcript (without
// the "-> "), joining consecutive requests or cancels of one peer on a
// line.
func RenderActions(as []Action) []string {
	var out []string
	for k := 0; k < len(as); {
		a := as[k]
		if a.Kind == Ban && strings.ContainsFunc(a.Reason, unicode.IsControl) {
			// One line, whatever the reason holds.
			out = append(out, fmt.Sprintf("ban %s: %q", a.Peer, a.Reason))
			k++
			continue
		}
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

// StatsLines prints the answer to a transcript's "stats" command.
func StatsLines(st Stats) []string {
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

// Recorder writes a transcript of one Scheduler as it runs: its "new"
// line, then each event with the actions it gave (or the error), so that
// Replay of what it wrote gives it back unchanged, the Scheduler being
// deterministic. It is not safe for concurrent use.
type Recorder struct {
	p Printer
}

// NewRecorder returns a Recorder for the Scheduler h.New makes, made at
// time start, and the transcript's first line.
func NewRecorder(h Header, start time.Time) (*Recorder, []byte) {
	return &Recorder{p: Printer{now: start}}, []byte(h.String() + "\n")
}

// Record appends to b the lines of e and of what Step returned for it. An
// event that has no text form is refused with an error wrapping
// ErrTranscript, and b is returned as it was (a replay will differ).
func (r *Recorder) Record(b []byte, e Event, acts []Action, stepErr error) ([]byte, error) {
	b, err := r.p.AppendEvent(b, e)
	if err != nil {
		return b, err
	}
	for _, l := range RenderActions(acts) {
		b = append(append(append(b, "-> "...), l...), '\n')
	}
	if stepErr != nil {
		b = append(append(append(b, "-> error: "...), stepErr.Error()...), '\n')
	}
	return b, nil
}
