package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/sdk"
)

// scriptedChecker answers the checks of each instance (by URL) from a
// script, repeating its last answer, and counts them.
type scriptedChecker struct {
	script []checkAnswer
	mu     sync.Mutex
	calls  map[string]int
}

type checkAnswer struct {
	res sdk.HealthResult
	err error
}

func (c *scriptedChecker) Check(_ context.Context, hc sdk.HealthCheck) (sdk.HealthResult, error) {
	c.mu.Lock()
	n := c.calls[hc.URL]
	c.calls[hc.URL] = n + 1
	c.mu.Unlock()
	a := c.script[min(n, len(c.script)-1)]
	return a.res, a.err
}

func (c *scriptedChecker) count(url string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[url]
}

// The health checker contract the sdk documents: an error and
// Healthy:false are both retried, the first Healthy:true makes the
// instance ready and ends its checks (they are no liveness probe), and an
// instance that never gets healthy fails with the last answer as its
// reason, an error's text included.
func TestHealthCheckerContract(t *testing.T) {
	var (
		broke   = checkAnswer{err: errors.New("checker could not dial")}
		warming = checkAnswer{res: sdk.HealthResult{Reason: "warming up"}}
		healthy = checkAnswer{res: sdk.HealthResult{Healthy: true}}
	)
	for _, tc := range []struct {
		name   string
		script []checkAnswer
		reason string // "": the instance gets ready
	}{
		{"error, then not healthy, then healthy", []checkAnswer{broke, warming, broke, healthy}, ""},
		{"errors only", []checkAnswer{broke}, "checker could not dial"},
		{"not healthy only", []checkAnswer{warming}, "warming up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			hc := &scriptedChecker{script: tc.script, calls: map[string]int{}}
			a := e.startAgent("n1", func(o *Options) {
				o.Health = hc
				o.HealthTimeout = 2 * time.Second
				o.Warmup = 50 * time.Millisecond
			})
			v1 := e.spore("v1", nil)
			e.publish(fabric.Plan{Digest: v1})
			if tc.reason != "" {
				waitFor(t, 10*time.Second, "instance failed", func() bool { return len(a.inState("billing", StateFailed)) > 0 })
				f := a.inState("billing", StateFailed)[0]
				if !strings.Contains(f.LastError, tc.reason) {
					t.Fatalf("failed with %q, want the checker's last answer %q", f.LastError, tc.reason)
				}
				if n := hc.count(f.URL); n < 2 {
					t.Errorf("%d checks before giving up, want it retried", n)
				}
				return
			}
			first := a.readyWith(t, "billing", v1, 10*time.Second)
			atReady := hc.count(first.URL)
			if atReady != len(tc.script) {
				t.Fatalf("%d checks until ready, want %d (each answer retried until Healthy:true)", atReady, len(tc.script))
			}
			// A second version's whole start, health gate and all, is the
			// window in which a liveness probe of the first would show.
			v2 := e.spore("v2", nil)
			e.publish(fabric.Plan{Digest: v2})
			second := a.readyWith(t, "billing", v2, 10*time.Second)
			if n := hc.count(first.URL); n != atReady {
				t.Errorf("the ready instance was checked %d more times; checks must end at readiness", n-atReady)
			}
			if n := hc.count(second.URL); n != len(tc.script) {
				t.Errorf("second instance: %d checks, want %d", n, len(tc.script))
			}
		})
	}
}
