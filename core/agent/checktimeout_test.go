package agent

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
	"github.com/mycelium-mesh/mesh/sdk"
)

// timeoutRecorder passes checks to the HTTP checker and keeps the per-check
// timeout each one was given.
type timeoutRecorder struct {
	next HealthChecker
	mu   sync.Mutex
	seen []time.Duration
}

func (r *timeoutRecorder) Check(ctx context.Context, c sdk.HealthCheck) (sdk.HealthResult, error) {
	r.mu.Lock()
	r.seen = append(r.seen, c.Timeout)
	r.mu.Unlock()
	return r.next.Check(ctx, c)
}

// TestCheckTimeout: the configured per-check timeout (health.timeout) is the
// one each health check gets; zero means the default.
func TestCheckTimeout(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured time.Duration
		want       time.Duration
	}{
		{"default", 0, time.Second},
		{"shorter", 250 * time.Millisecond, 250 * time.Millisecond},
		{"longer", 3 * time.Second, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			rec := &timeoutRecorder{next: healthhttp.New()}
			a := e.startAgent("n1", func(o *Options) {
				o.Health = rec
				o.CheckTimeout = tc.configured
				o.HealthTimeout = 30 * time.Second // the deadline never caps a check here
			})
			d := e.spore("v1", nil)
			e.publish(fabric.Plan{Digest: d, Min: 1, Max: 1})
			a.readyWith(t, "billing", d, 30*time.Second)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.seen) == 0 {
				t.Fatal("no health check recorded")
			}
			for i, got := range rec.seen {
				if got != tc.want {
					t.Fatalf("check %d got timeout %s, want %s", i, got, tc.want)
				}
			}
		})
	}
}

// hangingChecker never answers: each check ends when its context does.
type hangingChecker struct{}

func (hangingChecker) Check(ctx context.Context, _ sdk.HealthCheck) (sdk.HealthResult, error) {
	<-ctx.Done()
	return sdk.HealthResult{}, ctx.Err()
}

// TestCheckTimeoutNamedInFailure: a start whose checks all run out of
// health.timeout says so, with the timeout, rather than only "context
// deadline exceeded".
func TestCheckTimeoutNamedInFailure(t *testing.T) {
	e := newEnv(t)
	a := e.startAgent("n1", func(o *Options) {
		o.Health = hangingChecker{}
		o.CheckTimeout = 100 * time.Millisecond
		o.HealthTimeout = time.Second
	})
	d := e.spore("v1", nil)
	e.publish(fabric.Plan{Digest: d, Min: 1, Max: 1, Restart: "never"})
	var failed []InstanceStatus
	waitFor(t, 30*time.Second, "the start to fail", func() bool {
		failed = a.inState("billing", StateFailed)
		return len(failed) > 0
	})
	if msg := failed[0].LastError; !strings.Contains(msg, "check timeout of 100ms (health.timeout)") {
		t.Fatalf("last error %q does not name the check timeout", msg)
	}
}
