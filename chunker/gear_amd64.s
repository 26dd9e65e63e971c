//go:build !purego

#include "textflag.h"

// func gearBlock(p *byte, h, mask uint64, table *[256]uint64) (hl uint64, hit bool)
//
// gearBlock is gearBlockGo (cdc.go) for amd64: the gear scan of one block of
// laneBlock bytes in laneCount = 8 lanes of laneLen = 4096 bytes, the eight
// hashes kept in registers. Per byte and lane: a load of the byte, a load
// of its table entry, h = h*2 + entry in one LEAQ, and a test of the mask
// with a branch that is never taken until a cut. The lanes' chains are
// independent, so the CPU runs them side by side. (ADDQ h, h and an ADDQ
// of the entry from memory instead of the load and the LEAQ ran a fifth
// slower.)
//
// Registers: SI the lane-0 byte, CX where lane 0 ends, DX the mask, R9 the
// table, AX and DI the bytes and entries; the lanes' hashes R8, R10-R15, BX.
// The warm-up uses DI as the pointer and AX alone.
TEXT ·gearBlock(SB), NOSPLIT, $0-41
	MOVQ p+0(FP), SI
	MOVQ h+8(FP), R8
	MOVQ mask+16(FP), DX
	MOVQ table+24(FP), R9
	XORL R10, R10
	XORL R11, R11
	XORL R12, R12
	XORL R13, R13
	XORL R14, R14
	XORL R15, R15
	XORL BX, BX

	// Lanes 1 to 7 first hash the 63 bytes before their start, untested:
	// from then on their hash is the stream's (a byte 64 or more places
	// back adds nothing).
	LEAQ -63(SI), DI

warm:
	MOVBQZX 4096(DI), AX
	ADDQ R10, R10
	ADDQ (R9)(AX*8), R10
	MOVBQZX 8192(DI), AX
	ADDQ R11, R11
	ADDQ (R9)(AX*8), R11
	MOVBQZX 12288(DI), AX
	ADDQ R12, R12
	ADDQ (R9)(AX*8), R12
	MOVBQZX 16384(DI), AX
	ADDQ R13, R13
	ADDQ (R9)(AX*8), R13
	MOVBQZX 20480(DI), AX
	ADDQ R14, R14
	ADDQ (R9)(AX*8), R14
	MOVBQZX 24576(DI), AX
	ADDQ R15, R15
	ADDQ (R9)(AX*8), R15
	MOVBQZX 28672(DI), AX
	ADDQ BX, BX
	ADDQ (R9)(AX*8), BX
	INCQ DI
	CMPQ DI, SI
	JNE  warm

	LEAQ 4096(SI), CX

loop:
	MOVBQZX 0(SI), AX
	MOVQ (R9)(AX*8), AX
	LEAQ (AX)(R8*2), R8
	TESTQ DX, R8
	JEQ  hit
	MOVBQZX 4096(SI), DI
	MOVQ (R9)(DI*8), DI
	LEAQ (DI)(R10*2), R10
	TESTQ DX, R10
	JEQ  hit
	MOVBQZX 8192(SI), AX
	MOVQ (R9)(AX*8), AX
	LEAQ (AX)(R11*2), R11
	TESTQ DX, R11
	JEQ  hit
	MOVBQZX 12288(SI), DI
	MOVQ (R9)(DI*8), DI
	LEAQ (DI)(R12*2), R12
	TESTQ DX, R12
	JEQ  hit
	MOVBQZX 16384(SI), AX
	MOVQ (R9)(AX*8), AX
	LEAQ (AX)(R13*2), R13
	TESTQ DX, R13
	JEQ  hit
	MOVBQZX 20480(SI), DI
	MOVQ (R9)(DI*8), DI
	LEAQ (DI)(R14*2), R14
	TESTQ DX, R14
	JEQ  hit
	MOVBQZX 24576(SI), AX
	MOVQ (R9)(AX*8), AX
	LEAQ (AX)(R15*2), R15
	TESTQ DX, R15
	JEQ  hit
	MOVBQZX 28672(SI), DI
	MOVQ (R9)(DI*8), DI
	LEAQ (DI)(BX*2), BX
	TESTQ DX, BX
	JEQ  hit
	MOVBQZX 1(SI), AX
	MOVQ (R9)(AX*8), AX
	LEAQ (AX)(R8*2), R8
	TESTQ DX, R8
	JEQ  hit
	MOVBQZX 4097(SI), DI
	MOVQ (R9)(DI*8), DI
	LEAQ (DI)(R10*2), R10
	TESTQ DX, R10
	JEQ  hit
	MOVBQZX 8193(SI), AX
	MOVQ (R9)(AX*8), AX
	LEAQ (AX)(R11*2), R11
	TESTQ DX, R11
	JEQ  hit
	MOVBQZX 12289(SI), DI
	MOVQ (R9)(DI*8), DI
	LEAQ (DI)(R12*2), R12
	TESTQ DX, R12
	JEQ  hit
	MOVBQZX 16385(SI), AX
	MOVQ (R9)(AX*8), AX
	LEAQ (AX)(R13*2), R13
	TESTQ DX, R13
	JEQ  hit
	MOVBQZX 20481(SI), DI
	MOVQ (R9)(DI*8), DI
	LEAQ (DI)(R14*2), R14
	TESTQ DX, R14
	JEQ  hit
	MOVBQZX 24577(SI), AX
	MOVQ (R9)(AX*8), AX
	LEAQ (AX)(R15*2), R15
	TESTQ DX, R15
	JEQ  hit
	MOVBQZX 28673(SI), DI
	MOVQ (R9)(DI*8), DI
	LEAQ (DI)(BX*2), BX
	TESTQ DX, BX
	JEQ  hit
	ADDQ $2, SI
	CMPQ SI, CX
	JNE  loop

	MOVQ BX, hl+32(FP)
	MOVB $0, hit+40(FP)
	RET

hit:
	MOVQ $0, hl+32(FP)
	MOVB $1, hit+40(FP)
	RET
