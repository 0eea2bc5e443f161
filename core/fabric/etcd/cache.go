package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// claimRec is the value of a claim key.
type claimRec struct {
	CPU     int  `json:"cpu_milli"`
	Mem     int  `json:"memory_mb"`
	Revoked bool `json:"revoked,omitempty"`
	// Kept: the Store that wrote the claim closed leaving it, with its
	// instance running, to the next run of the node (Lease.Keep).
	Kept bool `json:"kept,omitempty"`
}

// state is the cached content of the prefix.
type state struct {
	plans     map[string]fabric.Plan
	budgets   map[string]fabric.Budget
	claims    map[string]map[string]map[string]claimRec // app -> node -> key
	endpoints map[string]map[string]fabric.Endpoint     // app -> node
	failures  map[string]map[string]fabric.StartFailure // app -> node (failures.go)
}

func newState() state {
	return state{
		plans:     map[string]fabric.Plan{},
		budgets:   map[string]fabric.Budget{},
		claims:    map[string]map[string]map[string]claimRec{},
		endpoints: map[string]map[string]fabric.Endpoint{},
		failures:  map[string]map[string]fabric.StartFailure{},
	}
}

func (st *state) sortedPlans() []fabric.Plan {
	out := make([]fabric.Plan, 0, len(st.plans))
	for _, app := range sortedKeys(st.plans) {
		out = append(out, st.plans[app])
	}
	return out
}

// change is what one applied event touched.
type change struct {
	plan      *fabric.Plan // a plan to hand subscribers
	limits    string       // app whose plan or budget changed
	endpoints bool
	lostClaim string // a claim key that vanished
}

// apply records one key of the prefix (value nil: deleted) and says what
// changed. Undecodable values are logged and skipped: a bad record must not
// stop the fabric.
func (s *Store) apply(st *state, key string, value []byte) change {
	rest := strings.TrimPrefix(key, s.opts.Prefix)
	kind, name, _ := strings.Cut(rest, "/")
	var c change
	bad := func(err error) change {
		s.log.Warn("skipping undecodable fabric record", "key", key, "error", err)
		return change{}
	}
	switch kind {
	case "plans":
		if value == nil {
			if _, ok := st.plans[name]; ok {
				delete(st.plans, name)
				c.plan = &fabric.Plan{AppName: name}
			}
			c.limits = name
			return c
		}
		var p fabric.Plan
		if err := json.Unmarshal(value, &p); err != nil {
			return bad(err)
		}
		if err := p.Validate(); err != nil || p.AppName != name {
			return bad(errors.Join(err, errors.New("plan names another app")))
		}
		st.plans[name] = p
		c.plan, c.limits = &p, name
	case "budgets":
		if value == nil {
			delete(st.budgets, name)
		} else {
			var b fabric.Budget
			if err := json.Unmarshal(value, &b); err != nil {
				return bad(err)
			}
			st.budgets[name] = b
		}
		c.limits = name
	case "claims":
		app, nodeAndID, _ := strings.Cut(name, "/")
		node, _, _ := strings.Cut(nodeAndID, "/")
		if value == nil {
			if cs := st.claims[app][node]; cs != nil {
				delete(cs, key)
				if len(cs) == 0 {
					delete(st.claims[app], node)
				}
				if len(st.claims[app]) == 0 {
					delete(st.claims, app)
				}
			}
			c.lostClaim = key
			return c
		}
		var r claimRec
		if err := json.Unmarshal(value, &r); err != nil {
			return bad(err)
		}
		if st.claims[app] == nil {
			st.claims[app] = map[string]map[string]claimRec{}
		}
		if st.claims[app][node] == nil {
			st.claims[app][node] = map[string]claimRec{}
		}
		st.claims[app][node][key] = r
	case "endpoints":
		app, node, _ := strings.Cut(name, "/")
		c.endpoints = true
		if value == nil {
			delete(st.endpoints[app], node)
			if len(st.endpoints[app]) == 0 {
				delete(st.endpoints, app)
			}
			return c
		}
		var e fabric.Endpoint
		if err := json.Unmarshal(value, &e); err != nil {
			return bad(err)
		}
		if st.endpoints[app] == nil {
			st.endpoints[app] = map[string]fabric.Endpoint{}
		}
		st.endpoints[app][node] = e
	case "failures":
		app, node, _ := strings.Cut(name, "/")
		if value == nil {
			delete(st.failures[app], node)
			if len(st.failures[app]) == 0 {
				delete(st.failures, app)
			}
			return c
		}
		var r fabric.StartFailure
		if err := json.Unmarshal(value, &r); err != nil {
			return bad(err)
		}
		if st.failures[app] == nil {
			st.failures[app] = map[string]fabric.StartFailure{}
		}
		st.failures[app][node] = r
	}
	return c
}

// settleLocked hands out what a batch of changes means: plans to
// subscribers, a new endpoint table to watchers, revocations of this
// Store's claims, and wakes writers waiting for rev.
func (s *Store) settleLocked(changes []change, rev int64) {
	eps := false
	limits := map[string]bool{}
	for _, c := range changes {
		if c.plan != nil {
			for f := range s.subs {
				f.Offer(*c.plan)
			}
		}
		if c.limits != "" {
			limits[c.limits] = true
		}
		eps = eps || c.endpoints
		if c.lostClaim != "" {
			if oc := s.own[c.lostClaim]; oc != nil && !oc.releasing {
				s.log.Warn("claim lost with its lease", "key", c.lostClaim)
				oc.revoke()
			}
		}
	}
	for app := range limits {
		s.revokeExcessLocked(app)
	}
	if rev > s.rev {
		s.rev = rev
	}
	if eps {
		s.rebuildSnapshotLocked()
	}
	close(s.advanced)
	s.advanced = make(chan struct{})
}

func (s *Store) rebuildSnapshotLocked() {
	apps := make(map[string][]fabric.Endpoint, len(s.cache.endpoints))
	for app, nodes := range s.cache.endpoints {
		list := make([]fabric.Endpoint, 0, len(nodes))
		for _, e := range nodes {
			list = append(list, e)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].NodeID < list[j].NodeID })
		apps[app] = list
	}
	s.snapshot = fabric.Snapshot{Version: uint64(s.rev), Apps: apps}
	for ch := range s.watchers {
		offerSnapshot(ch, s.snapshot)
	}
}

// offerSnapshot replaces what the watcher has not read yet; only the Store
// sends on ch, under its lock, so the send cannot block.
func offerSnapshot(ch chan fabric.Snapshot, snap fabric.Snapshot) {
	select {
	case <-ch:
	default:
	}
	ch <- snap
}

// resync loads the whole prefix at one revision and replaces the cache,
// handing subscribers every plan that differs from the cached one.
func (s *Store) resync(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.opts.Prefix, clientv3.WithPrefix())
	if err != nil {
		return errors.Join(errors.New("etcd fabric: load "+s.opts.Prefix), err)
	}
	st := newState()
	var changes []change
	for _, kv := range resp.Kvs {
		changes = append(changes, s.apply(&st, string(kv.Key), kv.Value))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cache
	s.cache = st
	s.reloads++
	changes = changes[:0]
	for app, p := range st.plans {
		if have, ok := old.plans[app]; !ok || have != p {
			changes = append(changes, change{plan: &p})
		}
	}
	for app := range old.plans {
		if _, ok := st.plans[app]; !ok {
			changes = append(changes, change{plan: &fabric.Plan{AppName: app}})
		}
	}
	for app := range st.plans {
		changes = append(changes, change{limits: app})
	}
	for app := range st.budgets {
		changes = append(changes, change{limits: app})
	}
	for key := range s.own {
		if !st.hasClaim(key, s.opts.Prefix) {
			changes = append(changes, change{lostClaim: key})
		}
	}
	changes = append(changes, change{endpoints: true})
	s.rev = 0 // the loaded revision is authoritative, even if older
	s.settleLocked(changes, resp.Header.Revision)
	return nil
}

func (st *state) hasClaim(key, prefix string) bool {
	app, rest, _ := strings.Cut(strings.TrimPrefix(key, prefix+"claims/"), "/")
	node, _, _ := strings.Cut(rest, "/")
	_, ok := st.claims[app][node][key]
	return ok
}

// watchLoop follows the prefix from the revision after the last one
// applied, re-watching when the watch breaks and reloading everything when
// that revision was compacted.
func (s *Store) watchLoop() {
	defer s.wg.Done()
	for s.ctx.Err() == nil {
		s.mu.Lock()
		hold := s.hold
		s.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-s.ctx.Done():
				return
			}
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
		s.mu.Lock()
		from := s.rev + 1
		s.stopWatch = cancel
		s.mu.Unlock()
		wch := s.cli.Watch(wctx, s.opts.Prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
		compacted := false
		for resp := range wch {
			if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
				compacted = true
				break
			}
			if err := resp.Err(); err != nil {
				s.log.Warn("fabric watch broke; resuming", "from", s.rev+1, "error", err)
				break
			}
			if len(resp.Events) == 0 {
				continue
			}
			s.mu.Lock()
			changes := make([]change, 0, len(resp.Events))
			var last int64
			for _, ev := range resp.Events {
				var v []byte
				if ev.Type == mvccpb.PUT {
					v = ev.Kv.Value
				}
				changes = append(changes, s.apply(&s.cache, string(ev.Kv.Key), v))
				last = ev.Kv.ModRevision
			}
			s.settleLocked(changes, last)
			s.mu.Unlock()
		}
		cancel()
		if compacted {
			s.log.Warn("fabric watch revision compacted; reloading the fabric", "from", from)
			if err := s.resync(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Warn("fabric reload failed; retrying", "error", err)
			}
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leaseLoop keeps the Store's lease alive. When it is lost (expired while
// etcd was out of reach), the Store takes a new one, revokes the claims
// it held under the old one and writes its endpoints again.
func (s *Store) leaseLoop(id clientv3.LeaseID) {
	defer s.wg.Done()
	for {
		ka, err := s.cli.KeepAlive(s.ctx, id)
		if err == nil {
			for range ka {
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("fabric lease lost; taking a new one", "lease", int64(id), "error", err)
		for {
			nid, err := s.grant(s.ctx)
			if err == nil {
				id = nid
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("waiting for etcd to grant a lease", "error", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		s.mu.Lock()
		old := s.lease
		s.lease = id
		for _, oc := range s.own {
			oc.revoke()
		}
		s.mu.Unlock()
		rctx, cancel := s.opCtx()
		_, _ = s.cli.Revoke(rctx, old)
		cancel()
		s.kickReassert()
	}
}

func (s *Store) kickReassert() {
	select {
	case s.reassert <- struct{}{}:
	default:
	}
}

// reassertLoop writes again, under the current lease, every endpoint this
// Store registered whose write failed or whose lease was lost, retrying
// until etcd takes them.
func (s *Store) reassertLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.reassert:
		}
		for s.ctx.Err() == nil {
			if err := s.reassertOnce(); err == nil {
				break
			} else {
				s.log.Warn("endpoints not written yet; retrying", "error", err)
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

func (s *Store) reassertOnce() error {
	s.emu.Lock()
	defer s.emu.Unlock()
	s.mu.Lock()
	lease := s.lease
	want := make(map[string]fabric.Endpoint, len(s.desired))
	for k, e := range s.desired {
		want[k] = e
	}
	s.mu.Unlock()
	for key, e := range want {
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		ctx, cancel := s.opCtx()
		_, err = s.cli.Put(ctx, key, string(data), clientv3.WithLease(lease))
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
