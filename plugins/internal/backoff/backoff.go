// Package backoff is the retry policy shared by the cloud hosting plugins:
// which answers are worth another attempt (429 and 5xx, never another 4xx),
// how long to wait (exponential with full jitter, capped), and how a
// server's Retry-After answer overrides that wait.
package backoff

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy is a retry policy. The zero value is usable: see the defaults.
type Policy struct {
	// Attempts is the total number of tries, the first included (default 5).
	Attempts int
	// Base is the wait ceiling before the second try (default 250ms); it
	// doubles each try up to Max.
	Base time.Duration
	// Max caps one wait, Retry-After included (default 30s).
	Max time.Duration
}

func (p Policy) attempts() int {
	if p.Attempts <= 0 {
		return 5
	}
	return p.Attempts
}

// Tries returns the total number of attempts.
func (p Policy) Tries() int { return p.attempts() }

// Retryable reports whether an HTTP status is worth retrying: 429 and 5xx.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// Delay returns how long to wait before attempt+1 (attempt counts from 1):
// the Retry-After value when the server gave one (seconds or an HTTP date),
// else a random wait in [0, min(Max, Base·2^(attempt-1))].
func (p Policy) Delay(attempt int, retryAfter string) time.Duration {
	base, max := p.Base, p.Max
	if base <= 0 {
		base = 250 * time.Millisecond
	}
	if max <= 0 {
		max = 30 * time.Second
	}
	if d, ok := ParseRetryAfter(retryAfter, time.Now()); ok {
		if d > max {
			d = max
		}
		return d
	}
	ceil := base
	for i := 1; i < attempt && ceil < max; i++ {
		ceil *= 2
	}
	if ceil > max {
		ceil = max
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// ParseRetryAfter reads a Retry-After header: delta-seconds or an HTTP
// date (relative to now). It reports false when the value is absent or
// unreadable.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
