package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
)

// spread is the median and range of a set of figures.
type spread struct{ med, lo, hi float64 }

func spreadOf(v []float64) (spread, bool) {
	if len(v) == 0 {
		return spread{}, false
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return spread{med, s[0], s[n-1]}, true
}

func secs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func ms(d time.Duration) string { return fmtSecs(d.Seconds()) }

func fmtSecs(s float64) string {
	if s >= 10 {
		return fmt.Sprintf("%.1f s", s)
	}
	if s >= 1 {
		return fmt.Sprintf("%.2f s", s)
	}
	if s > 0 && s < 0.01 {
		return fmt.Sprintf("%.1f ms", s*1000)
	}
	return fmt.Sprintf("%.0f ms", s*1000)
}

// row writes one "what: median (min-max), n rounds" line.
func row(b *strings.Builder, what string, ds []time.Duration, fails []string) {
	sp, ok := spreadOf(secs(ds))
	if !ok {
		fmt.Fprintf(b, "  %-50s failed", what)
	} else {
		fmt.Fprintf(b, "  %-50s %9s  %21s  %2d", what, fmtSecs(sp.med), fmtSecs(sp.lo)+" - "+fmtSecs(sp.hi), len(ds))
	}
	if len(fails) > 0 {
		fmt.Fprintf(b, "  (%d rounds failed: %s)", len(fails), fails[len(fails)-1])
	}
	b.WriteString("\n")
}

// report is everything one run measured.
type report struct {
	c        config
	command  string
	started  time.Time
	s        *setup
	quiet    usage
	load1    string
	plan     *planResult
	failover *failoverResult
	scale    []*scaleRound
	scaleErr []string
	all      verdict
}

func (r *report) render() string {
	var b strings.Builder
	c, s := r.c, r.s
	fmt.Fprintf(&b, "# cluster bench: %s, %d cores, %s\n", r.started.UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "# command: %s\n", r.command)
	if s.net.mode == "netns" {
		fmt.Fprintf(&b, "# hosts: network namespaces on a private bridge (internal/netnstest): etcd0-2 (one member each), ctl (`mesh run -roles control` and `mesh edge`), %s (`mesh agent` each), emb (`mesh run`, embedded fabric)\n", s.hostList())
	} else {
		fmt.Fprintf(&b, "# hosts: loopback addresses, not network namespaces (%s): etcd0-2 %s, ctl %s (`mesh run -roles control` and `mesh edge`), %s (`mesh agent` each), emb %s (`mesh run`, embedded fabric)\n",
			s.net.why, strings.Join(s.etcdURLs, " "), s.ctlHost.ip, s.hostList(), s.embHost.ip)
	}
	fmt.Fprintf(&b, "# etcd %s, 3 members, heartbeat 50 ms, election timeout 500 ms; fabric lease_ttl %s; every wait polls each %s (the resolution of the times)\n",
		etcdVersion, c.leaseTTL, pollEvery)
	fmt.Fprintf(&b, "# before the run: other processes used %.2f cores, steal %.1f%%; load average %s\n", r.quiet.otherCores, 100*r.quiet.stealFrac, r.load1)
	if r.quiet.otherCores > c.maxOther || r.quiet.stealFrac > c.maxSteal {
		fmt.Fprintf(&b, "# LOADED: numbers unreliable: the machine was busy before the run\n")
	}
	fmt.Fprintf(&b, "# machine: %s\n", r.all.line(c))

	if p := r.plan; p != nil {
		fmt.Fprintf(&b, "\n## plan-to-ready: a deploy (new version, blue/green) of an app with min = max = %d, one instance per agent: the etcd fabric (%d `mesh agent` hosts) and the embedded one (`mesh run`, %d in-process agents), in turn, %d rounds\n",
			len(s.agentHosts), len(s.agentHosts), len(s.agentHosts), c.rounds)
		fmt.Fprintf(&b, "  %-50s %9s  %21s  %s\n", "from the deploy call (plan published) to", "median", "min - max", "rounds")
		for _, f := range p.fabrics {
			row(&b, f.name+": deploy call returned", f.calls, nil)
			row(&b, f.name+": every instance ready (control's view)", f.ready, f.fails)
			row(&b, f.name+": every new endpoint in the edge's table", f.edged, nil)
		}
		if len(p.fabrics) == 2 {
			e, m := p.fabrics[0], p.fabrics[1]
			var ratios []float64
			for i := range min(len(e.edged), len(m.edged)) {
				if m.edged[i] > 0 {
					ratios = append(ratios, e.edged[i].Seconds()/m.edged[i].Seconds())
				}
			}
			if sp, ok := spreadOf(ratios); ok {
				fmt.Fprintf(&b, "  etcd / embedded, to the edge's table, round by round: %.2fx (%.2f-%.2f)\n", sp.med, sp.lo, sp.hi)
			}
		}
		fmt.Fprintf(&b, "%s\n", p.v.line(c))
	}
	if f := r.failover; f != nil {
		fmt.Fprintf(&b, "\n## failover: every process of an agent host running an instance of an app with min = max = 2 over %d hosts SIGKILLed, %d rounds (the host's agent started again between rounds)\n",
			len(s.agentHosts), c.rounds)
		fmt.Fprintf(&b, "  %-50s %9s  %21s  %s\n", "from the SIGKILL to", "median", "min - max", "rounds")
		row(&b, "its endpoints gone (control and edge)", f.gone, f.fails)
		row(&b, "the app back at min elsewhere, in the edge", f.back, nil)
		if sp, ok := spreadOf(secs(f.gone)); ok {
			word := "meets"
			if sp.med > c.leaseTTL.Seconds() {
				word = "misses"
			}
			fmt.Fprintf(&b, "  bar: endpoints gone within the lease TTL (%s): median %s, %s (etcd expires a lease up to about 0.5 s after its TTL)\n", c.leaseTTL, fmtSecs(sp.med), word)
		}
		fmt.Fprintf(&b, "%s\n", f.v.line(c))
	}
	if len(r.scale) > 0 || len(r.scaleErr) > 0 {
		r.renderScale(&b)
	}
	return b.String()
}

func (r *report) renderScale(b *strings.Builder) {
	c := r.c
	fmt.Fprintf(b, "\n## scale: %d apps (min = max = 1) and %d agents, store-level: each agent a core/fabric/etcd Store of its own (etcd client, lease, watch) in the bench process, claiming as core/agent does (at once, then %s while refused, again when revoked) and registering an endpoint when it wins, no workload behind it; one more Store publishes the plans (the control), one watches the endpoints (an edge); lease TTL %s; %d rounds, each on a fresh prefix\n",
		c.scaleApps, c.scaleAgents, retryWords(c.scaleRetry), c.scaleLease, c.scaleRounds)
	var open, pub, applied []time.Duration
	var v verdict
	for _, sr := range r.scale {
		open, pub, applied = append(open, sr.open), append(pub, sr.publish), append(applied, sr.applied)
		v.add(sr.u, c)
	}
	fmt.Fprintf(b, "  %-50s %9s  %21s  %s\n", "", "median", "min - max", "rounds")
	row(b, fmt.Sprintf("open %d Stores", c.scaleAgents+2), open, nil)
	row(b, fmt.Sprintf("publish %d plans (one Store, in turn)", c.scaleApps), pub, nil)
	row(b, "every plan applied: each app's endpoint seen", applied, r.scaleErr)
	if len(r.scale) > 0 {
		last := r.scale[len(r.scale)-1]
		fmt.Fprintf(b, "  claims in the last round: %d won, %d refused, %d failed, %d revoked (a lease lost: claimed again)\n",
			last.claims.won.Load(), last.claims.refused.Load(), last.claims.failed.Load(), last.claims.revoked.Load())
		fmt.Fprintf(b, "  etcd load, from its own /metrics (last round; puts, deletes and proposals: the leader's count, every member applies them; the rest summed over the members):\n")
		fmt.Fprintf(b, "    %-24s %s\n", "", "while applying ("+fmtSecs(last.apply.secs)+")          steady, after ("+fmtSecs(last.steady.secs)+")")
		for _, m := range []struct {
			what string
			f    func(etcdLoad) float64
		}{
			{"puts", func(l etcdLoad) float64 { return l.puts }},
			{"deletes", func(l etcdLoad) float64 { return l.deletes }},
			{"raft proposals", func(l etcdLoad) float64 { return l.proposals }},
			{"txns (mvcc)", func(l etcdLoad) float64 { return l.txns }},
			{"ranges (mvcc)", func(l etcdLoad) float64 { return l.ranges }},
			{"watch events sent", func(l etcdLoad) float64 { return l.events }},
			{"gRPC Txn calls", func(l etcdLoad) float64 { return l.byMethod["Txn"] }},
			{"gRPC Put calls", func(l etcdLoad) float64 { return l.byMethod["Put"] }},
			{"gRPC Range calls", func(l etcdLoad) float64 { return l.byMethod["Range"] }},
			{"client bytes received", func(l etcdLoad) float64 { return l.rxBytes }},
			{"client bytes sent", func(l etcdLoad) float64 { return l.txBytes }},
		} {
			a, s := m.f(last.apply), m.f(last.steady)
			fmt.Fprintf(b, "    %-24s %10.0f  %10.0f/s        %10.0f  %10.0f/s\n", m.what, a, rate(a, last.apply.secs), s, rate(s, last.steady.secs))
		}
		for _, d := range []struct {
			what    string
			n, mean func(etcdLoad) float64
		}{
			{"WAL fsyncs", func(l etcdLoad) float64 { return l.fsyncs }, func(l etcdLoad) float64 { return l.fsyncMean }},
			{"backend commits", func(l etcdLoad) float64 { return l.commits }, func(l etcdLoad) float64 { return l.commitMean }},
		} {
			fmt.Fprintf(b, "    %-24s %10.0f  %9s mean        %10.0f  %9s mean\n", d.what, d.n(last.apply), fmtSecs(d.mean(last.apply)), d.n(last.steady), fmtSecs(d.mean(last.steady)))
		}
		fmt.Fprintf(b, "  cores used from the first publish to the end (last round): %.2f by the bench process (all %d Stores' clients, caches and claims), %.2f by the 3 etcd members\n",
			last.benchCores, c.scaleAgents+2, last.etcdCores)
		g := last.apply.end
		fmt.Fprintf(b, "    when applied: %.0f watchers on %.0f watch streams (%.0f slow), %.0f keys, db %.1f MiB\n",
			g.watchers, g.streams, g.slow, g.keys, g.dbBytes/(1<<20))
	}
	fmt.Fprintf(b, "%s\n", v.line(c))
}

func rate(n, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return n / secs
}

func retryWords(d time.Duration) string {
	if d <= 0 {
		return "never again"
	}
	return "every " + d.String()
}
