package node

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// diskWrite writes size bytes to path as a download writes a file, with no
// network: 1 MiB pwrites in order, the file's dirty pages pushed to disk
// and dropped from the page cache every 8 MiB (swarm's writeBehind and
// writeBehindEvery), one fsync at the end. BenchmarkTransfer holds the
// transfer against its rate too: on a machine whose other processes keep
// the page cache dirty, the kernel throttles these writes, and the raw
// stream, which writes nothing, does not show it.
func diskWrite(path string, size int64) (childReport, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return childReport{}, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*131 + i>>9)
	}
	start := time.Now()
	if err := f.Truncate(size); err != nil {
		return childReport{}, err
	}
	var unsynced int
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := int(min(int64(len(buf)), size-off))
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return childReport{}, err
		}
		if unsynced += n; unsynced >= 8<<20 {
			unsynced = 0
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
	}
	if err := f.Sync(); err != nil {
		return childReport{}, err
	}
	return childReport{Seconds: time.Since(start).Seconds(), Bytes: size}, nil
}
