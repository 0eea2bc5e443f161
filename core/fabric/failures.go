package fabric

import "sort"

// Start failures in the embedded store live in memory: they matter only
// while the agents that wrote them run, which is while this process does.

// ReportStartFailure records that an instance failed to start on its node.
func (f *Fabric) ReportStartFailure(r StartFailure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if f.failures == nil {
		f.failures = map[string]map[string]StartFailure{}
	}
	if f.failures[r.AppName] == nil {
		f.failures[r.AppName] = map[string]StartFailure{}
	}
	f.failures[r.AppName][r.NodeID] = r
}

// ClearStartFailure removes the report of app on nodeID, if any.
func (f *Fabric) ClearStartFailure(app, nodeID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.failures[app], nodeID)
	if len(f.failures[app]) == 0 {
		delete(f.failures, app)
	}
}

// StartFailures returns the reports of app sorted by NodeID.
func (f *Fabric) StartFailures(app string) []StartFailure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedFailures(f.failures[app])
}

// sortedFailures lists the reports of one app by node.
func sortedFailures(byNode map[string]StartFailure) []StartFailure {
	out := make([]StartFailure, 0, len(byNode))
	for _, r := range byNode {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// SortedFailures lists the reports of one app by node, for other
// implementations of Store.
func SortedFailures(byNode map[string]StartFailure) []StartFailure { return sortedFailures(byNode) }
