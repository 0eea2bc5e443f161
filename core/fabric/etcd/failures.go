package etcd

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// Start failures are written under the Store's lease
// (<prefix>failures/<app>/<node>): an agent's reports vanish with it, as
// its endpoints do. They are read from the cache, like endpoints.

func (s *Store) failureKey(app, node string) string {
	return s.opts.Prefix + "failures/" + app + "/" + node
}

// ReportStartFailure records that an instance failed to start on its node.
// While etcd is out of reach the report is dropped with a warning: the
// control process then judges the rollout at its deadline.
func (s *Store) ReportStartFailure(r fabric.StartFailure) {
	s.mu.Lock()
	lease := s.lease
	s.mu.Unlock()
	if err := s.put("report start failure", s.failureKey(r.AppName, r.NodeID), r, clientv3.WithLease(lease)); err != nil {
		s.log.Warn("start failure not reported", "app", r.AppName, "node", r.NodeID, "error", err)
	}
}

// ClearStartFailure removes the report of app on nodeID, if any.
func (s *Store) ClearStartFailure(app, nodeID string) {
	if s.isClosed() {
		return
	}
	s.deleteKey(s.failureKey(app, nodeID), nil)
}

// StartFailures returns the reports of app sorted by NodeID, as this Store
// last saw them.
func (s *Store) StartFailures(app string) []fabric.StartFailure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fabric.SortedFailures(s.cache.failures[app])
}
