package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// References every ratio is taken against, in this order.
var references = []struct{ key, name string }{
	{"b", "baseline"}, {"e2", "nginx"}, {"e3", "haproxy"},
}

// row is one target's figures in one scenario.
type row struct {
	t                 target
	rps               []float64 // per round, 0 where the round failed
	cpu               []float64 // CPU per request in seconds, per round
	p50, p99, cpuReq  time.Duration
	cores, load       float64
	errors, completed int
	failed            int
	failure           string
}

func rowsOf(rep scenarioReport) []row {
	var rows []row
	for i, t := range rep.targets {
		rw := row{t: t}
		var p50, p99, cpu, cores, load []float64
		for _, s := range rep.samples[i] {
			if s.err != nil {
				rw.failed++
				rw.failure = s.err.Error()
				rw.rps = append(rw.rps, 0)
				rw.cpu = append(rw.cpu, 0)
				continue
			}
			rw.rps = append(rw.rps, s.res.rps)
			rw.cpu = append(rw.cpu, s.cpuPerReq.Seconds())
			p50 = append(p50, float64(s.res.p50))
			p99 = append(p99, float64(s.res.p99))
			cpu = append(cpu, float64(s.cpuPerReq))
			cores = append(cores, s.cpuCores)
			load = append(load, s.loadCores)
			rw.errors += s.res.errors
			rw.completed += s.res.requests
		}
		rw.p50 = time.Duration(spreadOf(p50).med)
		rw.p99 = time.Duration(spreadOf(p99).med)
		rw.cpuReq = time.Duration(spreadOf(cpu).med)
		rw.cores = spreadOf(cores).med
		rw.load = spreadOf(load).med
		rows = append(rows, rw)
	}
	return rows
}

func nonZero(v []float64) []float64 {
	var out []float64
	for _, x := range v {
		if x > 0 {
			out = append(out, x)
		}
	}
	return out
}

// loadVerdict is what the machine did during a scenario.
type loadVerdict struct {
	loaded, total int
	worst         usage // the measurement where others used the most
	maxSteal      float64
}

func verdictOf(reps []scenarioReport) loadVerdict {
	var v loadVerdict
	for _, rep := range reps {
		for _, ss := range rep.samples {
			for _, s := range ss {
				v.total++
				if s.loaded {
					v.loaded++
				}
				for _, u := range []usage{s.before, s.during} {
					if u.otherCores > v.worst.otherCores {
						v.worst = u
					}
					v.maxSteal = max(v.maxSteal, u.stealFrac)
				}
			}
		}
	}
	return v
}

func (v loadVerdict) line(c config) string {
	if v.loaded == 0 {
		return fmt.Sprintf("quiet: other processes stayed at or under %.2f cores and steal at or under %.0f%% in all %d measurements (worst %.2f cores, steal %.1f%%)",
			c.maxOther, 100*c.maxSteal, v.total, v.worst.otherCores, 100*v.maxSteal)
	}
	s := fmt.Sprintf("LOADED: numbers unreliable: in %d of %d measurements other processes used more than %.2f cores or steal passed %.0f%%; worst %.2f cores",
		v.loaded, v.total, c.maxOther, 100*c.maxSteal, v.worst.otherCores)
	if v.worst.top != "" {
		s += " (" + v.worst.top + ")"
	}
	return s + fmt.Sprintf(", steal up to %.1f%%", 100*v.maxSteal)
}

func renderAll(c config, st *setup, quiet usage, reps []scenarioReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# edge load scenario: %s, %d cores, wrk -t1 -c%d --latency, %d rounds of %s per target after %s warmup, target order rotated each round\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), c.concurrency, c.rounds, c.duration, c.warmup)
	fmt.Fprintf(&b, "# pinning: %s; every proxy runs %d worker processes or threads (GOMAXPROCS=%d for the Go ones)\n", st.pin.note, c.threads, c.threads)
	fmt.Fprintf(&b, "# 3 hello workloads on loopback; proxies get /billing/<path>, direct gets /<path>\n")
	fmt.Fprintf(&b, "# cpu/req: utime+stime (with reaped children) of the target's process tree from /proc/<pid>/stat over the measured window, per completed request; cpu: the same in cores\n")
	fmt.Fprintf(&b, "# load: cores used by the load side over the same window: wrk (reaped by the bench), the bench process and the 3 workloads\n")
	var counted []string
	for _, t := range st.targets {
		if n, ok := st.counted[t.key]; ok {
			counted = append(counted, t.key+": "+n)
		}
	}
	fmt.Fprintf(&b, "# processes counted: %s\n", strings.Join(counted, "; "))
	fmt.Fprintf(&b, "# before the run: other processes used %.2f cores, steal %.1f%%, load average %.2f\n", quiet.otherCores, 100*quiet.stealFrac, quiet.load1)
	if c.isLoaded(quiet) {
		fmt.Fprintf(&b, "# LOADED: numbers unreliable: the machine was busy before the run (%s)\n", quiet.top)
	}
	fmt.Fprintf(&b, "# machine: %s\n", verdictOf(reps).line(c))
	for _, rep := range reps {
		b.WriteString("\n")
		renderScenario(&b, c, st, rep)
	}
	return b.String()
}

const labelWidth = 46

// saturated is the share of its one pinned core above which a proxy is
// taken to be what limits its row's throughput.
const saturated = 0.9

func renderScenario(b *strings.Builder, c config, st *setup, rep scenarioReport) {
	fmt.Fprintf(b, "## %s: %s, %d connections\n", rep.sc.name, rep.sc.desc, c.concurrency)
	fmt.Fprintf(b, "%-3s %-*s %8s %13s %8s %8s %8s %5s  %5s %7s\n", "", labelWidth, "target", "req/s", "min-max", "p50", "p99", "cpu/req", "cpu", "load", "errors")
	rows := rowsOf(rep)
	unsaturated := false
	for _, rw := range rows {
		ok := nonZero(rw.rps)
		if len(ok) == 0 {
			fmt.Fprintf(b, "%-3s %-*s failed: %s\n", rw.t.key, labelWidth, clip(rw.t.label), rw.failure)
			continue
		}
		sp := spreadOf(ok)
		mark := " "
		if rw.t.key != "a" && st.pin.proxy != "" && rw.cores < saturated {
			mark = "*"
			unsaturated = true
		}
		fmt.Fprintf(b, "%-3s %-*s %8.0f %13s %8s %8s %8s %5.2f%s %5.2f %7d", rw.t.key, labelWidth, clip(rw.t.label), sp.med,
			fmt.Sprintf("%.0f-%.0f", sp.lo, sp.hi), fmtDur(rw.p50), fmtDur(rw.p99), fmtDur(rw.cpuReq), rw.cores, mark, rw.load, rw.errors)
		if rw.failed > 0 {
			fmt.Fprintf(b, "  (%d rounds failed: %s)", rw.failed, rw.failure)
		}
		b.WriteString("\n")
	}
	for _, t := range st.skipped {
		fmt.Fprintf(b, "%-3s %s\n", t.key, t.label)
	}
	if unsaturated {
		fmt.Fprintf(b, "* the proxy used less than %.0f%% of its core, so something else limited the row and its req/s ratios understate the proxy (compare cpu/req): the load side (load near %s) or other processes on the machine\n", 100*saturated, loadFull(st.pin))
	}
	fmt.Fprintf(b, "%s\n", verdictOf([]scenarioReport{rep}).line(c))

	byKey := map[string]row{}
	for _, rw := range rows {
		byKey[rw.t.key] = rw
	}
	fmt.Fprintf(b, "ratios, median of the per-round ratios (min-max):\n")
	fmt.Fprintf(b, "%-3s %-*s", "", labelWidth, "target")
	for _, ref := range references {
		fmt.Fprintf(b, " %-20s", "req/s vs "+ref.name)
	}
	fmt.Fprintf(b, " %s\n", "cpu/req vs nginx")
	cell := func(x, y []float64) string {
		sp, ok := ratioSpread(x, y)
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.2fx (%.2f-%.2f)", sp.med, sp.lo, sp.hi)
	}
	for _, rw := range rows {
		fmt.Fprintf(b, "%-3s %-*s", rw.t.key, labelWidth, clip(rw.t.label))
		for _, ref := range references {
			v := "-"
			if r, ok := byKey[ref.key]; ok && ref.key != rw.t.key {
				v = cell(rw.rps, r.rps)
			}
			fmt.Fprintf(b, " %-20s", v)
		}
		v := "-"
		if r, ok := byKey["e2"]; ok && rw.t.key != "e2" {
			v = cell(rw.cpu, r.cpu)
		}
		fmt.Fprintf(b, " %s\n", v)
	}
	renderBars(b, byKey)
}

// renderBars checks the edge (c) against the throughput and CPU bars.
func renderBars(b *strings.Builder, byKey map[string]row) {
	edge, ok := byKey["c"]
	if !ok {
		return
	}
	verdict := func(ok bool) string {
		if ok {
			return "meets"
		}
		return "misses"
	}
	var parts []string
	for _, ref := range []struct{ key, name string }{{"e2", "nginx"}, {"e3", "haproxy"}} {
		if r, ok := byKey[ref.key]; ok {
			if sp, ok := ratioSpread(edge.rps, r.rps); ok {
				parts = append(parts, fmt.Sprintf("req/s >= 1.0x %s: %.2fx, %s", ref.name, sp.med, verdict(sp.med >= 1)))
			}
		}
	}
	if r, ok := byKey["e2"]; ok {
		if sp, ok := ratioSpread(edge.cpu, r.cpu); ok {
			parts = append(parts, fmt.Sprintf("cpu/req <= nginx: %.2fx (%s vs %s), %s", sp.med, fmtDur(edge.cpuReq), fmtDur(r.cpuReq), verdict(sp.med <= 1)))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(b, "bars (c): %s\n", strings.Join(parts, "; "))
	}
}

// loadFull is the load side's capacity in cores, as the footnote puts it.
func loadFull(p pinning) string {
	if p.gen != "" && p.gen == p.workload {
		return "1.00, its one core"
	}
	return "the cores it may use"
}

func clip(s string) string {
	if len(s) <= labelWidth {
		return s
	}
	return s[:labelWidth-1] + "~"
}

func fmtDur(d time.Duration) string {
	if d > 0 && d < 10*time.Microsecond {
		return fmt.Sprintf("%.1fus", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.0fus", float64(d)/float64(time.Microsecond))
}
