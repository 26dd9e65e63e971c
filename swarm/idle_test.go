package swarm

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// TestServeIdleSessionEnds runs in virtual time: a fetcher says HELLO, then
// a NOT_INTERESTED every 90 s three times, then nothing. The serving side
// keeps the session while messages come, and ends it with ERROR (idle)
// DefaultIdleTimeout after the last one, not before.
func TestServeIdleSessionEnds(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		rs := newRawSession(t)
		w, r := rs.w, rs.r
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
