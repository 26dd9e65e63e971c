//go:build race

package simulate

// raceEnabled: under the race detector every byte costs several times more,
// so the scenario tests move smaller files.
const raceEnabled = true
