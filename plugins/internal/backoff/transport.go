package backoff

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// Transport is an http.RoundTripper that gives every attempt its own
// timeout and retries what Policy says is worth it: connection failures
// and 429/5xx answers, waiting as Delay says (Retry-After first). Other
// answers, 4xx included, are returned at once. A request whose body cannot
// be replayed (no GetBody) is tried once.
type Transport struct {
	Base    http.RoundTripper // default http.DefaultTransport
	Policy  Policy
	Timeout time.Duration // per attempt; 0: none
	// Wait sleeps between attempts (tests may observe it); default a timer
	// that stops early when ctx ends.
	Wait func(ctx context.Context, d time.Duration) error
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	wait := t.Wait
	if wait == nil {
		wait = sleep
	}
	tries := t.Policy.Tries()
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		tries = 1
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := req.Context(), context.CancelFunc(func() {})
		if t.Timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		}
		r := req.Clone(ctx)
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				cancel()
				return nil, err
			}
			r.Body = body
		}
		resp, err := t.base().RoundTrip(r)
		last := attempt >= tries || req.Context().Err() != nil
		var retryAfter string
		switch {
		case err != nil:
			cancel()
			if last || errors.Is(err, context.Canceled) {
				return nil, err
			}
		case Retryable(resp.StatusCode) && !last:
			retryAfter = resp.Header.Get("Retry-After")
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			cancel()
		default:
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		if err := wait(req.Context(), t.Policy.Delay(attempt, retryAfter)); err != nil {
			return nil, err
		}
	}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
