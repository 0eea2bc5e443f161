package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

// fabricUnder is one mesh the plan-to-ready scenario deploys to.
type fabricUnder struct {
	name  string // "etcd" or "embedded"
	sock  string // its control socket
	edge  *edgeView
	want  int               // instances of the app when ready
	digs  map[string]string // version -> digest in its repo
	ready []time.Duration   // per round: deploy call -> every instance ready, seen by the control process
	edged []time.Duration   // per round: deploy call -> every new endpoint in the edge's table
	calls []time.Duration   // per round: the deploy call itself
	fails []string
}

// planResult is the plan-to-ready scenario's figures.
type planResult struct {
	fabrics []*fabricUnder
	v       verdict
}

// runPlan deploys the lat app rounds times to each mesh, alternating
// versions (a blue/green update: new instances start beside the old ones
// on every agent), the two meshes in turn and their order swapped each
// round, and times each deploy until every new instance is ready and its
// endpoint is in the edge's routing table.
func runPlan(ctx context.Context, s *setup) (*planResult, error) {
	res := &planResult{fabrics: []*fabricUnder{
		{name: "etcd", sock: s.sock("ctl"), edge: newEdgeView(s.edgeAdmin), want: len(s.agentHosts)},
		{name: "embedded", sock: s.sock("emb"), edge: newEdgeView(s.embAdmin), want: len(s.agentHosts)},
	}}
	for _, f := range res.fabrics {
		cl, err := mesh.NewClient("unix://"+f.sock, "")
		if err != nil {
			return nil, fmt.Errorf("%s control client: %w", f.name, err)
		}
		f.digs = map[string]string{}
		for _, v := range []string{"v1", "v2"} {
			d, err := cl.PublishSpore(ctx, s.spores[latApp+"-"+v])
			if err != nil {
				return nil, fmt.Errorf("%s: publish %s: %w", f.name, v, err)
			}
			f.digs[v] = d
		}
	}
	for round := range s.c.rounds {
		order := res.fabrics
		if round%2 == 1 {
			order = []*fabricUnder{res.fabrics[1], res.fabrics[0]}
		}
		v := []string{"v2", "v1"}[round%2]
		for _, f := range order {
			a := markCPU()
			err := deployOnce(ctx, f, f.digs[v])
			res.v.add(between(a, markCPU()), s.c)
			if err != nil {
				f.fails = append(f.fails, err.Error())
				fmt.Fprintf(os.Stderr, "    plan-to-ready %s round %d: %v\n", f.name, round+1, err)
				continue
			}
			fmt.Fprintf(os.Stderr, "    plan-to-ready %s round %d: ready %s, in the edge %s\n", f.name, round+1,
				ms(f.ready[len(f.ready)-1]), ms(f.edged[len(f.edged)-1]))
		}
	}
	return res, nil
}

// deployOnce deploys digest to f's lat app and waits until it settled:
// f.want endpoints, all serving digest, and exactly those in the edge.
func deployOnce(ctx context.Context, f *fabricUnder, digest string) error {
	cl, err := mesh.NewClient("unix://"+f.sock, "")
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := cl.Deploy(ctx, latApp, digest); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	call := time.Since(t0)
	var ready, edged time.Duration
	var urls []string
	err = waitUntil(ctx, 60*time.Second, func() bool {
		if ready == 0 {
			st, ok := status(ctx, f.sock)
			if !ok {
				return false
			}
			urls = urls[:0]
			for _, ep := range endpointsOf(st, latApp) {
				if ep.Digest == digest {
					urls = append(urls, ep.URL)
				}
			}
			if len(urls) < f.want {
				return false
			}
			ready = time.Since(t0)
		}
		in, err := f.edge.endpoints(ctx, latApp)
		if err != nil {
			return false
		}
		for _, u := range urls {
			if !in[u] {
				return false
			}
		}
		edged = time.Since(t0)
		return true
	})
	if err != nil {
		return fmt.Errorf("%d of %d instances ready: %w", len(urls), f.want, err)
	}
	f.calls = append(f.calls, call)
	f.ready = append(f.ready, ready)
	f.edged = append(f.edged, edged)
	// Settle: the replaced instances drain and leave the edge before the
	// next round.
	return waitUntil(ctx, 30*time.Second, func() bool {
		in, err := f.edge.endpoints(ctx, latApp)
		if err != nil || len(in) != f.want {
			return false
		}
		st, ok := status(ctx, f.sock)
		if !ok {
			return false
		}
		eps := endpointsOf(st, latApp)
		for _, ep := range eps {
			if ep.Digest != digest || !in[ep.URL] {
				return false
			}
		}
		return len(eps) == f.want
	})
}
