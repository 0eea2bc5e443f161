package agent

import (
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// A failed start is reported in the fabric as well as in Instances: in a
// cluster the control process runs on another host and sees this node's
// instances only through the fabric, and without the report it would wait
// for a rollout's deadline to revert a version that cannot start here.
// The report names the digest and when it failed; it is withdrawn when an
// instance of the app turns ready on this node or the plan moves to
// another digest.

// reportStartFailure publishes that inst did not start.
func (c *appCtl) reportStartFailure(inst *instance, err error) {
	c.a.opts.Fabric.ReportStartFailure(fabric.StartFailure{
		AppName: c.name, NodeID: c.a.opts.NodeID, Digest: inst.digest, Reason: errText(err), At: time.Now(),
	})
	c.reported = inst.digest
}

// clearStartFailure withdraws this node's report of the app, if it made one.
func (c *appCtl) clearStartFailure() {
	if c.reported != "" {
		c.a.opts.Fabric.ClearStartFailure(c.name, c.a.opts.NodeID)
		c.reported = ""
	}
}
