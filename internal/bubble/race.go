//go:build race

package bubble

// RaceEnabled says whether the race detector is on.
const RaceEnabled = true
