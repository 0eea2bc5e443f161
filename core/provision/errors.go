package provision

import (
	"errors"
	"fmt"
)

// The kinds of refusal a message can earn. Every refusal is a *FieldError
// wrapping one of these, so callers can test the kind with errors.Is and
// still print which field was at fault.
var (
	ErrRequired    = errors.New("required")
	ErrUnknownEnum = errors.New("unknown enum ordinal")
	ErrTooLong     = errors.New("too long")
	ErrTooMany     = errors.New("too many elements")
	ErrBadText     = errors.New("not printable UTF-8")
	ErrBadLabel    = errors.New("not a DNS label")
	ErrBadHost     = errors.New("not a host name")
	ErrBadPath     = errors.New("not a relative path inside the site")
	ErrDuplicate   = errors.New("duplicate")
	ErrMalformed   = errors.New("malformed")
)

// FieldError is a refusal of one field of a message. Field is the dotted
// schema path (site.id, domains.aliases[2]).
type FieldError struct {
	Field  string
	Kind   error
	Detail string
}

func (e *FieldError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s: %v", e.Field, e.Kind)
	}
	return fmt.Sprintf("%s: %v: %s", e.Field, e.Kind, e.Detail)
}

func (e *FieldError) Unwrap() error { return e.Kind }

func fieldErr(field string, kind error, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Kind: kind, Detail: fmt.Sprintf(format, a...)}
}
