package chunker

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestImports keeps chunker pure: the standard library, integrity and
// go-cid, nothing that does I/O of its own or talks to the network.
func TestImports(t *testing.T) {
	allowed := []string{
		"github.com/ipfs/go-cid",
		"github.com/peer-project/peer/integrity",
	}
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		std := !strings.Contains(strings.Split(imp, "/")[0], ".")
		if !std && !slices.Contains(allowed, imp) {
			t.Errorf("chunker imports %s; it may import only the standard library and %v", imp, allowed)
		}
		if imp == "net" || strings.HasPrefix(imp, "net/") || imp == "log" || imp == "log/slog" {
			t.Errorf("chunker imports %s: it must stay pure", imp)
		}
	}
}
