package simulate

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func runNamed(t *testing.T, name string, peers int, seed uint64, tweak func(*Scenario)) *Report {
	t.Helper()
	sc, err := Named(name, peers, seed)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(&sc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, sc)
	if rep != nil && (testing.Verbose() || err != nil) {
		var b strings.Builder
		rep.WriteText(&b)
		t.Log("\n" + b.String())
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rep
}

func TestFlashCrowdSmoke(t *testing.T) {
	rep := runNamed(t, "flash-crowd", 30, 1, nil)
	if rep.Completed != rep.Fetchers {
		t.Fatalf("completed %d of %d", rep.Completed, rep.Fetchers)
	}
	_ = os.Stdout
}
