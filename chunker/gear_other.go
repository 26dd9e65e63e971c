//go:build !amd64 || purego

package chunker

// gearBlock is gearBlockGo where there is no assembly version.
func gearBlock(p *byte, h, mask uint64, _ *[256]uint64) (uint64, bool) {
	return gearBlockGo(p, h, mask)
}

// filterCap is gearFilterScan's candidate buffer; there is no filter here.
const filterCap = 1

// filterMaxPos bounds the positions of filterPositions; there are none
// here.
const filterMaxPos = 1

// useFilter reports whether scanLanes takes gearFilterScan: never here.
func useFilter(uint64) bool { return false }

// gearFilterScan is never called where useFilter is false.
func gearFilterScan([]byte, int, uint64, uint64, *[filterCap]uint32) (int, uint64, bool) {
	panic("chunker: no gear filter on this architecture")
}

// filterPositions is never called where useFilter is false.
func filterPositions([]byte, int, uint64, uint64, *[filterCap]uint32, *[filterMaxPos]int) ([]int, bool) {
	panic("chunker: no gear filter on this architecture")
}
