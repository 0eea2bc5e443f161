package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fabric/etcd"
)

// scaleRound is one round of the scale scenario.
type scaleRound struct {
	open    time.Duration // every Store open (client, lease, initial load)
	publish time.Duration // the control's Store publishing every plan
	applied time.Duration // first publish -> every app's endpoint seen by the edge's Store
	apply   etcdLoad      // etcd from the first publish to applied
	steady  etcdLoad      // etcd over the steady window after
	claims  claimCounts
	u       usage
	// Cores used from the first publish to the end of the steady window:
	// by this process (every Store of the scenario) and by etcd.
	benchCores, etcdCores float64
}

type claimCounts struct{ won, refused, failed, revoked atomic.Int64 }

// runScale is the scale scenario, store-level: c.scaleAgents agents, each
// a core/fabric/etcd Store of its own (its own etcd client, lease and
// watch, as an agent host's process has) in this process, acting as
// core/agent does on the fabric: on each plan it claims an instance
// (Acquire) and, when it wins, registers an endpoint at once (there is no
// workload behind it); when refused it claims again every c.scaleRetry
// (core/agent: every second); when its claim is revoked (its lease was
// lost) it withdraws the endpoint and claims again. One
// more Store publishes the plans, as the control process does, and one
// watches the endpoint table, as an edge does.
func runScale(ctx context.Context, s *setup, round int) (*scaleRound, error) {
	c := s.c
	prefix := fmt.Sprintf("/bench-scale-%d/", round)
	open := func() (*etcd.Store, error) {
		return etcd.Open(ctx, etcd.Options{Endpoints: s.etcdURLs, Prefix: prefix, LeaseTTL: c.scaleLease,
			OpTimeout: 30 * time.Second, Logger: hclog.NewNullLogger()})
	}
	res := &scaleRound{}
	t0 := time.Now()
	stores := make([]*etcd.Store, c.scaleAgents+2)
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func() { defer wg.Done(); stores[i], errs[i] = open() }()
	}
	wg.Wait()
	defer func() {
		var wg sync.WaitGroup
		for _, st := range stores {
			if st != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = st.Close() }()
			}
		}
		wg.Wait()
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("open stores: %w", err)
	}
	res.open = time.Since(t0)
	ctl, edge, agents := stores[0], stores[1], stores[2:]

	actx, stop := context.WithCancel(ctx)
	defer stop()
	var awg sync.WaitGroup
	for i, st := range agents {
		awg.Add(1)
		go func() {
			defer awg.Done()
			simAgent(actx, st, fmt.Sprintf("sim%02d", i+1), i, c.scaleRetry, &res.claims)
		}()
	}
	defer awg.Wait()
	defer stop()

	digest := "sha256:" + strings.Repeat("ab", 32)
	apps := make([]string, c.scaleApps)
	for i := range apps {
		apps[i] = fmt.Sprintf("app%04d", i+1)
	}
	watch := edge.WatchEndpoints(actx)
	before, err := markEtcd(ctx, s.etcdURLs)
	if err != nil {
		return nil, err
	}
	cpu0 := markCPU()
	self0, etcd0 := ownCPU(os.Getpid()), cpuOf(s.etcdPIDs)
	t0 = time.Now()
	for _, app := range apps {
		if err := ctl.PublishPlan(fabric.Plan{AppName: app, Digest: digest, Min: 1, Max: 1}); err != nil {
			return nil, fmt.Errorf("publish %s: %w", app, err)
		}
	}
	res.publish = time.Since(t0)
	timeout := time.After(c.scaleTimeout)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	seen := 0
	for done := false; !done; {
		select {
		case snap, ok := <-watch:
			if !ok {
				return nil, errors.New("endpoint watch ended")
			}
			seen = len(snap.Apps)
			done = seen >= len(apps)
		case <-tick.C:
			fmt.Fprintf(os.Stderr, "    %s: %d of %d apps with an endpoint; claims %d won, %d refused, %d failed, %d revoked\n",
				ms(time.Since(t0)), seen, len(apps), res.claims.won.Load(), res.claims.refused.Load(), res.claims.failed.Load(), res.claims.revoked.Load())
		case <-timeout:
			return nil, fmt.Errorf("not every app had an endpoint within %s (%d claims won)", c.scaleTimeout, res.claims.won.Load())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	res.applied = time.Since(t0)
	mid, err := markEtcd(ctx, s.etcdURLs)
	if err != nil {
		return nil, err
	}
	res.apply = loadBetween(before, mid)
	select {
	case <-time.After(c.scaleSteady):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	end, err := markEtcd(ctx, s.etcdURLs)
	if err != nil {
		return nil, err
	}
	res.steady = loadBetween(mid, end)
	res.u = between(cpu0, markCPU())
	if el := time.Since(t0).Seconds(); el > 0 {
		res.benchCores = float64(ownCPU(os.Getpid())-self0) / userHZ / el
		res.etcdCores = float64(cpuOf(s.etcdPIDs)-etcd0) / userHZ / el
	}
	return res, nil
}

// simAgent claims every planned app it does not hold, as an agent does:
// at once when the plan arrives, then every retry while refused (never
// again when retry is 0) but only once its store shows the app below its
// max, and again when a claim it held is revoked.
func simAgent(ctx context.Context, st *etcd.Store, node string, idx int, retry time.Duration, n *claimCounts) {
	never := time.Duration(1<<62 - 1)
	if retry <= 0 {
		retry = never
	}
	type want struct {
		plan    fabric.Plan
		due     time.Time
		refused bool // the last claim was refused
	}
	var mu sync.Mutex
	pending := map[string]*want{}
	kick := make(chan struct{}, 1)
	go func() {
		for p := range st.Subscribe(ctx) {
			mu.Lock()
			if p.Deleted() {
				delete(pending, p.AppName)
			} else if _, ok := pending[p.AppName]; !ok {
				pending[p.AppName] = &want{plan: p}
			}
			mu.Unlock()
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}()
	held := map[string]*fabric.Lease{}
	revoked := make(chan string, 64)
	port := 10000
	for {
		now := time.Now()
		var due []*want
		next := now.Add(min(retry, time.Minute))
		mu.Lock()
		for _, w := range pending {
			if !w.due.After(now) {
				due = append(due, w)
			} else if w.due.Before(next) {
				next = w.due
			}
		}
		mu.Unlock()
		for _, w := range due {
			if ctx.Err() != nil {
				return
			}
			app := w.plan.AppName
			if w.refused && w.plan.Max > 0 && st.Usage(app).Instances >= w.plan.Max {
				w.due = time.Now().Add(retry) // still full in the store's view: no claim
				continue
			}
			l, err := st.Acquire(app, node, 0, 0)
			switch {
			case err == nil:
				n.won.Add(1)
				held[app] = l
				go func() {
					select {
					case <-l.Revoked():
						select {
						case revoked <- app:
						case <-ctx.Done():
						}
					case <-ctx.Done():
					}
				}()
				port++
				st.RegisterEndpoint(fabric.Endpoint{AppName: app, NodeID: node, Digest: w.plan.Digest,
					URL: fmt.Sprintf("http://10.%d.%d.%d:%d", 100+idx/65536, idx/256%256, idx%256, port)})
				mu.Lock()
				delete(pending, app)
				mu.Unlock()
			case errors.Is(err, fabric.ErrBudgetExceeded):
				n.refused.Add(1)
				w.refused = true
				w.due = time.Now().Add(retry)
			default:
				n.failed.Add(1)
				w.due = time.Now().Add(time.Second)
			}
		}
		select {
		case <-ctx.Done():
			return
		case app := <-revoked:
			n.revoked.Add(1)
			delete(held, app)
			st.DeregisterEndpoint(app, node)
			if p, ok := st.Plan(app); ok {
				mu.Lock()
				pending[app] = &want{plan: p}
				mu.Unlock()
			}
		case <-kick:
		case <-time.After(time.Until(next)):
		}
	}
}
