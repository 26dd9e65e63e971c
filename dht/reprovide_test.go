package dht

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
)

// TestReprovideInBatches: two roots provided an hour apart are announced
// again together, in the same sweep, before either is a full interval old
// (in virtual time: 8 hours pass in no time).
func TestReprovideInBatches(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ds := crowd(ctx, t, 3)
		d := ds[0]
		a, b := integrity.Block([]byte("first root")), integrity.Block([]byte("second root"))
		t0 := time.Now()
		if err := d.Provide(ctx, a); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		if err := d.Provide(ctx, b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultReprovideInterval - time.Hour + time.Minute)
		synctest.Wait()
		d.mu.Lock()
		atA, atB := d.provided[a], d.provided[b]
		d.mu.Unlock()
		t.Logf("provided at 0 and 1h; announced again at %v and %v", atA.Sub(t0), atB.Sub(t0))
		// Sweeps are 2 hours apart: one sweep's announcements end within
		// a minute of each other.
		inWindow := func(at time.Time) bool {
			return at.Sub(t0) >= DefaultReprovideInterval-time.Hour && at.Sub(t0) <= DefaultReprovideInterval
		}
		if !inWindow(atA) || !inWindow(atB) || atA.Sub(atB).Abs() > time.Minute {
			t.Fatalf("roots announced again at %v and %v after the first was provided: want both in one sweep, within %v", atA.Sub(t0), atB.Sub(t0), DefaultReprovideInterval)
		}
	})
}
