//go:build !race

package unixfs

const raceEnabled = false
