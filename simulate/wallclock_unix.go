//go:build unix

package simulate

import (
	"time"

	"golang.org/x/sys/unix"
)

// wallClock reads the machine's clocks straight from the kernel. Inside a
// testing/synctest bubble the time package runs on the bubble's fake
// clock; these system calls do not, so a run can report the wall time it
// took beside the virtual time it simulated.
type wallClock struct{}

// now returns the machine's real time (CLOCK_REALTIME).
func (wallClock) now() time.Time {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME, &ts) != nil {
		return time.Now()
	}
	return time.Unix(ts.Unix())
}

// mono returns a monotonic reading (CLOCK_MONOTONIC) for measuring
// elapsed wall time.
func (wallClock) mono() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// real reports whether this clock can tell a bubble's time from the
// machine's.
func (wallClock) real() bool { return true }
