// Package bubble runs tests in a testing/synctest bubble, on a virtual
// clock, except under the race detector.
//
// Go 1.26's race detector crashes now and then on a bubble's timers: make
// test with two busy loops beside it died once in three runs with a
// SIGSEGV in ThreadSanitizer (__tsan::SlotLock, reached from
// runtime.(*timer).maybeRunChan in a mocknet stream's select inside a
// bubble); golang/go#78156 (synctest under ThreadSanitizer, open) is the
// same family. So under -race a bubble test is skipped, and make test runs
// the packages that have bubble tests a second time without -race. The
// code those tests drive runs under -race in the tests of the same
// packages that use real sockets or no clock.
package bubble

import (
	"testing"
	"testing/synctest"
)

// Test runs f in a synctest bubble, as synctest.Test does; under the race
// detector it skips t, saying why.
func Test(t *testing.T, f func(*testing.T)) {
	t.Helper()
	if RaceEnabled {
		t.Skip("a synctest bubble under the race detector can crash ThreadSanitizer (golang/go#78156); make test runs this test without -race")
	}
	synctest.Test(t, f)
}
