package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/peer-project/peer/"

// rule says what one package may depend on.
type rule struct {
	// imports lists the module's packages that the package may import
	// directly (paths relative to the module).
	imports []string
	// pure packages take bytes and readers and give values: they import
	// no os, os/exec or logger, and nothing among their dependencies
	// speaks to the network (net, libp2p).
	pure bool
	// machine, if not nil, makes the package a pure state machine in the
	// manner of etcd-io/raft (STYLE.md): its non-test files import from
	// the standard library only the packages listed here (no I/O, no
	// sync), start no goroutine, take no lock, read no clock and never
	// sleep (every event carries its time), and have no package-level
	// variable but sentinel errors (Err…).
	machine []string
}

// house is the package map, bottom to top. A package may import only what
// its row names; every package of the module must have a row.
var house = map[string]rule{
	// Bytes and their names: pure, no module imports.
	"integrity": {pure: true},
	"bitfield":  {pure: true},
	"swarm/sched": {imports: []string{"bitfield"}, pure: true, machine: []string{ // the download scheduler
		"container/heap", "errors", "fmt", "math", "math/bits", "math/rand/v2", "slices", "strings", "time",
		"strconv", "encoding/hex", "unicode", // the text form of events and transcripts
	}},
	"chunker":    {imports: []string{"integrity"}, pure: true},
	"ticket":     {imports: []string{"integrity"}}, // peer IDs and multiaddrs come from libp2p's core
	"swarm/wire": {imports: []string{"integrity", "chunker", "bitfield"}, pure: true},
	"unixfs":     {imports: []string{"integrity", "chunker"}}, // pure itself, but boxo brings net/http among its dependencies
	"carfile":    {imports: []string{"unixfs"}},               // CAR export and import of UnixFS DAGs

	// The upload slots: a state machine, as sched.
	"swarm/choker": {pure: true, machine: []string{"fmt", "math", "slices", "time"}},

	// State, import and discovery.
	"store":    {imports: []string{"integrity", "chunker", "bitfield"}},
	"importer": {imports: []string{"chunker", "unixfs", "integrity"}},
	"dht":      {},
	"names":    {imports: []string{"integrity"}}, // IPNS records and their resolution: libp2p and boxo, nothing above

	// The exchange, and the node that embeds everything.
	"swarm/bitswap": {}, // IPFS's Bitswap beside our protocol: boxo's server, and links to one peer for the swarm's fetches
	"swarm":         {imports: []string{"integrity", "bitfield", "unixfs", "swarm/sched", "swarm/choker", "swarm/wire", "swarm/bitswap"}},
	"node": {imports: []string{"integrity", "bitfield", "chunker", "unixfs", "ticket", "store", "importer", "carfile",
		"dht", "swarm", "swarm/wire", "swarm/bitswap", "names"}},

	// On top: the daemon and its API, the simulator, the CLI.
	// The daemon and the CLI speak node's vocabulary only: its types, its
	// errors, its settings. The CLI runs a daemon, a node or a simulation.
	"gateway":  {imports: []string{"node", "carfile", "unixfs", "internal/loopback"}}, // the HTTP gateway: node.Open and node.Block behind /ipfs/
	"webui":    {imports: []string{"internal/loopback"}},                              // the web UI's pages over a Backend the daemon implements
	"daemon":   {imports: []string{"node", "gateway", "webui", "internal/loopback"}},
	"simulate": {imports: []string{"node", "chunker", "importer", "unixfs", "dht", "swarm", "swarm/wire"}},
	"cmd/peer": {imports: []string{"node", "daemon", "simulate"}},

	// Test and benchmark support.
	"internal/bubble":      {pure: true},
	"internal/loopback":    {},           // the Host check of the daemon's API, its web UI and the gateway (DNS rebinding)
	"internal/kubovec":     {pure: true}, // Kubo's unixfs-v1-2025 vectors, for the tests of unixfs and importer
	"internal/netns":       {},
	"internal/benchrec":    {},
	"internal/benchreport": {imports: []string{"internal/benchrec"}},
	"internal/layers":      {},
	"internal/browsertest": {}, // Chromium for the web UI's tests

	// Tools run by go generate, with a test that their output is committed.
	"chunker/internal/asmgen": {}, // the chunker's amd64 assembly
}

// pkg is what go list -json says of a package.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func TestLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command(gobin, "list", "-deps=false", "-json=ImportPath,Dir,GoFiles,Imports,Deps", module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	seen := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		seen[name] = true
		r, ok := house[name]
		if !ok {
			t.Errorf("%s has no row in the package map (layers_test.go): say what it may import", name)
			continue
		}
		for _, imp := range p.Imports {
			if dep, ok := strings.CutPrefix(imp, module); ok && !slices.Contains(r.imports, dep) {
				t.Errorf("%s imports %s, which the package map does not allow", name, dep)
			}
		}
		if r.machine != nil {
			checkMachine(t, name, p, r.machine)
		}
		if !r.pure {
			continue
		}
		for _, imp := range p.Imports {
			switch imp {
			case "os", "os/exec", "log", "log/slog":
				t.Errorf("%s imports %s: it must stay pure (no files, processes or logs of its own)", name, imp)
			}
		}
		for _, dep := range p.Deps {
			if dep == "net" || strings.HasPrefix(dep, "net/") || strings.Contains(dep, "libp2p") {
				t.Errorf("%s depends on %s: it must stay pure (nothing that speaks to the network)", name, dep)
			}
		}
	}
	for name := range house {
		if !seen[name] {
			t.Errorf("the package map names %s, which go list does not know", name)
		}
	}
}

// checkMachine checks the rule's machine constraints on p's non-test files.
func checkMachine(t *testing.T, name string, p pkg, std []string) {
	t.Helper()
	fset := token.NewFileSet()
	for _, file := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, file), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		at := func(n ast.Node) string { return name + "/" + file + ":" + strconv.Itoa(fset.Position(n.Pos()).Line) }
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(path, module) && !slices.Contains(std, path) {
				t.Errorf("%s imports %s: a state machine imports only %v", at(imp), path, std)
			}
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, spec := range g.Specs {
					for _, n := range spec.(*ast.ValueSpec).Names {
						if !strings.HasPrefix(n.Name, "Err") {
							t.Errorf("%s: package-level variable %s in a state machine", at(n), n.Name)
						}
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: a go statement in a state machine", at(n))
			case *ast.Ident:
				if n.Name == "Mutex" || n.Name == "RWMutex" {
					t.Errorf("%s: a lock in a state machine", at(n))
				}
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" {
					switch n.Sel.Name {
					case "Now", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker", "Since", "Until":
						t.Errorf("%s: time.%s in a state machine: events carry the time", at(n), n.Sel.Name)
					}
				}
			}
			return true
		})
	}
}
