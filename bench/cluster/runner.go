package main

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// runner lets the bench use the project's test harnesses (internal/etcdtest
// and internal/netnstest, written against testing.TB) from a plain main.
// Only the methods those packages call are implemented; Fatal and Skip end
// the bench's current step with a panic that run recovers, and cleanups run
// in reverse order when the bench ends (or is interrupted).
type runner struct {
	testing.TB // nil: a method not overridden here is a bug of the bench

	mu       sync.Mutex
	cleanups []func()
	dir      string
	n        int
}

// abort is what Fatal and Skip panic with.
type abort struct {
	msg  string
	skip bool
}

func (a abort) Error() string { return a.msg }

func newRunner(dir string) *runner { return &runner{dir: dir} }

func (r *runner) Helper()                 {}
func (r *runner) Name() string            { return "clusterbench" }
func (r *runner) Failed() bool            { return false }
func (r *runner) Log(a ...any)            { fmt.Fprintln(os.Stderr, a...) }
func (r *runner) Logf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (r *runner) Errorf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "error: "+f+"\n", a...)
}
func (r *runner) Fatal(a ...any)            { panic(abort{msg: fmt.Sprint(a...)}) }
func (r *runner) Fatalf(f string, a ...any) { panic(abort{msg: fmt.Sprintf(f, a...)}) }
func (r *runner) Skip(a ...any)             { panic(abort{msg: fmt.Sprint(a...), skip: true}) }
func (r *runner) Skipf(f string, a ...any)  { panic(abort{msg: fmt.Sprintf(f, a...), skip: true}) }

// TempDir is a fresh directory under the bench's scratch directory.
func (r *runner) TempDir() string {
	r.mu.Lock()
	r.n++
	n := r.n
	r.mu.Unlock()
	d := fmt.Sprintf("%s/t%03d", r.dir, n)
	if err := os.MkdirAll(d, 0o755); err != nil {
		r.Fatalf("scratch directory: %v", err)
	}
	return d
}

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.mu.Unlock()
}

// cleanup runs every registered cleanup, newest first, once.
func (r *runner) cleanup() {
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if e := recover(); e != nil {
					fmt.Fprintln(os.Stderr, "cleanup:", e)
				}
			}()
			fs[i]()
		}()
	}
}

// catch runs f and turns a Fatal or Skip inside it into an error.
func catch(f func()) (err error) {
	defer func() {
		if e := recover(); e != nil {
			if a, ok := e.(abort); ok {
				err = a
				return
			}
			panic(e)
		}
	}()
	f()
	return nil
}
