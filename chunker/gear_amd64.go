//go:build !purego

package chunker

// gearBlock is the gear scan of the laneBlock bytes at p, as gearBlockGo,
// in assembly (gear_amd64.s). p must point to laneBlock readable bytes;
// table is the gear table.
//
//go:noescape
func gearBlock(p *byte, h, mask uint64, table *[256]uint64) (hl uint64, hit bool)

// gear_amd64.s is written for eight lanes of 4096 bytes: these fail to
// compile when the constants change without it.
var (
	_ = [1]struct{}{}[laneCount-8]
	_ = [1]struct{}{}[laneLen-4096]
)
