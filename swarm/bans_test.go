package swarm

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/swarm/wire"
)

// TestBansSorted: Bans lists the banned peers sorted, the same on every
// call and every run (a simulation's report of honest peers banned is
// built from it).
func TestBansSorted(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, &memBlocks{}, Config{Logger: quiet()})
	defer s.Close()
	var want []peer.ID
	for range 16 {
		o, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		s.ban(o.ID(), "test", nil, wire.CodeBanned, "")
		want = append(want, o.ID())
	}
	slices.Sort(want)
	for range 4 {
		if got := s.Bans(); !slices.Equal(got, want) {
			t.Fatalf("Bans() = %v, want the %d banned peers sorted: %v", got, len(want), want)
		}
	}
}
