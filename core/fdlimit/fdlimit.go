//go:build unix

// Package fdlimit reads and raises the process's limit on open file
// descriptors (RLIMIT_NOFILE).
//
// Every connection the edge accepts, every connection it opens to an
// endpoint, every control API client, plugin channel and workload pipe is
// one descriptor, all counted against one soft limit that is often 1024 by
// default. A mesh raises the soft limit to the hard one when it starts, so
// that the operator's `ulimit -Hn` is what counts, and sizes the edge's
// connection cap from the result, keeping a reserve for everything else.
package fdlimit

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// ceiling bounds a raise when the hard limit is unlimited: the kernel
// refuses soft limits above fs.nr_open, whose default is 1<<20.
const ceiling = 1 << 20

// Raise lifts the soft limit to the hard limit (or to 1<<20 when the hard
// limit is unlimited) and returns the limits in force afterwards. A soft
// limit already at or above the target is left alone.
func Raise() (soft, hard uint64, err error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, fmt.Errorf("getrlimit nofile: %w", err)
	}
	target := rl.Max
	if target == unix.RLIM_INFINITY || target > ceiling {
		target = ceiling
	}
	if rl.Cur >= target {
		return rl.Cur, rl.Max, nil
	}
	want := unix.Rlimit{Cur: target, Max: rl.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
		return rl.Cur, rl.Max, fmt.Errorf("setrlimit nofile soft %d -> %d: %w", rl.Cur, target, err)
	}
	return target, rl.Max, nil
}

// Soft returns the soft limit in force, or 1024 (the usual default) when it
// cannot be read.
func Soft() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	if rl.Cur == unix.RLIM_INFINITY {
		return ceiling
	}
	return rl.Cur
}
