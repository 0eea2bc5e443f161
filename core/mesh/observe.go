package mesh

import (
	"fmt"
	"time"

	"github.com/mycelium-mesh/mesh/core/rollout"
)

// observe counts what the agents run of digest for app: instances ready,
// ready and registered in the fabric (healthy), still starting, ready on
// another digest, and those failed at or after since. PlanDigest is left to
// the caller.
func (m *Mesh) observe(app, digest string, since time.Time) rollout.Observation {
	if m.clustered {
		return m.observeCluster(app, digest, since) // cluster.go
	}
	var o rollout.Observation
	if p, ok := m.fabric.Plan(app); ok {
		o.Progress.Desired = m.desired(p)
	}
	registered := map[string]bool{}
	for _, ep := range m.fabric.Endpoints(app) {
		registered[ep.URL] = true
	}
	for _, a := range m.agents {
		for _, in := range a.Instances() {
			if in.App != app {
				continue
			}
			if in.Digest != digest {
				if in.State == "ready" {
					o.ReadyOther++
				}
				continue
			}
			switch in.State {
			case "ready":
				o.Progress.Ready++
				o.ReadySince = append(o.ReadySince, in.Since)
				if registered[in.URL] {
					o.Progress.Healthy++
				}
			case "starting":
				o.Starting++
			case "failed":
				// Only failures of this step: an instance of the same
				// digest may have failed in an earlier one.
				if !in.Since.Before(since) {
					o.Failures = append(o.Failures, fmt.Sprintf("%s: %s", in.NodeID, in.LastError))
				}
			}
		}
	}
	o.Claimed = m.fabric.Usage(app).Instances
	return o
}
