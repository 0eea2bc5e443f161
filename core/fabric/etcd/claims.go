package etcd

import (
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// ownClaim is a claim this Store holds.
type ownClaim struct {
	app, node string
	rec       claimRec
	lease     clientv3.LeaseID
	revoked   chan struct{}
	gone      bool // revoked; under Store.mu
	releasing bool // Release called; under Store.mu
}

func (oc *ownClaim) revoke() {
	if !oc.gone {
		oc.gone = true
		close(oc.revoked)
	}
}

// contention bounds how often Acquire retries a transaction that lost a
// race with another claim.
const contention = 64

// sizes gathers one app's claims, node -> key -> record, for the admission
// rules the embedded store uses too.
func sizes(claims map[string]map[string]claimRec) fabric.AppClaims {
	out := fabric.AppClaims{}
	for node, cs := range claims {
		for _, c := range cs {
			out[node] = append(out[node], c.size())
		}
	}
	return out
}

func (c claimRec) size() fabric.ClaimSize {
	return fabric.ClaimSize{CPU: c.CPU, Mem: c.Mem, Revoked: c.Revoked}
}

// keptClaim returns a claim of a node that a previous run of it kept
// (Lease.Keep), if there is one: the claim a new claim of the node takes
// over.
func keptClaim(claims map[string]claimRec) string {
	for key, c := range claims {
		if c.Kept && !c.Revoked {
			return key
		}
	}
	return ""
}

// Usage returns what the claims of app hold, as this Store last saw them.
func (s *Store) Usage(app string) fabric.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sizes(s.cache.claims[app]).Usage("", nil)
}

// Acquire reserves an instance of app on nodeID, atomically across every
// Store of the fabric.
func (s *Store) Acquire(app, nodeID string, cpuMilli, memoryMB int) (*fabric.Lease, error) {
	if cpuMilli < 0 || memoryMB < 0 {
		return nil, fmt.Errorf("%w claim %s on %s: negative resources", fabric.ErrInvalid, app, nodeID)
	}
	if !fabric.ValidAppName(app) || !fabric.ValidAppName(nodeID) {
		return nil, fmt.Errorf("%w claim %q on %q: bad app or node name", fabric.ErrInvalid, app, nodeID)
	}
	rec := claimRec{CPU: cpuMilli, Mem: memoryMB}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("claim %s on %s: encode: %w", app, nodeID, err)
	}
	planKey, budgetKey, prefix := s.planKey(app), s.budgetKey(app), s.claimsPrefix(app)
	ctx, cancel := s.opCtx()
	defer cancel()
	for range contention {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, fabric.ErrClosed
		}
		s.seq++
		lease := s.lease
		key := fmt.Sprintf("%s%s/%x-%d", prefix, nodeID, int64(lease), s.seq)
		s.mu.Unlock()

		read, err := s.cli.Txn(ctx).Then(
			clientv3.OpGet(planKey), clientv3.OpGet(budgetKey), clientv3.OpGet(prefix, clientv3.WithPrefix()),
		).Commit()
		if err != nil {
			return nil, fmt.Errorf("claim %s on %s: read limits: %w", app, nodeID, err)
		}
		rev := read.Header.Revision
		var (
			p       fabric.Plan
			b       fabric.Budget
			hasPlan bool
			claims  = map[string]map[string]claimRec{}
		)
		if kvs := read.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
			hasPlan = json.Unmarshal(kvs[0].Value, &p) == nil
		}
		if kvs := read.Responses[1].GetResponseRange().Kvs; len(kvs) == 1 {
			_ = json.Unmarshal(kvs[0].Value, &b)
		}
		st := newState()
		for _, kv := range read.Responses[2].GetResponseRange().Kvs {
			s.apply(&st, string(kv.Key), kv.Value)
		}
		claims = st.claims[app]
		// A claim the node's previous run kept is this one's slot: it is
		// not counted, and the write below replaces it.
		prev := keptClaim(claims[nodeID])
		if prev != "" {
			delete(claims[nodeID], prev)
		}
		if err := sizes(claims).Admit(app, nodeID, fabric.LimitsOf(p, hasPlan, b), rec.size()); err != nil {
			return nil, err
		}
		ops := []clientv3.Op{clientv3.OpPut(key, string(data), clientv3.WithLease(lease))}
		if prev != "" {
			ops = append(ops, clientv3.OpDelete(prev))
		}
		oc := &ownClaim{app: app, node: nodeID, rec: rec, lease: lease, revoked: make(chan struct{})}
		s.mu.Lock()
		s.own[key] = oc
		s.mu.Unlock()
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(prefix).WithPrefix(), "<", rev+1),
			clientv3.Compare(clientv3.ModRevision(planKey), "<", rev+1),
			clientv3.Compare(clientv3.ModRevision(budgetKey), "<", rev+1),
		).Then(ops...).Commit()
		if err != nil || !resp.Succeeded {
			s.mu.Lock()
			delete(s.own, key)
			s.mu.Unlock()
			if err != nil {
				return nil, fmt.Errorf("claim %s on %s: %w", app, nodeID, err)
			}
			continue
		}
		if err := s.waitRev(ctx, resp.Header.Revision); err != nil {
			return nil, fmt.Errorf("claim %s on %s: %w", app, nodeID, err)
		}
		if prev != "" {
			s.log.Info("claim kept by the node's previous run taken over", "app", app, "node", nodeID)
		}
		return fabric.NewKeptLease(oc.revoked, func() { s.release(key, oc) }, func() { s.keep(key, oc) }), nil
	}
	return nil, fmt.Errorf("claim %s on %s: still contended after %d attempts", app, nodeID, contention)
}

// release deletes a claim. It tries once and returns: while etcd is out of
// reach (this host cut off) it keeps trying in the background until the
// Store closes, so an agent stopping an instance never waits on etcd; the
// claim dies with the Store's lease in any case. A claim written under a
// lease that was lost went with it, and needs no delete.
func (s *Store) release(key string, oc *ownClaim) {
	s.mu.Lock()
	oc.releasing = true
	stale := oc.lease != s.lease
	closed := s.closed
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.own, key)
		s.mu.Unlock()
	}
	if stale || closed || s.deleteClaim(key) == nil {
		forget()
		return
	}
	s.log.Warn("claim not released yet; retrying", "key", key)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer forget()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			s.mu.Lock()
			stale := oc.lease != s.lease
			s.mu.Unlock()
			if stale || s.deleteClaim(key) == nil {
				return
			}
		}
	}()
}

// keep marks a claim kept for the next run of its node (Lease.Keep) and
// lets go of it: Close then leaves the Store's lease to expire instead of
// revoking it, so the claim, and the endpoint of its running instance,
// last for the lease TTL after this process ends. The next run takes the
// claim over when it claims the app on the node again (Acquire); if none
// comes within the TTL, both expire as a dead host's do. When the mark
// cannot be written (etcd out of reach), the claim is released instead.
func (s *Store) keep(key string, oc *ownClaim) {
	s.mu.Lock()
	oc.releasing = true // never revoked from now on
	live := oc.lease == s.lease && !s.closed && !oc.gone
	s.mu.Unlock()
	if !live { // went with its lease, or is being given back anyway
		s.release(key, oc)
		return
	}
	rec := oc.rec
	rec.Kept = true
	data, err := json.Marshal(rec)
	if err == nil {
		ctx, cancel := s.opCtx()
		var resp *clientv3.TxnResponse
		resp, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
			Then(clientv3.OpPut(key, string(data), clientv3.WithLease(oc.lease))).Commit()
		cancel()
		if err == nil && !resp.Succeeded {
			err = fmt.Errorf("claim %s is gone", key)
		}
	}
	if err != nil {
		s.log.Warn("claim not kept for the next run; giving it back", "key", key, "error", err)
		s.release(key, oc)
		return
	}
	s.mu.Lock()
	delete(s.own, key)
	s.kept++
	s.mu.Unlock()
}

// deleteClaim deletes a claim key and waits until the cache saw it.
func (s *Store) deleteClaim(key string) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	resp, err := s.cli.Delete(ctx, key)
	if err == nil {
		err = s.waitRev(ctx, resp.Header.Revision)
	}
	return err
}

// revokeExcessLocked revokes this Store's claims on the nodes of app that
// are in excess of its limits, and marks them revoked in etcd.
func (s *Store) revokeExcessLocked(app string) {
	p, hasPlan := s.cache.plans[app]
	over := sizes(s.cache.claims[app]).Excess(fabric.LimitsOf(p, hasPlan, s.cache.budgets[app]), "", nil)
	for key, oc := range s.own {
		if oc.app != app || !over[oc.node] || oc.gone || oc.releasing {
			continue
		}
		oc.revoke()
		s.log.Info("claim revoked: limits lowered", "app", app, "node", oc.node)
		rec := oc.rec
		rec.Revoked = true
		go s.markRevoked(key, rec, oc.lease)
	}
}

// markRevoked records in etcd that a claim is revoked, while it exists.
func (s *Store) markRevoked(key string, rec claimRec, lease clientv3.LeaseID) {
	data, err := json.Marshal(rec)
	if err != nil {
		return
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	_, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(clientv3.OpPut(key, string(data), clientv3.WithLease(lease))).Commit()
	if err != nil && s.ctx.Err() == nil {
		s.log.Warn("revoked claim not marked in etcd", "key", key, "error", err)
	}
}
