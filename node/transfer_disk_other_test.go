//go:build !linux

package node

import (
	"os"
	"time"
)

// diskWrite is the disk anchor of BenchmarkTransfer (see the Linux
// version) without the page-cache advice, which only Linux takes.
func diskWrite(path string, size int64) (childReport, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return childReport{}, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 1<<20)
	start := time.Now()
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := int(min(int64(len(buf)), size-off))
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return childReport{}, err
		}
	}
	if err := f.Sync(); err != nil {
		return childReport{}, err
	}
	return childReport{Seconds: time.Since(start).Seconds(), Bytes: size}, nil
}
