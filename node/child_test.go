package node

import (
	"bufio"
	"io"
	"os/exec"
	"testing"
)

// startPiped starts cmd (usually this test binary again, in a child role)
// with its stdin on a pipe, which the caller may close to end it, and its
// stdout on a line scanner. The child is killed and reaped when the test
// ends, whatever happened.
func startPiped(tb testing.TB, cmd *exec.Cmd) (io.WriteCloser, *bufio.Scanner) {
	tb.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return in, sc
}
