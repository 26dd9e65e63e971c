//go:build !unix && !windows

package benchrec

import "time"

// CPUTime returns 0: this system does not say what CPU time the process
// has used.
func CPUTime() time.Duration { return 0 }
