package simulate

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is what a Run measured. It is a plain value, safe to read from any
// goroutine once Run has returned.
type Report struct {
	Scenario       string  `json:"scenario,omitempty"`
	Peers          int     `json:"peers"` // honest nodes, seeders included
	Seeders        int     `json:"seeders"`
	AdversaryCount int     `json:"adversaries"`
	Seed           uint64  `json:"seed"`
	FileSize       int64   `json:"file_size"`
	ChunkSize      int     `json:"chunk_size"`
	UploadCap      float64 `json:"upload_cap,omitempty"`       // bytes/s per honest node (simulated uplink)
	NodeUploadRate int64   `json:"node_upload_rate,omitempty"` // bytes/s per honest node (node.Config.UploadRate)
	Replay         string  `json:"replay,omitempty"`           // the command that runs it again
	Root           string  `json:"root"`                       // the shared file's root CID

	Schedule []Event `json:"schedule,omitempty"` // the faults as planned
	Events   []Event `json:"events,omitempty"`   // as applied, with the time they were

	Fetchers    int     `json:"fetchers"`
	Completed   int     `json:"completed"`
	SuccessRate float64 `json:"success_rate"`
	Completion  Dist    `json:"completion_seconds"` // of the fetchers that completed, from the start of the fetch phase
	// With free riders (Scenario.FreeRiders): how many, and the completion
	// of those and of the other fetchers apart.
	FreeRiders          int     `json:"free_riders,omitempty"`
	FreeRiderCompletion Dist    `json:"free_rider_completion_seconds,omitzero"`
	TraderCompletion    Dist    `json:"trader_completion_seconds,omitzero"`
	FirstChunk          Dist    `json:"first_chunk_seconds"` // when each fetcher got its first chunk
	Curve               []Point `json:"curve,omitempty"`     // completions over time
	Intact              int     `json:"intact"`              // completed copies whose sha256 equals the original's
	Corrupt             int     `json:"corrupt"`             // completed copies that differ (must be 0)

	SeederUpload    float64     `json:"seeder_upload_x_file"`     // all seeders' upload / file size
	MaxSeederUpload float64     `json:"max_seeder_upload_x_file"` // the busiest seeder's
	BytesUp         int64       `json:"bytes_up"`                 // every honest node's upload
	DuplicateBytes  int64       `json:"duplicate_bytes"`
	Bans            int64       `json:"bans"`
	Lookup          Lookups     `json:"dht_probe_lookups"`
	NodeLookups     NodeLookups `json:"dht_node_lookups"`

	PeersOut    []PeerReport      `json:"peers_detail"`
	Adversaries []AdversaryReport `json:"adversaries_detail,omitempty"`
	Problems    []string          `json:"problems,omitempty"` // invariants that failed
	// HonestBans lists bans of honest peers by honest peers: false
	// positives of the exchange (each is a Problem too).
	HonestBans []string `json:"honest_bans,omitempty"`

	// Outcome is the part of the report that the seed decides: the same
	// on every run of the same Scenario (see Outcome).
	Outcome Outcome `json:"outcome"`

	// Clock is the clock every time in the report but the wall times was
	// read from: "virtual" when the run went inside a testing/synctest
	// bubble (time moved only when every goroutine waited, so the
	// figures do not depend on how busy the machine was), "wall" when it
	// ran on the machine's clock, "unknown" where the machine's clock
	// cannot be read apart from the bubble's.
	Clock        string  `json:"clock"`
	SetupSeconds float64 `json:"setup_seconds"` // file, hosts and links
	StartSeconds float64 `json:"start_seconds"` // nodes started and bootstrapped, shares indexed
	FetchSeconds float64 `json:"fetch_seconds"`
	SimSeconds   float64 `json:"sim_seconds"` // the whole run, on Clock
	// FetchWallSeconds and WallSeconds are the fetch phase and the whole
	// run on the machine's clock, whatever Clock is: what the run cost,
	// not what it simulated.
	FetchWallSeconds float64 `json:"fetch_wall_seconds"`
	WallSeconds      float64 `json:"wall_seconds"`
	// The peaks below are the machine's too: they vary from run to run.
	PeakRSS        int64 `json:"peak_rss_bytes"` // of the whole process (VmHWM)
	PeakGoroutines int   `json:"peak_goroutines"`
	// PeakConns and PeakStreams are the most connections and streams
	// open at once over every host (each counted at both ends), sampled
	// each second.
	PeakConns   int `json:"peak_conns"`
	PeakStreams int `json:"peak_streams"`
}

// Dist summarises a sample.
type Dist struct {
	N    int     `json:"n"`
	Min  float64 `json:"min"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func distOf(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	q := func(p float64) float64 { return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1+0)] }
	var sum float64
	for _, x := range s {
		sum += x
	}
	return Dist{N: len(s), Min: s[0], P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: s[len(s)-1], Mean: sum / float64(len(s))}
}

// Point is one completion: by Seconds, Completed fetchers had finished.
type Point struct {
	Seconds   float64 `json:"s"`
	Completed int     `json:"n"`
}

// Lookups are the DHT lookups a probe node timed after the fetch phase.
type Lookups struct {
	Probes  int    `json:"probes"`
	Found   int    `json:"found"`   // lookups that found a provider
	Seconds Dist   `json:"seconds"` // time to the first provider, of those found
	Error   string `json:"error,omitempty"`
}

// NodeLookups sums the provider lookups the honest nodes made themselves
// (node.Metrics). P50 and P90 are histogram bucket bounds: the quantile is
// at most that.
type NodeLookups struct {
	Count int64   `json:"count"`
	Found int64   `json:"found"`
	Mean  float64 `json:"mean_seconds"`
	P50   float64 `json:"p50_at_most_seconds"`
	P90   float64 `json:"p90_at_most_seconds"`
}

// PeerReport is one honest node.
type PeerReport struct {
	Index      int      `json:"index"`
	IDs        []string `json:"ids"` // one per incarnation
	Seeder     bool     `json:"seeder,omitempty"`
	FreeRider  bool     `json:"free_rider,omitempty"`
	Up         bool     `json:"up"` // running at the end
	Completed  bool     `json:"completed"`
	Intact     bool     `json:"intact,omitempty"`
	Seconds    float64  `json:"seconds,omitempty"`
	FirstChunk float64  `json:"first_chunk,omitempty"`
	Attempts   int      `json:"attempts,omitempty"`
	Restarts   int      `json:"restarts,omitempty"`
	BytesUp    int64    `json:"bytes_up"`
	BytesDown  int64    `json:"bytes_down"`
	// FromSeeders is how much of a completed fetch came from seeders (the
	// rest came from other fetchers).
	FromSeeders int64  `json:"bytes_from_seeders,omitempty"`
	Duplicate   int64  `json:"duplicate_bytes"`
	Rejected    int64  `json:"chunks_rejected,omitempty"`
	Bans        int    `json:"bans,omitempty"`
	LastError   string `json:"last_error,omitempty"`
}

// AdversaryReport is one dishonest peer.
type AdversaryReport struct {
	Kind       AdversaryKind `json:"kind"`
	ID         string        `json:"id"`
	Sessions   int           `json:"sessions"`    // opened or accepted
	Wants      int           `json:"wants"`       // chunk requests received (or, flooding, sent)
	BlocksSent int           `json:"blocks_sent"` // corrupt blocks sent
	SentTo     int           `json:"sent_to"`     // honest peers it sent blocks
	ReadBy     int           `json:"read_by"`     // live honest peers that read a block of it whole
	BannedBy   int           `json:"banned_by"`   // of those, how many ban it now
	Late       int           `json:"late"`        // of those, how many completed as they read it (the fetch may have ended first)
	CutOff     int           `json:"cut_off"`     // flooding sessions the targets ended
}

// OK reports whether every invariant held. Report's methods only read it:
// they are safe for concurrent use.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// ReplayHint says how to run the same simulation again.
func (r *Report) ReplayHint() string {
	if r.Replay != "" {
		return "seed " + fmt.Sprint(r.Seed) + "; replay with: " + r.Replay
	}
	return fmt.Sprintf("seed %d; replay with the same Scenario and Seed: %d", r.Seed, r.Seed)
}

// WriteJSON writes the report as indented JSON. It blocks while w does.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a summary and a table of peers. It blocks
// while w does.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	name := r.Scenario
	if name == "" {
		name = "custom"
	}
	fmt.Fprintf(&b, "scenario %s: %d peers (%d seeders) + %d adversaries, seed %d, file %s in %s chunks", name, r.Peers, r.Seeders, r.AdversaryCount, r.Seed, size(r.FileSize), size(int64(r.ChunkSize)))
	if r.UploadCap > 0 {
		fmt.Fprintf(&b, ", upload cap %s/s per peer", size(int64(r.UploadCap)))
	}
	if r.NodeUploadRate > 0 {
		fmt.Fprintf(&b, ", node upload rate %s/s", size(r.NodeUploadRate))
	}
	b.WriteString("\n")
	for _, e := range r.Events {
		fmt.Fprintf(&b, "  event at %6.2fs (took %.2fs): %s %s\n", e.At.Seconds(), e.Took.Seconds(), e.Kind, peersList(e.Peers))
	}
	fmt.Fprintf(&b, "completed   %d of %d fetchers (%.1f%%); %d copies intact, %d corrupt\n", r.Completed, r.Fetchers, 100*r.SuccessRate, r.Intact, r.Corrupt)
	fmt.Fprintf(&b, "completion  %s\n", r.Completion)
	if r.FreeRiders > 0 {
		fmt.Fprintf(&b, "  traders     %s\n", r.TraderCompletion)
		fmt.Fprintf(&b, "  free riders %s (of %d)\n", r.FreeRiderCompletion, r.FreeRiders)
	}
	fmt.Fprintf(&b, "first chunk %s\n", r.FirstChunk)
	fmt.Fprintf(&b, "seeders     uploaded %.2f× the file (busiest seeder %.2f×); all peers uploaded %s, %s duplicate\n", r.SeederUpload, r.MaxSeederUpload, size(r.BytesUp), size(r.DuplicateBytes))
	if r.Lookup.Probes > 0 || r.Lookup.Error != "" {
		fmt.Fprintf(&b, "probe DHT   %d of %d found a provider; %s", r.Lookup.Found, r.Lookup.Probes, r.Lookup.Seconds)
		if r.Lookup.Error != "" {
			fmt.Fprintf(&b, " (probe: %s)", r.Lookup.Error)
		}
		b.WriteString("\n")
	}
	if r.NodeLookups.Count > 0 {
		fmt.Fprintf(&b, "node DHT    %d provider lookups by the nodes, %d found one; mean %.3fs, p50 ≤ %gs, p90 ≤ %gs\n",
			r.NodeLookups.Count, r.NodeLookups.Found, r.NodeLookups.Mean, r.NodeLookups.P50, r.NodeLookups.P90)
	}
	fmt.Fprintf(&b, "bans        %d (%d of honest peers by honest peers)\n", r.Bans, len(r.HonestBans))
	for _, h := range r.HonestBans {
		fmt.Fprintf(&b, "  %s\n", h)
	}
	for _, a := range r.Adversaries {
		fmt.Fprintf(&b, "adversary   %-8s %s: %d sessions, %d wants, %d corrupt blocks to %d peers, read by %d, banned by %d (%d late), cut off %d times\n",
			a.Kind, short(a.ID), a.Sessions, a.Wants, a.BlocksSent, a.SentTo, a.ReadBy, a.BannedBy, a.Late, a.CutOff)
	}
	fmt.Fprintf(&b, "outcome     sha256 %.16s (completed set, intact copies, identities, faults, invariants: the same on every run of this seed)\n", r.Outcome.Digest())
	fmt.Fprintf(&b, "time        %s clock: setup %.2fs, start %.2fs, fetch %.2fs, total %.2fs", orUnknown(r.Clock), r.SetupSeconds, r.StartSeconds, r.FetchSeconds, r.SimSeconds)
	if r.Clock != "wall" {
		fmt.Fprintf(&b, "; wall clock: fetch %.2fs, total %.2fs", r.FetchWallSeconds, r.WallSeconds)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "machine     peak RSS %s, peak goroutines %d\n", size(r.PeakRSS), r.PeakGoroutines)
	if r.PeakConns > 0 {
		n := r.Peers + r.AdversaryCount
		fmt.Fprintf(&b, "network     peak %d connection ends (%.1f per host), %d stream ends (%.1f per host)\n",
			r.PeakConns, float64(r.PeakConns)/float64(n), r.PeakStreams, float64(r.PeakStreams)/float64(n))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "peer\trole\tdone\tseconds\tfirst\tup\tdown\tdup\tbans\trestarts\tattempts\tsha256\t")
	for _, p := range r.PeersOut {
		role, done, sum := "fetch", "no", ""
		if p.FreeRider {
			role = "free ride"
		}
		if p.Seeder {
			role, done = "seed", "-"
		} else if p.Completed {
			done, sum = "yes", "MISMATCH"
			if p.Intact {
				sum = "ok"
			}
		}
		if !p.Up {
			role += " (down)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\t%.2f\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t\n", p.Index, role, done, p.Seconds, p.FirstChunk,
			size(p.BytesUp), size(p.BytesDown), size(p.Duplicate), p.Bans, p.Restarts, p.Attempts, sum)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var tail strings.Builder
	if len(r.Problems) == 0 {
		tail.WriteString("every invariant held\n")
	} else {
		for _, p := range r.Problems {
			fmt.Fprintf(&tail, "PROBLEM: %s\n", p)
		}
		fmt.Fprintf(&tail, "%s\n", r.ReplayHint())
	}
	_, err := io.WriteString(w, tail.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func (d Dist) String() string {
	if d.N == 0 {
		return "n=0"
	}
	return fmt.Sprintf("n=%d min %.2fs p50 %.2fs p90 %.2fs p99 %.2fs max %.2fs", d.N, d.Min, d.P50, d.P90, d.P99, d.Max)
}

func peersList(p []int) string {
	if len(p) == 0 {
		return ""
	}
	if len(p) > 12 {
		return fmt.Sprintf("%v… (%d peers)", p[:12], len(p))
	}
	return fmt.Sprint(p)
}

func short(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// WriteSVG draws the completion curves of reports (the share of fetchers
// done against seconds since the fetch phase began), one line per report,
// as a standalone SVG document. It needs no network: no fonts, scripts or
// styles are fetched. It blocks while w does and only reads the reports.
func WriteSVG(w io.Writer, reports ...*Report) error {
	const (
		width, height = 720, 420
		left, right   = 60, 180
		top, bottom   = 30, 50
	)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	tmax := 0.0
	for _, r := range reports {
		for _, p := range r.Curve {
			tmax = math.Max(tmax, p.Seconds)
		}
		for _, e := range r.Events {
			tmax = math.Max(tmax, e.At.Seconds())
		}
	}
	step := niceStep(tmax / 6)
	tmax = math.Max(step, math.Ceil(tmax/step)*step)
	x := func(s float64) float64 { return float64(left) + pw*s/tmax }
	y := func(f float64) float64 { return float64(top) + ph*(1-f) }
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">fetchers completed over time</text>`+"\n", left)
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(f), x(tmax), y(f))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%d%%</text>`+"\n", left-6, y(f)+4, i*25)
	}
	for s := 0.0; s <= tmax+step/2; s += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x(s), y(0), x(s), y(1))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(s), y(0)+16, trimFloat(s))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">seconds since the fetch began</text>`+"\n", x(tmax/2), height-10)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, y(0), x(tmax), y(0))
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>`+"\n", left, y(0), left, y(1))
	for i, r := range reports {
		c := colors[i%len(colors)]
		for _, e := range r.Events {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="3,3" opacity="0.5"><title>%s</title></line>`+"\n",
				x(e.At.Seconds()), y(0), x(e.At.Seconds()), y(1), c, html.EscapeString(string(e.Kind)))
		}
		if r.Fetchers > 0 {
			pts := []string{fmt.Sprintf("%.1f,%.1f", x(0), y(0))}
			for _, p := range r.Curve {
				f := float64(p.Completed) / float64(r.Fetchers)
				prev := float64(p.Completed-1) / float64(r.Fetchers)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(p.Seconds), y(prev), x(p.Seconds), y(f)))
			}
			last := 0.0
			if n := len(r.Curve); n > 0 {
				last = float64(r.Curve[n-1].Completed) / float64(r.Fetchers)
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(tmax), y(last)))
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		}
		name := r.Scenario
		if name == "" {
			name = "custom"
		}
		label := fmt.Sprintf("%s (%d peers, seed %d): %d/%d", name, r.Peers+r.AdversaryCount, r.Seed, r.Completed, r.Fetchers)
		ly := top + 10 + 36*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", width-right+10, ly, width-right+30, ly, c)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", width-right+36, ly+4, html.EscapeString(name))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#555">%s</text>`+"\n", width-right+36, ly+18, html.EscapeString(strings.TrimPrefix(label, name+" ")))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceStep rounds a tick interval up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", f), "0"), ".")
}
