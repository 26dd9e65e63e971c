package store

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// stamps says whether stampOf gives stamps here.
const stamps = true

// stampOf returns the stamp of a regular file.
func stampOf(fi os.FileInfo) (stamp, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return stamp{}, false
	}
	return stamp{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}, true
}

// localFS reports whether f's metadata is kept by this kernel, not cached
// from another machine's, so that its ctime moves with every change.
func localFS(f *os.File) bool {
	var s unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &s); err != nil {
		return false
	}
	switch uint32(s.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC,
		unix.FUSE_SUPER_MAGIC, unix.V9FS_MAGIC, unix.CEPH_SUPER_MAGIC, unix.AFS_SUPER_MAGIC,
		unix.AFS_FS_MAGIC, unix.CODA_SUPER_MAGIC, unix.NCP_SUPER_MAGIC, 0x47504653 /* GPFS */, 0x013111A8 /* IBRIX */ :
		return false
	}
	return true
}

// zfsSuperMagic is ZFS on Linux's, which x/sys/unix does not name.
const zfsSuperMagic = 0x2fc12fc1

// leaseFS reports whether f lies on a file system where a granted read
// lease (noWriter) proves that nothing can change the file's bytes
// without moving its stamp: a local disk file system whose mmap write
// faults stamp the time (page_mkwrite, before the first write through
// each new mapping to each page) and whose inode is the one written. Not
// overlayfs (ovl_mmap swaps the mapping's file for the upper layer's, so
// the overlay inode counts no writer while the mapping writes), not tmpfs
// or ramfs (a mapping made with MAP_POPULATE or MADV_POPULATE_READ writes
// without a fault: seen on Linux 6.18, the ctime never moves), not a
// network or FUSE file system (localFS).
func leaseFS(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var s unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &s) }); err != nil || serr != nil {
		return false
	}
	switch uint32(s.Type) {
	case unix.EXT4_SUPER_MAGIC /* and ext2, ext3 */, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC,
		unix.F2FS_SUPER_MAGIC, unix.BCACHEFS_SUPER_MAGIC, zfsSuperMagic:
		return true
	}
	return false
}

// noWriter reports whether no open file description of f's inode is open
// for writing now, so that nothing can write it unless it opens the file
// (or maps it) anew, which stamps the time before a byte changes: it takes
// a read lease on f, which must be open read-only, and releases it at
// once. The kernel grants one only when the inode's write count is zero
// (fs/locks.c, check_conflicting_open), and a shared mapping of a file
// opened for writing keeps that count up until it is unmapped, after its
// descriptor is closed too.
//
// Any error is "no proof": EAGAIN (a writer, or a mapping that may
// write), EACCES (not the file's owner, without CAP_LEASE), EINVAL (leases
// disabled in /proc/sys/fs/leases-enable, or not supported here).
//
// While the lease is held, for the microseconds between the two fcntl
// calls, another process that opens the file for writing waits for the
// release (an open with O_NONBLOCK fails with EWOULDBLOCK instead), and
// the kernel sends this process SIGIO, which the Go runtime ignores unless
// the program asked for it (os/signal). Should the release fail, the lease
// stays until f is closed, and noWriter reports false.
func noWriter(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var lerr error
	err = rc.Control(func(fd uintptr) {
		if _, lerr = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_RDLCK); lerr == nil {
			_, lerr = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
		}
	})
	return err == nil && lerr == nil
}
