//go:build unix

package swarm

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// noFollow makes an open fail on a symlink in the last element of the path.
const noFollow = unix.O_NOFOLLOW

// lockStaging takes an exclusive advisory lock on f, an open staging file or
// folder, without waiting. The lock lasts until f is closed; a second open of
// the same staging area, in this process or another, fails to take it.
func lockStaging(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if !errors.Is(ferr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errors.Is(ferr, unix.EWOULDBLOCK) {
		return fmt.Errorf("%w: %s (wait for it to end, or stop it)", ErrStagingBusy, f.Name())
	}
	return ferr
}

// checkOwned refuses a staging file or folder that this process did not
// make and that another user could have made or can change: one owned by
// another user, writable by group or others, or (a file) with more than one
// link, which would write into a file elsewhere.
func checkOwned(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("%w: %s belongs to user %d, not to this user (%d): remove it, or choose another destination", ErrStagingUnsafe, path, st.Uid, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s can be written by other users (mode %04o): remove it, or choose another destination", ErrStagingUnsafe, path, fi.Mode().Perm())
	}
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		return fmt.Errorf("%w: %s has %d links (a hard link to a file elsewhere): remove it, or choose another destination", ErrStagingUnsafe, path, st.Nlink)
	}
	return nil
}

// umask returns the process's file mode creation mask, read without
// changing it (Linux 4.7 and later say it in /proc); 022 where it cannot be
// read.
func umask() fs.FileMode {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0o022
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return fs.FileMode(m) & fs.ModePerm
			}
		}
	}
	return 0o022
}

// dirSync says whether a folder can be fsynced here.
const dirSync = true
