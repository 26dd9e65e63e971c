package swarm

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/swarm/wire"
)

// TestServeIdleSessionEnds runs in virtual time: a fetcher says HELLO, then
// a NOT_INTERESTED every 90 s three times, then nothing. The serving side
// keeps the session while messages come, and ends it with ERROR (idle)
// DefaultIdleTimeout after the last one, not before.
func TestServeIdleSessionEnds(t *testing.T) {
	blocks, root, l, data := hostileRoot(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mn, err := mocknet.FullMeshConnected(2)
		if err != nil {
			t.Fatal(err)
		}
		defer mn.Close()
		hosts := mn.Hosts()
		server := New(hosts[0], blocks, Config{Logger: quiet()})
		defer server.Close()
		server.Serve(root, strictSource{&memSource{l: l, data: data}})
		st, err := hosts[1].NewStream(ctx, hosts[0].ID(), wire.ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		w := wire.NewWriter(st)
		r := wire.NewReader(st, 0)
		w.Write(&wire.Hello{Version: wire.Version, Root: root})
		w.Flush()
		if m, err := r.Read(); err != nil || m.Type() != wire.TypeHaveAll {
			t.Fatalf("answer to HELLO: %v %v", m, err)
		}
		type read struct {
			m   wire.Msg
			err error
			at  time.Time
		}
		reads := make(chan read, 1)
		go func() {
			m, err := r.Read()
			reads <- read{m, err, time.Now()}
		}()
		var last time.Time
		for range 3 {
			time.Sleep(90 * time.Second) // virtual
			synctest.Wait()
			select {
			case rd := <-reads:
				t.Fatalf("the session ended at %v while the fetcher spoke every 90 s: %v %v", rd.at.Sub(last), rd.m, rd.err)
			default:
			}
			w.Write(&wire.NotInterested{})
			w.Flush()
			last = time.Now()
		}
		var rd read
		select {
		case rd = <-reads:
		case <-time.After(2 * DefaultIdleTimeout): // virtual
			t.Fatalf("the session was still open %v after the last message", 2*DefaultIdleTimeout)
		}
		if rd.err != nil {
			t.Fatalf("the session ended with %v, not an ERROR", rd.err)
		}
		e, ok := rd.m.(*wire.Error)
		if !ok || e.Code != wire.CodeIdle {
			t.Fatalf("got %v, want ERROR (idle)", rd.m)
		}
		if quiet := rd.at.Sub(last); quiet < DefaultIdleTimeout || quiet > DefaultIdleTimeout+time.Second {
			t.Errorf("ended %v after the last message, want %v", quiet, DefaultIdleTimeout)
		}
		t.Logf("%v, %v after the last message", e, rd.at.Sub(last))
	})
}
