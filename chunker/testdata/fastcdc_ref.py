#!/usr/bin/env python3
"""Independent reference for chunker's cutting rules, written from the
description in ../cdc.go and ../doc.go only (no Go code shared). It prints the
golden vectors that cdc_test.go and split_test.go assert:

    python3 testdata/fastcdc_ref.py

Test data is SHA-256 in counter mode: block i (i = 0, 1, ...) is
sha256(i as 8 big-endian bytes), 32 bytes each, truncated to the length.
"""
import base64
import hashlib

MASKS = {
    5: 0x0000000001804110, 6: 0x0000000001803110, 7: 0x0000000018035100,
    8: 0x0000001800035300, 9: 0x0000019000353000, 10: 0x0000590003530000,
    11: 0x0000d90003530000, 12: 0x0000d90103530000, 13: 0x0000d90303530000,
    14: 0x0000d90313530000, 15: 0x0000d90f03530000, 16: 0x0000d90303537000,
    17: 0x0000d90703537000, 18: 0x0000d90707537000, 19: 0x0000d91707537000,
    20: 0x0000d91747537000, 21: 0x0000d91767537000, 22: 0x0000d93767537000,
    23: 0x0000d93777537000, 24: 0x0000d93777577000, 25: 0x0000db3777577000,
}
GEAR = [int.from_bytes(hashlib.sha256(bytes([i])).digest()[:8], "big") for i in range(256)]
M64 = (1 << 64) - 1


def counter_data(n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:n])


def cid(data):
    b = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(b).decode().lower().rstrip("=")


def fastcdc(data, mn, avg, mx):
    b = avg.bit_length() - 1
    ms, ml = MASKS[b + 2], MASKS[b - 2]
    sizes = []
    pos = 0
    while pos < len(data):
        n = len(data) - pos
        limit = min(n, mx)
        cut = limit
        h = 0
        for i in range(mn, limit):
            h = ((h << 1) + GEAR[data[pos + i]]) & M64
            if h & (ms if i < avg else ml) == 0:
                cut = i
                break
        sizes.append(cut)
        pos += cut
    return sizes


def main():
    print("GEAR[0] = %#018x, GEAR[255] = %#018x" % (GEAR[0], GEAR[255]))
    data = counter_data(4 << 20)
    for size in (16 << 10, 1 << 20):
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        print("fixed-%d first %s last %s" % (size, cid(chunks[0]), cid(chunks[-1])))
    print("fixed-16384 of 16384 zero bytes:", cid(bytes(16384)))
    for mn, avg, mx in ((16 << 10, 64 << 10, 256 << 10), (256 << 10, 1 << 20, 4 << 20)):
        sizes = fastcdc(data, mn, avg, mx)
        offs = [0]
        for s in sizes:
            offs.append(offs[-1] + s)
        cids = [cid(data[offs[k]:offs[k + 1]]) for k in range(len(sizes))]
        allc = hashlib.sha256("\n".join(cids).encode()).hexdigest()
        print("fastcdc-%d-%d-%d: %d chunks, sizes %s" % (mn, avg, mx, len(sizes), sizes))
        print("  first %s last %s sha256(cids joined by newline) %s" % (cids[0], cids[-1], allc))
    zeros = bytes(1 << 20)
    print("fastcdc-16384-65536-262144 of 1 MiB zeros: sizes", fastcdc(zeros, 16 << 10, 64 << 10, 256 << 10))


if __name__ == "__main__":
    main()
