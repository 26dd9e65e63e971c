package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fsMagic returns the type of the file system dir lies on (statfs's
// f_type), or skips the test when dir cannot be looked at.
func fsMagic(t *testing.T, dir string) int64 {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Skipf("%s: %v", dir, err)
	}
	return int64(s.Type)
}

// TestShareSaysNoStamps: `peer share` of a file on tmpfs (/dev/shm) says,
// on one line, that every chunk it serves is hashed again and what to do,
// and --json says keeps_stamps false; a file on a disk file system (the
// test's temporary folder, ext4, xfs or btrfs) gets no such line and
// keeps_stamps true.
func TestShareSaysNoStamps(t *testing.T) {
	if fsMagic(t, "/dev/shm") != unix.TMPFS_MAGIC {
		t.Skip("/dev/shm is not tmpfs here")
	}
	shm, err := os.MkdirTemp("/dev/shm", "peer-test-")
	if err != nil {
		t.Skipf("no folder of our own in /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	disk := t.TempDir()
	onDisk := false
	switch fsMagic(t, disk) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC:
		onDisk = true
	}

	a := startDaemon(t)
	share := func(path string, json bool) string {
		t.Helper()
		args := []string{"share", "--home", a.home}
		if json {
			args = append(args, "--json")
		}
		return ok(t, append(args, path)...)
	}
	noteOf := func(out string) string {
		for l := range strings.SplitSeq(out, "\n") {
			if strings.Contains(l, "stamps") {
				return l
			}
		}
		return ""
	}
	keeps := func(out string) any {
		t.Helper()
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("share --json: %v\n%s", err, out)
		}
		return got["keeps_stamps"]
	}

	tmpfsFile := filepath.Join(shm, "on-tmpfs.bin")
	writeFile(t, tmpfsFile, randomBytes(300<<10, 7))
	if l := noteOf(share(tmpfsFile, false)); l != noStampsNote {
		t.Errorf("a share on tmpfs says %q; want %q", l, noStampsNote)
	}
	if k := keeps(share(tmpfsFile, true)); k != false {
		t.Errorf("a share on tmpfs: keeps_stamps %v in its JSON, want false", k)
	}

	if !onDisk {
		t.Skipf("the temporary folder %s is on no disk file system that keeps stamps (type %#x): the other half is left out", disk, fsMagic(t, disk))
	}
	diskFile := filepath.Join(disk, "on-disk.bin")
	writeFile(t, diskFile, randomBytes(300<<10, 8))
	if l := noteOf(share(diskFile, false)); l != "" {
		t.Errorf("a share on a disk file system says %q; want no word of stamps", l)
	}
	if k := keeps(share(diskFile, true)); k != true {
		t.Errorf("a share on a disk file system: keeps_stamps %v in its JSON, want true", k)
	}
}
