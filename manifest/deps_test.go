package manifest

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps manifest pure: the standard library, CIDs, and peer's
// integrity and chunker packages, nothing that does I/O or networking.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/ipfs/go-cid":                 true,
		"github.com/peer-project/peer/chunker":   true,
		"github.com/peer-project/peer/integrity": true,
	}
	for _, imp := range pkg.Imports {
		if !strings.Contains(imp, ".") { // standard library
			if imp == "net" || strings.HasPrefix(imp, "net/") || imp == "os" || imp == "os/exec" {
				t.Errorf("manifest imports %s: it must do no I/O", imp)
			}
			continue
		}
		if !allowed[imp] {
			t.Errorf("manifest imports %s, which it must not", imp)
		}
	}
}
