//go:build !unix

package simulate

import "time"

// wallClock, where no system call reads the machine's clock here, falls
// back on the time package: inside a testing/synctest bubble its figures
// are the bubble's virtual time, and Report.Clock says "unknown".
type wallClock struct{}

func (wallClock) now() time.Time { return time.Now() }

func (wallClock) mono() time.Duration { return time.Duration(time.Now().UnixNano()) }

func (wallClock) real() bool { return false }
