package etcd

import (
	"encoding/json"
	"fmt"
	"sort"
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

// limits is what bounds an app: min(Plan.Max, Budget.MaxInstances) and the
// budget's resources, 0 = none.
type limits struct {
	instances, cpu, mem int
}

func limitsOf(p fabric.Plan, hasPlan bool, b fabric.Budget) limits {
	l := limits{cpu: b.CPUmilli, mem: b.MemoryMB}
	if hasPlan {
		l.instances = p.Max
	}
	if b.MaxInstances > 0 && (l.instances == 0 || b.MaxInstances < l.instances) {
		l.instances = b.MaxInstances
	}
	return l
}

func (l limits) none() bool { return l.instances == 0 && l.cpu == 0 && l.mem == 0 }

// usage counts nodes holding at least one claim, each sized by the largest
// of its claims (revoked ones included, since their instances may still
// run), plus extra on extraNode when extra is set.
func usage(claims map[string]map[string]claimRec, extraNode string, extra *claimRec) fabric.Usage {
	var u fabric.Usage
	seen := false
	for node, cs := range claims {
		if len(cs) == 0 {
			continue
		}
		cpu, mem := 0, 0
		for _, c := range cs {
			cpu, mem = max(cpu, c.CPU), max(mem, c.Mem)
		}
		if extra != nil && node == extraNode {
			cpu, mem, seen = max(cpu, extra.CPU), max(mem, extra.Mem), true
		}
		u.Instances++
		u.CPUmilli += cpu
		u.MemoryMB += mem
	}
	if extra != nil && !seen {
		u.Instances++
		u.CPUmilli += extra.CPU
		u.MemoryMB += extra.Mem
	}
	return u
}

// excess returns the nodes beyond the limits, decided as the embedded store
// does: nodes with an unrevoked claim in node-ID order, each sized by its
// largest unrevoked claim; from the first whose admission breaks a limit
// on, every node is in excess.
func excess(l limits, claims map[string]map[string]claimRec, extraNode string, extra *claimRec) map[string]bool {
	if l.none() {
		return nil
	}
	type nodeUse struct {
		id       string
		cpu, mem int
	}
	var nodes []nodeUse
	for id, cs := range claims {
		u, held := nodeUse{id: id}, false
		for _, c := range cs {
			if !c.Revoked {
				u.cpu, u.mem, held = max(u.cpu, c.CPU), max(u.mem, c.Mem), true
			}
		}
		if extra != nil && id == extraNode {
			u.cpu, u.mem, held = max(u.cpu, extra.CPU), max(u.mem, extra.Mem), true
		}
		if held {
			nodes = append(nodes, u)
		}
	}
	if _, ok := claims[extraNode]; extra != nil && !ok {
		nodes = append(nodes, nodeUse{id: extraNode, cpu: extra.CPU, mem: extra.Mem})
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].id < nodes[j].id })
	var out map[string]bool
	count, cpu, mem := 0, 0, 0
	for _, n := range nodes {
		count, cpu, mem = count+1, cpu+n.cpu, mem+n.mem
		if out == nil && !(l.instances > 0 && count > l.instances || l.cpu > 0 && cpu > l.cpu || l.mem > 0 && mem > l.mem) {
			continue
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[n.id] = true
	}
	return out
}

// admit says why a claim of rec on node is refused, or nil.
func admit(app, node string, l limits, claims map[string]map[string]claimRec, rec claimRec) error {
	before := usage(claims, "", nil)
	after := usage(claims, node, &rec)
	switch {
	case l.instances > 0 && after.Instances > before.Instances && after.Instances > l.instances:
		return fmt.Errorf("claim %s on %s: %d instances already, limit %d: %w", app, node, before.Instances, l.instances, fabric.ErrBudgetExceeded)
	case l.cpu > 0 && after.CPUmilli > before.CPUmilli && after.CPUmilli > l.cpu:
		return fmt.Errorf("claim %s on %s: cpu %dm would exceed budget %dm: %w", app, node, after.CPUmilli, l.cpu, fabric.ErrBudgetExceeded)
	case l.mem > 0 && after.MemoryMB > before.MemoryMB && after.MemoryMB > l.mem:
		return fmt.Errorf("claim %s on %s: memory %dMB would exceed budget %dMB: %w", app, node, after.MemoryMB, l.mem, fabric.ErrBudgetExceeded)
	case excess(l, claims, node, &rec)[node]:
		return fmt.Errorf("claim %s on %s: node is beyond the lowered limits: %w", app, node, fabric.ErrBudgetExceeded)
	}
	return nil
}

// Usage returns what the claims of app hold, as this Store last saw them.
func (s *Store) Usage(app string) fabric.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return usage(s.cache.claims[app], "", nil)
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
		if err := admit(app, nodeID, limitsOf(p, hasPlan, b), claims, rec); err != nil {
			return nil, err
		}
		oc := &ownClaim{app: app, node: nodeID, rec: rec, lease: lease, revoked: make(chan struct{})}
		s.mu.Lock()
		s.own[key] = oc
		s.mu.Unlock()
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(prefix).WithPrefix(), "<", rev+1),
			clientv3.Compare(clientv3.ModRevision(planKey), "<", rev+1),
			clientv3.Compare(clientv3.ModRevision(budgetKey), "<", rev+1),
		).Then(clientv3.OpPut(key, string(data), clientv3.WithLease(lease))).Commit()
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
		return fabric.NewLease(oc.revoked, func() { s.release(key, oc) }), nil
	}
	return nil, fmt.Errorf("claim %s on %s: still contended after %d attempts", app, nodeID, contention)
}

// release deletes a claim, retrying while etcd is out of reach; the claim
// dies with the Store's lease in any case.
func (s *Store) release(key string, oc *ownClaim) {
	s.mu.Lock()
	oc.releasing = true
	s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		ctx, cancel := s.opCtx()
		resp, err := s.cli.Delete(ctx, key)
		if err == nil {
			err = s.waitRev(ctx, resp.Header.Revision)
		}
		cancel()
		if err == nil || s.ctx.Err() != nil {
			break
		}
		if attempt == 0 {
			s.log.Warn("claim not released yet; retrying", "key", key, "error", err)
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	s.mu.Lock()
	delete(s.own, key)
	s.mu.Unlock()
}

// revokeExcessLocked revokes this Store's claims on the nodes of app that
// are in excess of its limits, and marks them revoked in etcd.
func (s *Store) revokeExcessLocked(app string) {
	p, hasPlan := s.cache.plans[app]
	over := excess(limitsOf(p, hasPlan, s.cache.budgets[app]), s.cache.claims[app], "", nil)
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
