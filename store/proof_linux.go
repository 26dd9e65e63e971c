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

// zfsSuperMagic is ZFS on Linux's, which x/sys/unix does not name.
const zfsSuperMagic = 0x2fc12fc1

// stampFS reports whether f lies on a file system where a file's stamp
// moves with every change to its bytes, so that stamps may stand for a
// hash (seals, proofs, reuse) and a granted read lease proves that
// nothing can change the file without moving its stamp (noWriter). It is
// an allow-list: ext2, ext3 and ext4 (one magic), xfs, btrfs, f2fs,
// bcachefs and zfs. Each is a local disk file system that keeps a change
// time on disk, no call sets back, and whose mmap write fault stamps the
// time before the first write through each mapping to each page (its own
// page_mkwrite, or for zfs, whose zpl_mmap calls generic_file_mmap, the
// generic filemap_page_mkwrite, calls file_update_time): a write through
// a mapping moves the stamp like a write(2). Any other file system gives
// no stamps: its files are hashed on every serve and every share, slower,
// never wrong. Left out, among others:
//   - tmpfs, ramfs, hugetlbfs: shmem has no page_mkwrite, so a shared
//     writable mapping (made with MAP_POPULATE, or read before it is
//     written) writes without any fault and the time never moves
//     (TestTmpfsNoStamps); nor does write-back ever clean a page, so age
//     proves nothing there either;
//   - overlayfs: ovl_mmap swaps the mapping's file for the upper layer's,
//     so the overlay inode counts no writer while the mapping writes (a
//     lease proves nothing), and the upper layer may lie on tmpfs (live
//     systems, some container runtimes), which fstatfs does not say;
//   - vfat, exfat: no change time on disk: whenever the inode leaves the
//     cache, Linux reads the modification time back as the ctime
//     (fat_fill_inode, exfat_fill_inode), and utimes sets that back;
//     ntfs3: NTFS's change time can be set by any program through
//     Windows;
//   - network, cluster and FUSE file systems (NFS, SMB, 9p, Ceph, GFS2,
//     OCFS2...): the metadata comes from another machine through a cache.
//
// Another may join the list once its source shows both: a change time no
// call sets back, and a page_mkwrite that stamps it.
func stampFS(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var s unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &s) }); err != nil || serr != nil {
		return false
	}
	return stampFSType(uint32(s.Type))
}

// stampFSType reports whether stampFS accepts file systems of type t
// (statfs's f_type).
func stampFSType(t uint32) bool {
	switch t {
	case unix.EXT4_SUPER_MAGIC /* and ext2, ext3 */, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC,
		unix.F2FS_SUPER_MAGIC, unix.BCACHEFS_SUPER_MAGIC, zfsSuperMagic:
		return true
	}
	return false
}

// KeepsStamps reports whether the store keeps stamps (seals, proofs,
// reuse: package doc) for files at path, a file or a folder: whether it
// lies on one of the file systems stampFS allows (ext2/3/4, xfs, btrfs,
// f2fs, bcachefs, zfs). Elsewhere, tmpfs included, every chunk is hashed
// each time it is served and every file each time it is shared. It does
// not open path; any error is false. It is safe for concurrent use.
func KeepsStamps(path string) bool {
	var s unix.Statfs_t
	return unix.Statfs(path, &s) == nil && stampFSType(uint32(s.Type))
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
