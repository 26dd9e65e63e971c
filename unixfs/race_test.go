//go:build race

package unixfs

// raceEnabled: the tests that hash GiBs on one goroutine skip under the race
// detector, which has nothing to find there and makes them minutes long;
// `make test` runs this package again without it.
const raceEnabled = true
