// Package etcd is a fabric.Store whose state lives in an etcd cluster, so
// that agents, edges and the control process on different hosts share one
// fabric. It keeps the semantics of the embedded store (package fabric),
// checked by the same conformance suite (package fabrictest):
//
//   - Plans and budgets are keys <prefix>plans/<app> and
//     <prefix>budgets/<app> holding JSON. Every Store keeps a cache of the
//     whole prefix, fed by one watch; reads come from the cache, and a
//     write returns once the cache holds its revision, so a Store reads its
//     own writes.
//   - The watch resumes from the revision after the last event applied
//     when it breaks (a member dies, the connection drops). When that
//     revision was compacted away, the Store reloads the whole prefix and
//     hands subscribers every plan that differs from what they were given.
//   - Subscribers receive plans through a fabric.Feed: PublishPlan never
//     waits for them, and plans are coalesced per app.
//   - Each Store holds one etcd lease, kept alive while the process runs.
//     Its claims (<prefix>claims/<app>/<node>/<id>) and endpoints
//     (<prefix>endpoints/<app>/<node>) are written under it, so those of a
//     dead or cut-off host vanish within the lease TTL. If the lease is
//     lost, the Store takes a new one, writes its endpoints again and
//     revokes its claims (their slots are gone; agents claim again).
//   - Agents' reports of failed starts (<prefix>failures/<app>/<node>)
//     are written under the lease too, and read from the cache.
//   - An agent that stops leaving its workloads running for its next run
//     (adoption) keeps their claims (Lease.Keep): they are marked kept and
//     Close leaves the lease to expire rather than revoking it, so the
//     claims and endpoints last one TTL longer. The next run's claim of
//     the same app on the same node takes the kept claim over in the
//     claim's own transaction, so a restart within the TTL never loses
//     the slot to another host.
//   - Acquire reads the plan, the budget and the app's claims at one
//     revision, decides as the embedded store does, and writes the claim in
//     a transaction that fails when any of them changed since: claims are
//     atomic across every agent of the cluster.
//   - When limits are lowered, every Store computes the nodes in excess the
//     same way from the same revision and revokes its own claims among
//     them, marking them revoked in etcd so that every Store discounts them.
package etcd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// Defaults of Options.
const (
	DefaultPrefix    = "/mesh/"
	DefaultLeaseTTL  = 5 * time.Second
	DefaultOpTimeout = 10 * time.Second
)

// Options configure a Store.
type Options struct {
	// Endpoints are the etcd client URLs, e.g. http://10.0.0.1:2379.
	Endpoints []string
	// TLS, when set, is used to reach etcd.
	TLS *tls.Config
	// Prefix is the key space of this fabric; it ends in "/". Several
	// fabrics may share a cluster under different prefixes.
	Prefix string
	// LeaseTTL is how long the claims and endpoints of a Store outlive
	// the process (or its host's link). etcd may round it up.
	LeaseTTL time.Duration
	// OpTimeout bounds each etcd request.
	OpTimeout time.Duration
	Logger    hclog.Logger
}

// Store is a fabric.Store on etcd. All methods are safe for concurrent use.
type Store struct {
	opts   Options
	log    hclog.Logger
	cli    *clientv3.Client
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	emu      sync.Mutex // serialises endpoint writes
	mu       sync.Mutex
	closed   bool
	lease    clientv3.LeaseID
	rev      int64         // last revision the cache applied
	advanced chan struct{} // closed and replaced when rev grows
	cache    state
	snapshot fabric.Snapshot
	subs     map[*fabric.Feed]struct{}
	watchers map[chan fabric.Snapshot]struct{}
	own      map[string]*ownClaim       // claim key -> claim this Store holds
	desired  map[string]fabric.Endpoint // endpoint key -> what this Store registered
	seq      uint64
	kept     int // claims kept for the next run (Lease.Keep); Close leaves the lease then
	reassert chan struct{}
	// stopWatch ends the current watch; hold, when set, keeps the watch
	// from resuming until it is closed. Both serve tests of resumption.
	stopWatch context.CancelFunc
	hold      chan struct{}
	reloads   int // full loads of the prefix; under mu
}

var _ fabric.Store = (*Store)(nil)

// Open connects to etcd, waiting for it (and logging that it waits) until
// ctx ends, takes the Store's lease and loads the fabric.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcd fabric: no etcd endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            opts.Endpoints,
		TLS:                  opts.TLS,
		DialTimeout:          opts.OpTimeout,
		DialKeepAliveTime:    opts.LeaseTTL / 2,
		DialKeepAliveTimeout: opts.LeaseTTL / 2,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd fabric: client for %v: %w", opts.Endpoints, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		opts: opts, log: opts.Logger, cli: cli, ctx: sctx, cancel: cancel,
		advanced: make(chan struct{}),
		cache:    newState(),
		snapshot: fabric.Snapshot{Apps: map[string][]fabric.Endpoint{}},
		subs:     map[*fabric.Feed]struct{}{},
		watchers: map[chan fabric.Snapshot]struct{}{},
		own:      map[string]*ownClaim{},
		desired:  map[string]fabric.Endpoint{},
		reassert: make(chan struct{}, 1),
	}
	if err := s.waitForEtcd(ctx); err != nil {
		s.shut()
		return nil, err
	}
	id, err := s.grant(ctx)
	if err != nil {
		s.shut()
		return nil, err
	}
	s.lease = id
	if err := s.resync(ctx); err != nil {
		s.shut()
		return nil, err
	}
	s.wg.Add(3)
	go s.watchLoop()
	go s.leaseLoop(id)
	go s.reassertLoop()
	return s, nil
}

// waitAttempt bounds one attempt of waitForEtcd, so that an operator
// waiting for etcd hears about it every few seconds.
const waitAttempt = 2 * time.Second

// waitForEtcd blocks until etcd answers a read, logging "waiting for etcd
// at ...: why" after each failed attempt.
func (s *Store) waitForEtcd(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, min(s.opts.OpTimeout, waitAttempt))
		_, err := s.cli.Get(rctx, s.opts.Prefix, clientv3.WithCountOnly())
		cancel()
		if err == nil {
			if attempt > 0 {
				s.log.Info("etcd reachable", "endpoints", s.opts.Endpoints)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("etcd fabric: etcd at %v not reachable: %w", s.opts.Endpoints, err)
		}
		s.log.Warn(fmt.Sprintf("waiting for etcd at %s: %v", strings.Join(s.opts.Endpoints, ", "), err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd fabric: etcd at %v not reachable: %w", s.opts.Endpoints, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) grant(ctx context.Context) (clientv3.LeaseID, error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	ttl := int64((s.opts.LeaseTTL + time.Second - 1) / time.Second)
	resp, err := s.cli.Grant(rctx, ttl)
	if err != nil {
		return 0, fmt.Errorf("etcd fabric: grant lease of %ds: %w", ttl, err)
	}
	return resp.ID, nil
}

// shut releases the client of a Store that failed to open.
func (s *Store) shut() {
	s.cancel()
	_ = s.cli.Close()
}

// Close revokes the Store's lease (its claims and endpoints go at once),
// unless claims were kept for the next run (then the lease expires after
// its TTL), ends every subscription and watch and closes the client.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	lease, kept := s.lease, s.kept
	for f := range s.subs {
		f.Stop()
	}
	s.subs = nil
	for ch := range s.watchers {
		close(ch)
	}
	s.watchers = nil
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	var rerr error
	if kept > 0 {
		s.log.Info("lease left to expire: claims kept for the next run", "claims", kept, "ttl", s.opts.LeaseTTL)
	} else {
		rctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
		_, rerr = s.cli.Revoke(rctx, lease)
		cancel()
	}
	if err := s.cli.Close(); err != nil {
		return fmt.Errorf("etcd fabric: close client: %w", err)
	}
	if rerr != nil {
		s.log.Warn("lease not revoked; its keys expire with it", "error", rerr)
	}
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Store) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.opts.OpTimeout)
}

func (s *Store) planKey(app string) string   { return s.opts.Prefix + "plans/" + app }
func (s *Store) budgetKey(app string) string { return s.opts.Prefix + "budgets/" + app }
func (s *Store) claimsPrefix(app string) string {
	return s.opts.Prefix + "claims/" + app + "/"
}
func (s *Store) endpointKey(app, node string) string {
	return s.opts.Prefix + "endpoints/" + app + "/" + node
}

// waitRev returns once the cache applied revision rev.
func (s *Store) waitRev(ctx context.Context, rev int64) error {
	for {
		s.mu.Lock()
		if s.rev >= rev {
			s.mu.Unlock()
			return nil
		}
		ch := s.advanced
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for revision %d: %w", rev, ctx.Err())
		}
	}
}

// put writes key and waits until the cache holds the write.
func (s *Store) put(what, key string, v any, opts ...clientv3.OpOption) error {
	if s.isClosed() {
		return fabric.ErrClosed
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", what, err)
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	// A put is idempotent, so one that etcd dropped during a leader
	// election is simply sent again: each attempt requires a leader (a
	// member without one answers at once instead of holding the request)
	// and is bounded well below the election-time request timeout.
	for {
		actx, acancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), putAttempt)
		resp, err := s.cli.Put(actx, key, string(data), opts...)
		acancel()
		if err == nil {
			return s.waitRev(ctx, resp.Header.Revision)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		s.log.Debug("put retried", "key", key, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// putAttempt bounds one attempt of an idempotent put.
const putAttempt = time.Second

// PublishPlan stores p; every Store's subscribers receive it.
func (s *Store) PublishPlan(p fabric.Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return s.put("publish plan "+p.AppName, s.planKey(p.AppName), p)
}

// SwapPlan publishes p only while the app's plan is still old.
func (s *Store) SwapPlan(old *fabric.Plan, p fabric.Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if s.isClosed() {
		return fabric.ErrClosed
	}
	key := s.planKey(p.AppName)
	ctx, cancel := s.opCtx()
	defer cancel()
	cur, err := s.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("publish plan %s: read current plan: %w", p.AppName, err)
	}
	cond := clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	if len(cur.Kvs) == 1 {
		var have fabric.Plan
		if err := json.Unmarshal(cur.Kvs[0].Value, &have); err != nil || old == nil || have != *old {
			return fmt.Errorf("publish plan %s: %w", p.AppName, fabric.ErrConflict)
		}
		cond = clientv3.Compare(clientv3.ModRevision(key), "=", cur.Kvs[0].ModRevision)
	} else if old != nil {
		return fmt.Errorf("publish plan %s: %w", p.AppName, fabric.ErrConflict)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("publish plan %s: encode: %w", p.AppName, err)
	}
	resp, err := s.cli.Txn(ctx).If(cond).Then(clientv3.OpPut(key, string(data))).Commit()
	if err != nil {
		return fmt.Errorf("publish plan %s: %w", p.AppName, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("publish plan %s: %w", p.AppName, fabric.ErrConflict)
	}
	return s.waitRev(ctx, resp.Header.Revision)
}

// DeletePlan withdraws an app.
func (s *Store) DeletePlan(app string) error {
	if s.isClosed() {
		return fabric.ErrClosed
	}
	key := s.planKey(app)
	ctx, cancel := s.opCtx()
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return fmt.Errorf("delete plan %s: %w", app, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("delete plan %s: %w", app, fabric.ErrNotFound)
	}
	return s.waitRev(ctx, resp.Header.Revision)
}

// Plans returns the current plans sorted by app.
func (s *Store) Plans() []fabric.Plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache.sortedPlans()
}

// Plan returns the current plan of app.
func (s *Store) Plan(app string) (fabric.Plan, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.cache.plans[app]
	return p, ok
}

// Subscribe yields every current plan, then each change, coalesced per app.
func (s *Store) Subscribe(ctx context.Context) <-chan fabric.Plan {
	f := fabric.NewFeed()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f.Stop()
		return f.Out()
	}
	for _, p := range s.cache.sortedPlans() {
		f.Offer(p)
	}
	s.subs[f] = struct{}{}
	s.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			delete(s.subs, f)
			s.mu.Unlock()
			f.Stop()
		case <-f.Done():
		}
	}()
	return f.Out()
}

// SetBudget stores b; claims of nodes in excess are revoked.
func (s *Store) SetBudget(b fabric.Budget) error {
	if err := b.Validate(); err != nil {
		return err
	}
	return s.put("set budget "+b.AppName, s.budgetKey(b.AppName), b)
}

// GetBudget returns the budget of app.
func (s *Store) GetBudget(app string) (fabric.Budget, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.cache.budgets[app]
	return b, ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
