package etcd

import (
	"context"
	"encoding/json"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// RegisterEndpoint sets the endpoint of (e.AppName, e.NodeID) under the
// Store's lease. When etcd is out of reach the endpoint is written later;
// it is kept as what this Store wants until it is removed.
func (s *Store) RegisterEndpoint(e fabric.Endpoint) {
	s.emu.Lock()
	defer s.emu.Unlock()
	key := s.endpointKey(e.AppName, e.NodeID)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.desired[key] = e
	lease := s.lease
	s.mu.Unlock()
	if err := s.put("register endpoint", key, e, clientv3.WithLease(lease)); err != nil {
		s.log.Warn("endpoint not written yet; retrying", "app", e.AppName, "node", e.NodeID, "error", err)
		s.kickReassert()
	}
}

// DeregisterEndpoint removes the endpoint of app on nodeID, if any.
func (s *Store) DeregisterEndpoint(app, nodeID string) {
	s.emu.Lock()
	defer s.emu.Unlock()
	key := s.endpointKey(app, nodeID)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	delete(s.desired, key)
	s.mu.Unlock()
	s.deleteKey(key, nil)
}

// RemoveEndpoint removes e only while it is still the registered endpoint
// of its app and node.
func (s *Store) RemoveEndpoint(e fabric.Endpoint) bool {
	s.emu.Lock()
	defer s.emu.Unlock()
	key := s.endpointKey(e.AppName, e.NodeID)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	cur, mine := s.desired[key]
	if mine && cur != e {
		s.mu.Unlock()
		return false
	}
	delete(s.desired, key)
	s.mu.Unlock()
	data, err := json.Marshal(e)
	if err != nil {
		return false
	}
	return s.deleteKey(key, data) || mine
}

// deleteKey deletes key (only while it holds value, when value is set),
// waits for the cache, and reports whether it deleted.
func (s *Store) deleteKey(key string, value []byte) bool {
	ctx, cancel := s.opCtx()
	defer cancel()
	txn := s.cli.Txn(ctx)
	if value != nil {
		txn = txn.If(clientv3.Compare(clientv3.Value(key), "=", string(value)))
	}
	resp, err := txn.Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		s.log.Warn("endpoint not deleted; it expires with the lease", "key", key, "error", err)
		return false
	}
	_ = s.waitRev(ctx, resp.Header.Revision)
	if !resp.Succeeded {
		return false
	}
	return resp.Responses[0].GetResponseDeleteRange().Deleted > 0
}

// Endpoints returns the endpoints of app sorted by NodeID.
func (s *Store) Endpoints(app string) []fabric.Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fabric.Endpoint(nil), s.snapshot.Apps[app]...)
}

// Degraded reports whether app is planned and has fewer endpoints than its
// plan's Min.
func (s *Store) Degraded(app string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.cache.plans[app]
	return ok && len(s.snapshot.Apps[app]) < p.Min
}

// WatchEndpoints yields the endpoint table, then the newest one after each
// change; a slow watcher skips versions.
func (s *Store) WatchEndpoints(ctx context.Context) <-chan fabric.Snapshot {
	ch := make(chan fabric.Snapshot, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(ch)
		return ch
	}
	ch <- s.snapshot
	s.watchers[ch] = struct{}{}
	s.mu.Unlock()
	if ctx.Done() != nil {
		go func() {
			<-ctx.Done()
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, ok := s.watchers[ch]; ok {
				delete(s.watchers, ch)
				close(ch)
			}
		}()
	}
	return ch
}
