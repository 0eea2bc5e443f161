package repo

import (
	"fmt"
	"strings"
)

// DigestPrefix is the algorithm prefix of every digest this package writes.
const DigestPrefix = "sha256:"

// hexLen is the length of a sha256 digest in hexadecimal.
const hexLen = 64

// ParseDigest validates a digest and returns its bare lowercase hex form.
//
// Accepted forms are "sha256:<64 hex>" and the bare "<64 hex>". The prefix
// must be written in lowercase exactly as above; the hex digits may be upper
// or lower case and are normalised to lowercase, since both spell the same
// value. Anything else (other lengths, other algorithms, whitespace, path
// separators, dots) is refused with an error wrapping ErrBadDigest, so a
// digest can never name a file outside the repository.
func ParseDigest(s string) (string, error) {
	h, hadPrefix := strings.CutPrefix(s, DigestPrefix)
	if !hadPrefix && strings.Contains(s, ":") {
		algo, _, _ := strings.Cut(s, ":")
		return "", fmt.Errorf("%w: %q: unsupported algorithm %q (want %q)", ErrBadDigest, clip(s), algo, strings.TrimSuffix(DigestPrefix, ":"))
	}
	if len(h) != hexLen {
		return "", fmt.Errorf("%w: %q: want %d hex digits, got %d characters", ErrBadDigest, clip(s), hexLen, len(h))
	}
	out := make([]byte, hexLen)
	for i := 0; i < hexLen; i++ {
		c := h[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			out[i] = c
		case c >= 'A' && c <= 'F':
			out[i] = c + ('a' - 'A')
		default:
			return "", fmt.Errorf("%w: %q: character %q at position %d is not a hex digit", ErrBadDigest, clip(s), c, i)
		}
	}
	return string(out), nil
}

// FormatDigest returns the canonical "sha256:<hex>" form of a bare hex digest.
func FormatDigest(hex string) string { return DigestPrefix + hex }

// NormalizeDigest validates a digest in either accepted form and returns its
// canonical "sha256:<64 lowercase hex>" form.
func NormalizeDigest(s string) (string, error) {
	h, err := ParseDigest(s)
	if err != nil {
		return "", err
	}
	return FormatDigest(h), nil
}

// clip keeps error messages readable when a caller passes something huge.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
