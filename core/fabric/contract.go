package fabric

import (
	"context"
	"time"
)

// Store is the contract of a control fabric: what agents, edges and the
// control process use of it. *Fabric, the embedded single-machine store, is
// one implementation; a clustered store keeps the same state in a shared
// database. Every implementation must pass the conformance suite in
// package fabrictest, which pins the semantics the package documentation
// describes:
//
//   - Plans and budgets are desired state. A write returns once the state
//     is stored; reads through the same Store see it at once (read your
//     writes). Other Stores of the same fabric see it eventually, in order.
//   - Subscribe never makes a publisher wait, coalesces plans per app and
//     drops none: a slow reader receives the newest plan of every app that
//     changed.
//   - Acquire is atomic across every Store of the fabric: two agents never
//     both get the last slot.
//   - Endpoints belong to the node that registered them; WatchEndpoints
//     yields whole tables, skipping versions for a slow watcher.
type Store interface {
	// PublishPlan stores p and hands it to every subscriber.
	PublishPlan(p Plan) error
	// SwapPlan publishes p only while the app's plan is still old (nil:
	// while it has none); otherwise it fails with ErrConflict.
	SwapPlan(old *Plan, p Plan) error
	// DeletePlan withdraws an app; ErrNotFound when it has no plan.
	DeletePlan(app string) error
	// Plans returns the current plans sorted by app.
	Plans() []Plan
	// Plan returns the current plan of app.
	Plan(app string) (Plan, bool)
	// Subscribe yields every current plan, then each change, coalesced per
	// app, until ctx ends or the store is closed.
	Subscribe(ctx context.Context) <-chan Plan

	// SetBudget stores b, revoking the claims of nodes in excess.
	SetBudget(b Budget) error
	// GetBudget returns the budget of app.
	GetBudget(app string) (Budget, bool)
	// Usage returns what the claims of app hold.
	Usage(app string) Usage
	// Acquire reserves an instance of app on nodeID or fails with an error
	// wrapping ErrBudgetExceeded.
	Acquire(app, nodeID string, cpuMilli, memoryMB int) (*Lease, error)

	// RegisterEndpoint sets the endpoint of (e.AppName, e.NodeID).
	RegisterEndpoint(e Endpoint)
	// DeregisterEndpoint removes the endpoint of app on nodeID, if any.
	DeregisterEndpoint(app, nodeID string)
	// RemoveEndpoint removes e only while it is still the registered
	// endpoint of its app and node, and reports whether it did.
	RemoveEndpoint(e Endpoint) bool
	// Endpoints returns the endpoints of app sorted by NodeID.
	Endpoints(app string) []Endpoint
	// Degraded reports whether app is planned and has fewer endpoints than
	// its plan's Min.
	Degraded(app string) bool
	// WatchEndpoints yields the endpoint table, then the newest table after
	// each change, until ctx ends or the store is closed.
	WatchEndpoints(ctx context.Context) <-chan Snapshot

	// ReportStartFailure records that an instance of f.Digest of f.AppName
	// failed to start on f.NodeID, replacing that node's earlier report of
	// the app, so that the control process (on another host, in a cluster)
	// judges the rollout without waiting for its deadline. A report lives
	// as long as its writer: in a cluster, under the writer's lease.
	ReportStartFailure(f StartFailure)
	// ClearStartFailure removes the report of app on nodeID, if any.
	ClearStartFailure(app, nodeID string)
	// StartFailures returns the reports of app sorted by NodeID.
	StartFailures(app string) []StartFailure

	// Close ends every subscription and watch and releases the store.
	Close() error
}

// StartFailure is an agent's report that an instance did not start.
type StartFailure struct {
	AppName string    `json:"app"`
	NodeID  string    `json:"node"`
	Digest  string    `json:"digest"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"` // the agent's clock
}

var _ Store = (*Fabric)(nil)

// NewLease makes the Lease an implementation of Store hands out: revoked
// is closed when the fabric revokes the claim, release gives it back and
// is called at most once, however often Release is. Keep releases too.
func NewLease(revoked <-chan struct{}, release func()) *Lease {
	return &Lease{revoked: revoked, release: release, keep: release}
}

// NewKeptLease is NewLease for a store whose claims outlive the process:
// keep, called at most once and never after release, leaves the claim to
// the next run of its node (Lease.Keep).
func NewKeptLease(revoked <-chan struct{}, release, keep func()) *Lease {
	return &Lease{revoked: revoked, release: release, keep: keep}
}
