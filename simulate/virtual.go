package simulate

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// ErrVirtualInTest is returned by RunVirtual in a test binary, where the
// testing package is already running: a test runs Run inside
// synctest.Test itself.
var ErrVirtualInTest = errors.New("simulate: RunVirtual cannot host a bubble in a test binary: call Run inside synctest.Test")

// bubbleMu lets one RunVirtual at a time use the testing package, whose
// flags and runner are the process's own.
var bubbleMu sync.Mutex

// RunVirtual runs sc as Run does, inside a testing/synctest bubble that it
// hosts: every node, the network and the faults run on a virtual clock
// that moves only when every goroutine of the run waits (on a timer, a
// channel, a stream with nothing to read), so CPU that the machine lacks
// slows the run down without changing what it measures. The report says
// Clock "virtual" and gives the wall time beside it.
//
// A bubble needs a *testing.T, which only the testing package's runner
// makes; RunVirtual starts that runner for one test in this process
// (testing.MainStart with a test-deps value of its own), which is meant
// for programs that are not tests, such as the peer command. It swaps
// os.Stdout while the bubble runs (what the runner prints is dropped when
// the run passes and copied to os.Stderr when it fails), parses the
// standard flag set with no arguments if nobody has parsed it, and lets
// one call run at a time. In a test binary it returns ErrVirtualInTest:
// wrap Run in synctest.Test there. testing.MainStart is not covered by the
// Go 1 compatibility promise: a Go release that changes it breaks the
// build of this file, not a run.
//
// ctx is outside the bubble; RunVirtual looks at it every 100 ms of
// virtual time and, once it is done, cancels the run as Run would.
// Anything the run blocks on outside the bubble would stop its clock: Run
// uses nothing of the kind (no real socket, no mDNS, no goroutine outside).
// A deadlock inside the bubble (every goroutine waiting and no timer left)
// panics, with the goroutines' stacks: it is a bug of the code under test.
func RunVirtual(ctx context.Context, sc Scenario) (*Report, error) {
	if testing.Testing() {
		return nil, ErrVirtualInTest
	}
	bubbleMu.Lock()
	defer bubbleMu.Unlock()

	var stop atomic.Bool
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	var (
		rep *Report
		err error
		ran bool
	)
	test := func(t *testing.T) {
		synctest.Test(t, func(*testing.T) {
			ran = true
			bctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			watched := make(chan struct{})
			go func() { // ctx's end, brought into the bubble
				defer close(watched)
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-done:
						return
					case <-tick.C:
						if stop.Load() {
							cancel()
							return
						}
					}
				}
			}()
			rep, err = Run(bctx, sc)
			close(done)
			<-watched
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				err = fmt.Errorf("simulate: %w", ctx.Err())
			}
		})
	}
	m := testing.MainStart(bubbleDeps{}, []testing.InternalTest{{Name: "simulate", F: test}}, nil, nil, nil)
	if !flag.Parsed() {
		// The runner reads its -test.* flags; parse none of the
		// command line's arguments, which are not its own.
		if perr := flag.CommandLine.Parse(nil); perr != nil {
			return nil, fmt.Errorf("simulate: virtual clock: %w", perr)
		}
	}
	pr, pw, perr := os.Pipe()
	if perr != nil {
		return nil, fmt.Errorf("simulate: virtual clock: %w", perr)
	}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(&out, pr)
	}()
	saved := os.Stdout
	os.Stdout = pw
	code := m.Run()
	os.Stdout = saved
	pw.Close()
	<-copied
	pr.Close()
	if code != 0 || !ran {
		os.Stderr.Write(out.Bytes())
		if err == nil {
			err = fmt.Errorf("simulate: the virtual-clock bubble failed (runner exit code %d)", code)
		}
	}
	return rep, err
}

// corpusEntry is the testing package's (a struct type alias, so any
// package can name it).
type corpusEntry = struct {
	Parent     string
	Path       string
	Data       []byte
	Values     []any
	Generation int
	IsSeed     bool
}

var errNoTestDeps = errors.New("simulate: not available in the virtual-clock runner")

// bubbleDeps is what testing.MainStart needs to run one test in a program
// that is not a test binary: no profiles, no fuzzing, no coverage; every
// test matches.
type bubbleDeps struct{}

func (bubbleDeps) ImportPath() string                          { return "" }
func (bubbleDeps) ModulePath() string                          { return "" }
func (bubbleDeps) MatchString(pat, str string) (bool, error)   { return true, nil }
func (bubbleDeps) SetPanicOnExit0(bool)                        {}
func (bubbleDeps) StartCPUProfile(io.Writer) error             { return errNoTestDeps }
func (bubbleDeps) StopCPUProfile()                             {}
func (bubbleDeps) StartTestLog(io.Writer)                      {}
func (bubbleDeps) StopTestLog() error                          { return nil }
func (bubbleDeps) WriteProfileTo(string, io.Writer, int) error { return errNoTestDeps }
func (bubbleDeps) CoordinateFuzzing(time.Duration, int64, time.Duration, int64, int, []corpusEntry, []reflect.Type, string, string) error {
	return errNoTestDeps
}
func (bubbleDeps) RunFuzzWorker(func(corpusEntry) error) error { return errNoTestDeps }
func (bubbleDeps) ReadCorpus(string, []reflect.Type) ([]corpusEntry, error) {
	return nil, nil
}
func (bubbleDeps) CheckCorpus([]any, []reflect.Type) error { return nil }
func (bubbleDeps) ResetCoverage()                          {}
func (bubbleDeps) SnapshotCoverage()                       {}
func (bubbleDeps) InitRuntimeCoverage() (string, func(string, string) (string, error), func() float64) {
	return "", nil, nil
}
