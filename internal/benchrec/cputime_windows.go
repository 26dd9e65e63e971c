package benchrec

import (
	"syscall"
	"time"
)

// CPUTime returns the CPU time this process has used, user and system,
// or 0 where the system does not say.
func CPUTime() time.Duration {
	p, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0
	}
	var created, exited, kernel, user syscall.Filetime
	if syscall.GetProcessTimes(p, &created, &exited, &kernel, &user) != nil {
		return 0
	}
	// A Filetime counts 100 ns; its Nanoseconds method reads it as a
	// date since 1601, and these are durations.
	ticks := func(ft syscall.Filetime) int64 { return int64(ft.HighDateTime)<<32 | int64(ft.LowDateTime) }
	return time.Duration((ticks(kernel) + ticks(user)) * 100)
}
