package sdk

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// AttributeError is a configuration error about one attribute of the
// plugin's config block. Return one (with AttrError or AttrErrorf) from
// Configure or ValidateConfig and the host reports it at that attribute's
// own file and line in mesh.hcl, instead of at the plugin block:
//
//	if mode != "fast" && mode != "fair" {
//		return sdk.AttrErrorf("mode", `must be "fast" or "fair", got %q`, mode)
//	}
//
// The message should say what is wrong with the value; the host adds the
// attribute's name, the plugin's name and the position itself, so none of
// them needs repeating.
type AttributeError struct {
	// Attribute is the attribute's name, as declared in the Schema; in a
	// nested block, its path: "cache.dir", or "backend[1].weight" for the
	// second of repeated blocks (counting from 0).
	Attribute string
	Err       error // what is wrong with its value
}

func (e *AttributeError) Error() string { return e.Attribute + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *AttributeError) Unwrap() error { return e.Err }

// AttrError returns an *AttributeError for attribute with cause err.
func AttrError(attribute string, err error) error {
	return &AttributeError{Attribute: attribute, Err: err}
}

// AttrErrorf returns an *AttributeError for attribute with a formatted
// message; %w wraps as in fmt.Errorf.
func AttrErrorf(attribute, format string, args ...any) error {
	return &AttributeError{Attribute: attribute, Err: fmt.Errorf(format, args...)}
}

// wireError is how a plugin's configuration error crosses gRPC: an
// AttributeError travels as INVALID_ARGUMENT with a field violation naming
// the attribute, so the client can rebuild it; any other error goes as is.
func wireError(err error) error {
	var ae *AttributeError
	if !errors.As(err, &ae) {
		return err
	}
	st := status.New(codes.InvalidArgument, err.Error())
	if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: ae.Attribute, Description: ae.Err.Error()},
	}}); derr == nil {
		st = d
	}
	return st.Err()
}

// attributeErrorOf rebuilds the AttributeError carried by st, if any.
func attributeErrorOf(st *status.Status) (*AttributeError, bool) {
	if st.Code() != codes.InvalidArgument {
		return nil, false
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) == 1 {
			v := br.FieldViolations[0]
			return &AttributeError{Attribute: v.Field, Err: errors.New(v.Description)}, true
		}
	}
	return nil, false
}
