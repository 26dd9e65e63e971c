package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	crashChildMain() // a child of the crash tests: exits when PEER_CRASH_ROLE is set
	reachChildMain() // a child node of TestNATTraversal: exits when PEER_REACH_ROLE is set
	if role := os.Getenv(benchRoleEnv); role != "" {
		os.Exit(benchChild(role)) // a child process of BenchmarkTransfer
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p-kad-dht/internal/net.(*peerMessageSender).ctxReadMsg"),
	)
}

func TestOneSeederOneFetcher(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := startNode(t, testConfig(t))
	b := startNode(t, testConfig(t))
	path, data := randomFile(t, t.TempDir(), "video.bin", 64<<20, 1)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := ParseTarget(sh.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "got.bin")
	res, err := b.Fetch(ctx, target, dest, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)
	if res.Progress.Duplicate > int64(len(data))/50 {
		t.Errorf("duplicate bytes %d > 2%% of %d", res.Progress.Duplicate, len(data))
	}
	t.Logf("fetched %d bytes, %d duplicate", res.Progress.Bytes, res.Progress.Duplicate)
}
