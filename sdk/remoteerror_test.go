package sdk

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRemoteError: gRPC context errors keep their cause for errors.Is, and
// say it once.
func TestRemoteError(t *testing.T) {
	for _, tc := range []struct {
		in   error
		text string
		is   error
	}{
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), "context deadline exceeded", context.DeadlineExceeded},
		{status.Error(codes.DeadlineExceeded, "dial: timed out"), "dial: timed out: context deadline exceeded", context.DeadlineExceeded},
		{status.Error(codes.Canceled, "context canceled"), "context canceled", context.Canceled},
		{status.Error(codes.Unknown, "boom"), "boom", nil},
	} {
		got := remoteError(tc.in)
		if got.Error() != tc.text {
			t.Errorf("remoteError(%v) = %q, want %q", tc.in, got, tc.text)
		}
		if tc.is != nil && !errors.Is(got, tc.is) {
			t.Errorf("remoteError(%v) is not %v", tc.in, tc.is)
		}
	}
}
