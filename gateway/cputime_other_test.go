//go:build !unix

package gateway_test

import "time"

// cpuTime returns 0 where getrusage is missing: the CPU figures read 0.
func cpuTime() time.Duration { return 0 }
