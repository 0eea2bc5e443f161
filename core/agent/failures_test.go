package agent

import (
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// TestStartFailureReportedInFabric: a version that never turns healthy is
// reported in the fabric with its digest and reason, for a control process
// that sees this node only through the fabric; the plan moving back to the
// version still serving withdraws the report, and so does an instance
// turning ready.
func TestStartFailureReportedInFabric(t *testing.T) {
	e := newEnv(t)
	good := e.spore("v1", nil)
	bad := e.spore("v2", map[string]string{"HELLO_HEALTH": "fail"})
	a := e.startAgent("n1", func(o *Options) { o.HealthTimeout = 500 * time.Millisecond })
	e.publish(fabric.Plan{Digest: good})
	a.readyWith(t, "billing", good, 10*time.Second)
	if got := e.fab.StartFailures("billing"); len(got) != 0 {
		t.Fatalf("reports after a good start: %+v", got)
	}
	began := time.Now()
	e.publish(fabric.Plan{Digest: bad})
	var r fabric.StartFailure
	waitFor(t, 10*time.Second, "the broken version's failure in the fabric", func() bool {
		got := e.fab.StartFailures("billing")
		if len(got) == 1 {
			r = got[0]
		}
		return len(got) == 1
	})
	if r.NodeID != "n1" || r.Digest != bad || r.Reason == "" || r.At.Before(began) {
		t.Fatalf("report %+v, want n1, digest %s, a reason, at or after %s", r, bad, began)
	}
	e.publish(fabric.Plan{Digest: good})
	waitFor(t, 10*time.Second, "the report withdrawn once the plan names v1 again", func() bool {
		return len(e.fab.StartFailures("billing")) == 0
	})
	e.publish(fabric.Plan{Digest: bad})
	waitFor(t, 10*time.Second, "v2 failing again", func() bool { return len(e.fab.StartFailures("billing")) == 1 })
	fixed := e.spore("v3", nil)
	e.publish(fabric.Plan{Digest: fixed})
	a.readyWith(t, "billing", fixed, 10*time.Second)
	waitFor(t, 10*time.Second, "the report withdrawn once v3 is ready", func() bool {
		return len(e.fab.StartFailures("billing")) == 0
	})
}
