package benchrec

// Kubo beside a benchmark: when PEER_BENCH_KUBO names an ipfs binary, a
// benchmark starts two Kubo nodes with repositories in temporary
// directories, on loopback only, and times Kubo's `ipfs get` and `ipfs cat`
// of the same file in the same run, so that the ratio to Kubo is measured,
// not remembered.
//
// Nothing of it may reach past the machine: the repositories are made with
// the test profile and then set explicitly to listen on 127.0.0.1 only,
// with no bootstrap peers, no mDNS, no routing (Routing.Type none: no DHT),
// no NAT port mapping (UPnP multicasts), no relays, no AutoNAT service, no
// AutoConf (Kubo 0.38 on fetches its bootstrap list), no AutoTLS, and
// telemetry off; the configuration is read back and checked before a
// daemon starts. The nodes meet only through an explicit `ipfs swarm
// connect` to the other's loopback multiaddr.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EnvKubo names the ipfs binary to measure against.
const EnvKubo = "PEER_BENCH_KUBO"

// ErrKubo is wrapped by every error of the Kubo helpers.
var ErrKubo = errors.New("benchrec: kubo")

// KuboBinary returns the ipfs binary that getenv(EnvKubo) names, or "" when
// the variable is unset (the benchmark then skips Kubo). A name that is not
// an executable file is an error that says what to set.
func KuboBinary(getenv func(string) string) (string, error) {
	name := getenv(EnvKubo)
	if name == "" {
		return "", nil
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s=%q is not an executable ipfs binary (%v); set it to the path of Kubo's ipfs command, or unset it to skip the comparison",
			ErrKubo, EnvKubo, name, err)
	}
	return path, nil
}

// kuboSetting is one `ipfs config` setting: a key and its JSON value.
type kuboSetting struct {
	key, json string
	// optional settings are missing from older Kubo versions, where
	// setting them may fail; checkKuboConfig still refuses a
	// configuration that has them with a value that reaches out.
	optional bool
}

// kuboSettings returns the settings that keep a node on loopback, away
// from every public peer and service.
func kuboSettings() []kuboSetting {
	return []kuboSetting{
		{key: "Addresses.Swarm", json: `["/ip4/127.0.0.1/tcp/0"]`},
		{key: "Addresses.API", json: `"/ip4/127.0.0.1/tcp/0"`},
		{key: "Addresses.Gateway", json: `"/ip4/127.0.0.1/tcp/0"`},
		{key: "Addresses.Announce", json: `[]`},
		{key: "Addresses.AppendAnnounce", json: `[]`},
		{key: "Bootstrap", json: `[]`},
		{key: "Peering.Peers", json: `[]`},
		{key: "Discovery.MDNS.Enabled", json: `false`},
		{key: "Routing.Type", json: `"none"`},
		{key: "Swarm.DisableNatPortMap", json: `true`},
		{key: "Swarm.RelayClient.Enabled", json: `false`},
		{key: "Swarm.RelayService.Enabled", json: `false`},
		{key: "AutoNAT.ServiceMode", json: `"disabled"`},
		{key: "AutoConf.Enabled", json: `false`, optional: true},
		{key: "AutoTLS.Enabled", json: `false`, optional: true},
		{key: "Plugins.Plugins.telemetry.Config.Mode", json: `"off"`, optional: true},
	}
}

// kuboEnv returns env without any IPFS_PATH, with the repository dir and
// telemetry off.
func kuboEnv(env []string, dir string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "IPFS_PATH=") || strings.HasPrefix(kv, "IPFS_TELEMETRY=")
	})
	return append(out, "IPFS_PATH="+dir, "IPFS_TELEMETRY=off")
}

// checkKuboConfig reads `ipfs config show` and returns an error naming
// every setting that could reach past the machine.
func checkKuboConfig(show []byte) error {
	var c struct {
		Addresses struct {
			Swarm, Announce, AppendAnnounce []string
			API, Gateway                    any // a string or a list
		}
		Bootstrap []string
		Peering   struct{ Peers []any }
		Discovery struct{ MDNS struct{ Enabled *bool } }
		Routing   struct{ Type *string }
		Swarm     struct {
			DisableNatPortMap bool
			RelayClient       struct{ Enabled *bool }
			RelayService      struct{ Enabled *bool }
		}
		AutoNAT  struct{ ServiceMode string }
		AutoConf *struct{ Enabled *bool }
	}
	if err := json.Unmarshal(show, &c); err != nil {
		return fmt.Errorf("%w: reading the configuration: %v", ErrKubo, err)
	}
	var bad []string
	addrs := func(what string, v any) {
		var list []string
		switch v := v.(type) {
		case string:
			list = []string{v}
		case []any:
			for _, a := range v {
				s, _ := a.(string)
				list = append(list, s)
			}
		case []string:
			list = v
		}
		for _, a := range list {
			if !loopbackAddr(a) {
				bad = append(bad, fmt.Sprintf("%s %q is not a 127.0.0.1 address", what, a))
			}
		}
	}
	addrs("Addresses.Swarm", c.Addresses.Swarm)
	addrs("Addresses.API", c.Addresses.API)
	addrs("Addresses.Gateway", c.Addresses.Gateway)
	addrs("Addresses.Announce", c.Addresses.Announce)
	addrs("Addresses.AppendAnnounce", c.Addresses.AppendAnnounce)
	if len(c.Addresses.Swarm) == 0 {
		bad = append(bad, "Addresses.Swarm is empty")
	}
	if len(c.Bootstrap) > 0 {
		bad = append(bad, fmt.Sprintf("Bootstrap has %d peers", len(c.Bootstrap)))
	}
	if len(c.Peering.Peers) > 0 {
		bad = append(bad, fmt.Sprintf("Peering.Peers has %d peers", len(c.Peering.Peers)))
	}
	if e := c.Discovery.MDNS.Enabled; e == nil || *e {
		bad = append(bad, "Discovery.MDNS.Enabled is not false")
	}
	if r := c.Routing.Type; r == nil || *r != "none" {
		bad = append(bad, "Routing.Type is not none")
	}
	if !c.Swarm.DisableNatPortMap {
		bad = append(bad, "Swarm.DisableNatPortMap is not true")
	}
	if e := c.Swarm.RelayClient.Enabled; e == nil || *e {
		bad = append(bad, "Swarm.RelayClient.Enabled is not false")
	}
	if e := c.Swarm.RelayService.Enabled; e == nil || *e {
		bad = append(bad, "Swarm.RelayService.Enabled is not false")
	}
	if c.AutoNAT.ServiceMode != "disabled" {
		bad = append(bad, "AutoNAT.ServiceMode is not disabled")
	}
	if c.AutoConf != nil && (c.AutoConf.Enabled == nil || *c.AutoConf.Enabled) {
		bad = append(bad, "AutoConf.Enabled is not false")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: the repository could reach past the machine: %s", ErrKubo, strings.Join(bad, "; "))
	}
	return nil
}

// loopbackAddr reports whether a multiaddr is /ip4/127.x.x.x/… .
func loopbackAddr(a string) bool {
	rest, ok := strings.CutPrefix(a, "/ip4/")
	if !ok {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parseKuboID returns the multiaddr, with /p2p/ID, that `ipfs id` says the
// node listens on over TCP on 127.0.0.1.
func parseKuboID(out []byte) (string, error) {
	var id struct {
		ID        string
		Addresses []string
	}
	if err := json.Unmarshal(out, &id); err != nil {
		return "", fmt.Errorf("%w: reading `ipfs id`: %v", ErrKubo, err)
	}
	for _, a := range id.Addresses {
		if loopbackAddr(a) && strings.Contains(a, "/tcp/") && !strings.Contains(a, "/ws") {
			if !strings.Contains(a, "/p2p/") {
				a += "/p2p/" + id.ID
			}
			return a, nil
		}
	}
	return "", fmt.Errorf("%w: `ipfs id` lists no TCP address on 127.0.0.1 among %q", ErrKubo, id.Addresses)
}

// parseKuboAdd returns the CID that `ipfs add -Q` printed.
func parseKuboAdd(out []byte) (string, error) {
	f := strings.Fields(string(out))
	if len(f) != 1 || !isCIDText(f[0]) {
		return "", fmt.Errorf("%w: `ipfs add -Q` printed %q, want one CID", ErrKubo, out)
	}
	return f[0], nil
}

// isCIDText reports whether s looks like a CID's text: letters and digits.
func isCIDText(s string) bool {
	if len(s) < 10 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// kuboAddArgs are the arguments of `ipfs add` that give the chunk CIDs of
// peer's fixed chunking of size bytes (raw leaves, CIDv1).
func kuboAddArgs(path string, size int) []string {
	return []string{"add", "-Q", "--pin=true", "--raw-leaves", "--cid-version=1", "--chunker=size-" + strconv.Itoa(size), path}
}

// KuboNode is a Kubo daemon with its repository in a directory of its own.
// Its methods are not safe for concurrent use.
type KuboNode struct {
	bin, dir string
	daemon   *exec.Cmd
	done     chan struct{} // closed when the daemon has exited
	waitErr  error         // the daemon's exit, once done is closed
	stderr   *tailBuffer
}

// StartKubo makes a repository in dir (which must not hold one), sets it to
// loopback only (see the top of this file), checks the configuration, and
// starts the daemon, waiting until it is ready or ctx ends. Close stops it.
func StartKubo(ctx context.Context, bin, dir string) (*KuboNode, error) {
	n := &KuboNode{bin: bin, dir: dir, stderr: &tailBuffer{max: 4 << 10}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKubo, err)
	}
	if _, err := n.run(ctx, nil, "init", "--profile=test", "--empty-repo"); err != nil {
		return nil, err
	}
	for _, s := range kuboSettings() {
		if _, err := n.run(ctx, nil, "config", "--json", s.key, s.json); err != nil && !s.optional {
			return nil, err
		}
	}
	show, err := n.run(ctx, nil, "config", "show")
	if err != nil {
		return nil, err
	}
	if err := checkKuboConfig(show); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "daemon", "--init=false", "--migrate=false", "--enable-gc=false")
	cmd.Env = kuboEnv(os.Environ(), dir)
	cmd.Stderr = n.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKubo, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: starting the daemon: %v", ErrKubo, err)
	}
	n.daemon, n.done = cmd, make(chan struct{})
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		// Read the daemon's output until it ends (so that it never
		// blocks on a full pipe), noting when it says it is ready.
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Daemon is ready") {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, out)
		n.waitErr = cmd.Wait()
		close(n.done)
	}()
	select {
	case <-ready:
		return n, nil
	case <-n.done:
		return nil, fmt.Errorf("%w: the daemon exited before it was ready: %v; its stderr ends: %s", ErrKubo, n.waitErr, n.stderr)
	case <-ctx.Done():
		n.Close()
		return nil, fmt.Errorf("%w: the daemon was not ready: %v", ErrKubo, ctx.Err())
	}
}

// run runs `ipfs args…` on the node's repository and returns its stdout;
// stdout goes to w instead when w is not nil.
func (n *KuboNode) run(ctx context.Context, w io.Writer, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, n.bin, args...)
	cmd.Env = kuboEnv(os.Environ(), n.dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if w != nil {
		cmd.Stdout = w
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: ipfs %s: %v: %s", ErrKubo, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// Add adds the file at path in fixed chunks of size bytes, pinned, and
// returns its root CID.
func (n *KuboNode) Add(ctx context.Context, path string, size int) (string, error) {
	out, err := n.run(ctx, nil, kuboAddArgs(path, size)...)
	if err != nil {
		return "", err
	}
	return parseKuboAdd(out)
}

// Addr returns the node's TCP multiaddr on 127.0.0.1, with /p2p/ID.
func (n *KuboNode) Addr(ctx context.Context) (string, error) {
	out, err := n.run(ctx, nil, "id")
	if err != nil {
		return "", err
	}
	return parseKuboID(out)
}

// Connect connects the node to the multiaddr addr, which must be on
// 127.0.0.1.
func (n *KuboNode) Connect(ctx context.Context, addr string) error {
	if !loopbackAddr(addr) {
		return fmt.Errorf("%w: refusing to connect to %q, which is not on 127.0.0.1", ErrKubo, addr)
	}
	_, err := n.run(ctx, nil, "swarm", "connect", addr)
	return err
}

// Get fetches root into the file dest with `ipfs get` and returns how long
// it took, then removes dest and collects the fetched blocks so that the
// next fetch starts cold.
func (n *KuboNode) Get(ctx context.Context, root, dest string) (time.Duration, error) {
	start := time.Now()
	if _, err := n.run(ctx, nil, "get", "--progress=false", "-o", dest, root); err != nil {
		return 0, err
	}
	d := time.Since(start)
	os.RemoveAll(dest)
	return d, n.gc(ctx)
}

// Cat fetches root with `ipfs cat` to a counter and returns how long it took
// and the bytes it printed, then collects the fetched blocks.
func (n *KuboNode) Cat(ctx context.Context, root string) (time.Duration, int64, error) {
	var c countWriter
	start := time.Now()
	if _, err := n.run(ctx, &c, "cat", root); err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	return d, int64(c), n.gc(ctx)
}

func (n *KuboNode) gc(ctx context.Context) error {
	_, err := n.run(ctx, nil, "repo", "gc", "--quiet")
	return err
}

// Close stops the daemon (`ipfs shutdown`, then a kill after 10 s) and
// waits for it. It is idempotent.
func (n *KuboNode) Close() error {
	if n.daemon == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.run(ctx, nil, "shutdown")
	select {
	case <-n.done:
	case <-ctx.Done():
		n.daemon.Process.Kill()
		<-n.done
	}
	n.daemon = nil
	return nil
}

// countWriter counts what is written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it. Safe for concurrent
// use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
