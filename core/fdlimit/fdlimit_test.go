//go:build unix

package fdlimit

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestRaise lowers the soft limit, raises it back with Raise and checks that
// the hard limit is what is in force afterwards.
func TestRaise(t *testing.T) {
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &orig) })
	if orig.Max < 512 {
		t.Fatalf("hard limit %d is too low to test with", orig.Max)
	}
	low := unix.Rlimit{Cur: 256, Max: orig.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	if got := Soft(); got != 256 {
		t.Fatalf("Soft() = %d after lowering to 256", got)
	}
	soft, hard, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	want := orig.Max
	if want > ceiling {
		want = ceiling
	}
	if soft != want || hard != orig.Max || Soft() != want {
		t.Errorf("Raise() = %d, %d; Soft() = %d; want soft %d, hard %d", soft, hard, Soft(), want, orig.Max)
	}
	// A second raise changes nothing.
	if s2, _, err := Raise(); err != nil || s2 != soft {
		t.Errorf("second Raise() = %d, %v", s2, err)
	}
}
