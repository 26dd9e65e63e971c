//go:build !amd64 || purego

package chunker

// gearBlock is gearBlockGo where there is no assembly version.
func gearBlock(p *byte, h, mask uint64, _ *[256]uint64) (uint64, bool) {
	return gearBlockGo(p, h, mask)
}
