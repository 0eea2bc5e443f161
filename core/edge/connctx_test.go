package edge

import (
	"context"
	"testing"
)

// Ending a client connection's context reports context.Canceled, closes
// Done, and allocates nothing (it happens once per connection).
func TestClientCtxCancel(t *testing.T) {
	x := &clientCtx{}
	done := x.Done()
	x.cancel()
	if err := x.Err(); err != context.Canceled {
		t.Fatalf("Err = %v, want context.Canceled", err)
	}
	select {
	case <-done:
	default:
		t.Fatal("Done not closed by cancel")
	}
	x.cancel() // a second end changes nothing
	y := &clientCtx{}
	if a := testing.AllocsPerRun(100, func() {
		y.err.Store(nil)
		y.cancel()
		if y.Err() == nil {
			t.Fatal("Err = nil after cancel")
		}
	}); a != 0 {
		t.Errorf("cancel: %v allocations, want 0", a)
	}
}
