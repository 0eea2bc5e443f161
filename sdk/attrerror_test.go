package sdk

import (
	"errors"
	"fmt"
	"testing"
)

// An AttributeError survives the trip through gRPC status with its
// attribute and message; other errors are left alone.
func TestAttributeErrorOverTheWire(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		attribute string // "" when no AttributeError must come back
		msg       string
	}{
		{"attribute error", AttrErrorf("mode", "must be %q, got %q", "fast", "slow"), "mode", `must be "fast", got "slow"`},
		{"wrapped attribute error", fmt.Errorf("configure: %w", AttrError("dir", errors.New("is required"))), "dir", "is required"},
		{"plain error", errors.New("boom"), "", "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := remoteError(wireError(tc.err))
			var ae *AttributeError
			isAttr := errors.As(got, &ae)
			if tc.attribute == "" {
				if isAttr {
					t.Fatalf("got an AttributeError %v from %v", ae, tc.err)
				}
				if got.Error() != tc.msg {
					t.Fatalf("got %q, want %q", got, tc.msg)
				}
				return
			}
			if !isAttr || ae.Attribute != tc.attribute || ae.Err.Error() != tc.msg {
				t.Fatalf("got %#v, want attribute %q message %q", got, tc.attribute, tc.msg)
			}
		})
	}
}
