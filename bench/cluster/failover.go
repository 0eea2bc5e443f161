package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// failoverResult is the host-loss scenario's figures, per round.
type failoverResult struct {
	gone  []time.Duration // SIGKILL -> the host's endpoints out of the control's view and the edge's table
	back  []time.Duration // SIGKILL -> the app at min again on other hosts, in the edge's table
	fails []string
	v     verdict
}

// runFailover kills every process of an agent host that runs an instance
// of the fo app (min = max = 2 over three hosts), times how long until its
// endpoints are gone and until the app is back at min elsewhere, then
// starts the host's agent again and waits until the cluster is whole.
func runFailover(ctx context.Context, s *setup) *failoverResult {
	res := &failoverResult{}
	edge := newEdgeView(s.edgeAdmin)
	for round := range s.c.rounds {
		a := markCPU()
		gone, back, err := failOnce(ctx, s, edge, round)
		res.v.add(between(a, markCPU()), s.c)
		if err != nil {
			res.fails = append(res.fails, err.Error())
			fmt.Fprintf(os.Stderr, "    failover round %d: %v\n", round+1, err)
			if !s.restoreAll(ctx) {
				break
			}
			continue
		}
		res.gone = append(res.gone, gone)
		res.back = append(res.back, back)
		fmt.Fprintf(os.Stderr, "    failover round %d: endpoints gone %s, back at min %s\n", round+1, ms(gone), ms(back))
	}
	return res
}

func failOnce(ctx context.Context, s *setup, edge *edgeView, round int) (gone, back time.Duration, err error) {
	st, ok := status(ctx, s.sock("ctl"))
	if !ok {
		return 0, 0, fmt.Errorf("control does not answer")
	}
	var on []string
	for _, ep := range endpointsOf(st, foApp) {
		on = append(on, hostOf(ep.URL))
	}
	sort.Strings(on)
	if len(on) == 0 {
		return 0, 0, fmt.Errorf("%s has no endpoints", foApp)
	}
	victim := -1
	for i, h := range s.agentHosts {
		if h.ip == on[round%len(on)] {
			victim = i
		}
	}
	if victim < 0 {
		return 0, 0, fmt.Errorf("%s runs on %v, no agent host of the bench", foApp, on)
	}
	h := s.agentHosts[victim]
	t0 := time.Now()
	h.killAll()
	err = waitUntil(ctx, 4*s.c.leaseTTL+20*time.Second, func() bool {
		in, err := edge.endpoints(ctx, foApp)
		if err != nil {
			return false
		}
		st, ok := status(ctx, s.sock("ctl"))
		if !ok {
			return false
		}
		eps := endpointsOf(st, foApp)
		onVictim := false
		for _, ep := range eps {
			onVictim = onVictim || hostOf(ep.URL) == h.ip
		}
		for u := range in {
			onVictim = onVictim || hostOf(u) == h.ip
		}
		if onVictim {
			return false
		}
		if gone == 0 {
			gone = time.Since(t0)
		}
		if len(eps) < 2 || len(in) != len(eps) {
			return false
		}
		for _, ep := range eps {
			if !in[ep.URL] {
				return false
			}
		}
		back = time.Since(t0)
		return true
	})
	if err != nil {
		return 0, 0, fmt.Errorf("after killing %s: %w", h.name, err)
	}
	if !s.restart(ctx, victim) {
		return gone, back, fmt.Errorf("agent on %s did not come back", h.name)
	}
	return gone, back, nil
}

// restart starts the agent of agent host i again and waits until the
// cluster is whole: the lat app on every agent host, fo at min.
func (s *setup) restart(ctx context.Context, i int) bool {
	h := s.agentHosts[i]
	node := fmt.Sprintf("host%d", i)
	err := catch(func() {
		s.agents[i] = h.start(s.r, "agent "+node, filepath.Join(s.dir, node+".log"), s.c.mesh, s.agentArgs[i]...)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "restart:", err)
		return false
	}
	return s.whole(ctx)
}

// restoreAll starts every agent that is not running and waits until the
// cluster is whole.
func (s *setup) restoreAll(ctx context.Context) bool {
	for i, p := range s.agents {
		if !p.alive() {
			s.agentHosts[i].killAll()
			if !s.restart(ctx, i) {
				return false
			}
		}
	}
	return s.whole(ctx)
}

func (s *setup) whole(ctx context.Context) bool {
	return waitUntil(ctx, 4*s.c.leaseTTL+30*time.Second, func() bool {
		st, ok := status(ctx, s.sock("ctl"))
		if !ok {
			return false
		}
		hosts := map[string]bool{}
		for _, ep := range endpointsOf(st, latApp) {
			hosts[hostOf(ep.URL)] = true
		}
		return len(hosts) == len(s.agentHosts) && len(endpointsOf(st, foApp)) == 2
	}) == nil
}

// hostList names the agent hosts and their addresses.
func (s *setup) hostList() string {
	var out []string
	for _, h := range s.agentHosts {
		out = append(out, h.name+" "+h.ip)
	}
	return strings.Join(out, ", ")
}
