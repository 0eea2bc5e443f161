//go:build !unix

package fdlimit

// Raise does nothing where there is no RLIMIT_NOFILE.
func Raise() (soft, hard uint64, err error) { return Soft(), Soft(), nil }

// Soft returns a nominal limit where the platform has none to read.
func Soft() uint64 { return 1 << 16 }
