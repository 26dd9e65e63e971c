package chunker

import (
	"errors"
	"fmt"
)

// Algorithms a chunking can name.
const (
	// Fixed cuts every chunk Size bytes long but the last.
	Fixed = "fixed"
	// FastCDC cuts where a rolling gear hash of the content says, so that
	// an edit moves only the chunk boundaries next to it. See cdc.go for the
	// exact algorithm and its gear table: anyone can reproduce the CIDs from
	// Min, Avg and Max.
	FastCDC = "fastcdc"
)

// Size limits for chunks. Every chunk peer makes or accepts is at most MaxSize
// bytes, so a peer never needs a bigger buffer for one.
const (
	MinSize     = 16 << 10 // 16 KiB
	MaxSize     = 4 << 20  // 4 MiB
	DefaultSize = 1 << 20  // 1 MiB
)

// ErrParams is wrapped by every error of Params.Validate.
var ErrParams = errors.New("chunker: invalid parameters")

// Params say how a stream is cut into chunks. A share records them; a UnixFS
// root does not, so the same bytes cut another way give another root, and
// whoever passes a root made with other Params should say which ones.
//
// The zero value is not valid; start from DefaultParams or CDCParams.
type Params struct {
	// Algorithm is Fixed or FastCDC.
	Algorithm string
	// Size is the chunk size for Fixed, from MinSize to MaxSize. Unused for
	// FastCDC.
	Size int
	// Min, Avg and Max bound the chunk sizes for FastCDC: MinSize ≤ Min ≤
	// Avg ≤ Max ≤ MaxSize, and Avg is a power of two. Unused for Fixed.
	Min, Avg, Max int
}

// DefaultParams returns fixed-size chunking with 1 MiB chunks.
func DefaultParams() Params { return Params{Algorithm: Fixed, Size: DefaultSize} }

// FixedParams returns fixed-size chunking with chunks of size bytes.
func FixedParams(size int) Params { return Params{Algorithm: Fixed, Size: size} }

// CDCParams returns content-defined chunking around an average of avg bytes
// (a power of two), with Min = avg/4 and Max = avg*4 clamped to the limits.
func CDCParams(avg int) Params {
	return Params{Algorithm: FastCDC, Min: max(avg/4, MinSize), Avg: avg, Max: min(avg*4, MaxSize)}
}

// Validate reports whether p can be used, with an error that says what is
// wrong and wraps ErrParams.
func (p Params) Validate() error {
	switch p.Algorithm {
	case Fixed:
		if p.Size < MinSize || p.Size > MaxSize {
			return fmt.Errorf("%w: fixed chunk size %d is outside %d..%d bytes", ErrParams, p.Size, MinSize, MaxSize)
		}
		if p.Min != 0 || p.Avg != 0 || p.Max != 0 {
			return fmt.Errorf("%w: fixed chunking takes no min, avg or max", ErrParams)
		}
	case FastCDC:
		if p.Size != 0 {
			return fmt.Errorf("%w: fastcdc takes min, avg and max, not size", ErrParams)
		}
		if p.Min < MinSize || p.Max > MaxSize || p.Min > p.Avg || p.Avg > p.Max {
			return fmt.Errorf("%w: fastcdc sizes min %d, avg %d, max %d must satisfy %d ≤ min ≤ avg ≤ max ≤ %d",
				ErrParams, p.Min, p.Avg, p.Max, MinSize, MaxSize)
		}
		if p.Avg&(p.Avg-1) != 0 {
			return fmt.Errorf("%w: fastcdc avg %d is not a power of two", ErrParams, p.Avg)
		}
	case "":
		return fmt.Errorf("%w: no algorithm (want %q or %q)", ErrParams, Fixed, FastCDC)
	default:
		return fmt.Errorf("%w: unknown algorithm %q (want %q or %q)", ErrParams, p.Algorithm, Fixed, FastCDC)
	}
	return nil
}

// MaxChunk returns the largest chunk p can produce.
func (p Params) MaxChunk() int {
	if p.Algorithm == Fixed {
		return p.Size
	}
	return p.Max
}

// MinChunk returns the smallest chunk p produces, the last chunk of a stream
// aside (which may be shorter).
func (p Params) MinChunk() int {
	if p.Algorithm == Fixed {
		return p.Size
	}
	return p.Min
}

// String formats p as the CLI takes it: "fixed-1048576" or
// "fastcdc-262144-1048576-4194304".
func (p Params) String() string {
	if p.Algorithm == Fixed {
		return fmt.Sprintf("%s-%d", Fixed, p.Size)
	}
	return fmt.Sprintf("%s-%d-%d-%d", p.Algorithm, p.Min, p.Avg, p.Max)
}
