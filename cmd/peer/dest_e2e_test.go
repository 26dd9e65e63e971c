package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peer-project/peer/daemon"
)

// TestGetRefusesHiddenName: a sharer picks the name that get writes when
// no -o is given. A folder named ".ssh" holding authorized_keys, fetched in
// a home folder, must not become ~/.ssh/authorized_keys: get refuses it and
// says to pass -o, through a daemon and with a node of its own; with -o it
// is fetched where the user said. A name that is not hidden is said on
// stderr before it is written. (A UnixFS root has no name: a bare root is
// written under its CID, so the name comes from a path below a root.)
func TestGetRefusesHiddenName(t *testing.T) {
	a := startDaemon(t, "--dht", "off")
	b := startDaemon(t, "--dht", "off")
	src := filepath.Join(t.TempDir(), "dotfiles")
	writeFile(t, filepath.Join(src, ".ssh", "authorized_keys"), []byte("ssh-ed25519 AAAA attacker\n"))
	var sh daemon.ShareInfo
	if err := json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", src)), &sh); err != nil {
		t.Fatal(err)
	}
	sh.Ticket += "/.ssh"
	home := t.TempDir() // the victim's home, where get runs
	get := func(args ...string) (string, error) {
		cmd := exec.Command(peerBin(t), append([]string{"get"}, args...)...)
		cmd.Dir, cmd.Env = home, cleanEnv()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{
		{"--home", b.home, sh.Ticket},
		{"--home", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0", "--dht", "off", sh.Ticket},
	} {
		out, err := get(args...)
		t.Logf("get %v: %v\n%s", args[:2], err, out)
		if err == nil {
			t.Fatalf("get of a root named .ssh with no -o succeeded:\n%s", out)
		}
		if !strings.Contains(out, "-o NAME") || !strings.Contains(out, ".ssh") {
			t.Errorf("the error does not name .ssh and say to pass -o NAME:\n%s", out)
		}
		if _, err := os.Lstat(filepath.Join(home, ".ssh")); !os.IsNotExist(err) {
			t.Fatalf("%s/.ssh exists after the refusal (err %v)", home, err)
		}
	}
	if out, err := get("--home", b.home, "-o", "keys-from-a", sh.Ticket); err != nil {
		t.Fatalf("get -o keys-from-a: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(home, "keys-from-a", "authorized_keys")); err != nil || string(got) != "ssh-ed25519 AAAA attacker\n" {
		t.Fatalf("get -o: %q (%v)", got, err)
	}

	// A name that is not hidden: said before it is written.
	plain := filepath.Join(t.TempDir(), "notes.txt")
	writeFile(t, plain, []byte("notes\n"))
	if err := json.Unmarshal([]byte(ok(t, "share", "--home", a.home, "--json", plain)), &sh); err != nil {
		t.Fatal(err)
	}
	out, err := get("--home", b.home, sh.Ticket)
	if err != nil {
		t.Fatalf("get the root of notes.txt: %v\n%s", err, out)
	}
	// A bare root is named by its CID, as `ipfs get` names it.
	if !strings.Contains(out, "writing "+filepath.Join(home, sh.Root)+"\n") {
		t.Errorf("get did not say where it writes:\n%s", out)
	}
}
