package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// scenario is one kind of load every target gets.
type scenario struct {
	name    string
	path    string   // appended to the target's base URL
	headers []string // sent by wrk with every request
	desc    string
}

var scenarios = []scenario{
	{name: "tiny", path: "/hello", desc: "GET /hello (a one-line answer), keep-alive connections"},
	{name: "16k", path: "/blob", desc: "GET /blob (a 16 KiB answer), keep-alive connections"},
	{name: "close", path: "/hello", headers: []string{"Connection: close"},
		desc: "GET /hello with Connection: close, a new client connection per request (upstream stays keep-alive)"},
}

func scenarioByName(n string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == n {
			return s, true
		}
	}
	return scenario{}, false
}

func scenarioNames() string {
	var n []string
	for _, s := range scenarios {
		n = append(n, s.name)
	}
	return strings.Join(n, ",")
}

// sample is one target measured once.
type sample struct {
	res       wrkResult
	cpuPerReq time.Duration // CPU of the target's processes per request
	cpuCores  float64       // the same CPU, in cores over the window
	loadCores float64       // cores the load side used: wrk, the bench itself, the workloads
	before    usage         // other processes during the warmup
	during    usage         // other processes during the measurement
	loaded    bool
	err       error
}

// scenarioReport is every sample of one scenario: samples[i][r] is target
// i in round r.
type scenarioReport struct {
	sc      scenario
	targets []target
	samples [][]sample
	orders  []string // per round, the order the targets ran in
}

// rotation is the order of n targets in round r: the list rotated by r, so
// that each target runs early and late in some round and slow drift of the
// machine does not favour one.
func rotation(n, r int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = (i + r) % n
	}
	return o
}

func runScenario(ctx context.Context, c config, st *setup, sc scenario) (scenarioReport, error) {
	rep := scenarioReport{sc: sc, targets: st.targets, samples: make([][]sample, len(st.targets))}
	self := os.Getpid()
	for r := 0; r < c.rounds; r++ {
		var keys []string
		for _, i := range rotation(len(st.targets), r) {
			t := st.targets[i]
			keys = append(keys, t.key)
			s, err := measure(ctx, c, st, t, sc, self)
			if err != nil {
				return rep, err
			}
			status := ""
			if s.loaded {
				status = "  LOADED: other processes " + describeUsage(s.before, s.during)
			}
			if s.err != nil {
				fmt.Fprintf(os.Stderr, "==> %s round %d/%d %-3s failed: %v%s\n", sc.name, r+1, c.rounds, t.key, s.err, status)
			} else {
				fmt.Fprintf(os.Stderr, "==> %s round %d/%d %-3s %8.0f req/s p50 %s p99 %s cpu/req %s errors %d%s\n",
					sc.name, r+1, c.rounds, t.key, s.res.rps, fmtDur(s.res.p50), fmtDur(s.res.p99), fmtDur(s.cpuPerReq), s.res.errors, status)
			}
			rep.samples[i] = append(rep.samples[i], s)
		}
		rep.orders = append(rep.orders, strings.Join(keys, " "))
	}
	return rep, nil
}

// measure warms target up, then loads it for c.duration, reading /proc
// around both windows: the target's own CPU, and everything else's.
func measure(ctx context.Context, c config, st *setup, t target, sc scenario, self int) (sample, error) {
	w := wrkRun{bin: c.wrk, pin: st.pin.gen, connections: c.concurrency, headers: sc.headers, url: t.base + sc.path}
	s0, err := takeSnapshot()
	if err != nil {
		return sample{}, err
	}
	if c.warmup > 0 {
		ww := w
		ww.duration = c.warmup
		if _, err := ww.run(ctx); err != nil {
			return sample{err: fmt.Errorf("warmup: %w", err)}, nil
		}
	} else {
		time.Sleep(250 * time.Millisecond) // a short idle look at the machine
	}
	s1, err := takeSnapshot()
	if err != nil {
		return sample{}, err
	}
	w.duration = c.duration
	res, werr := w.run(ctx)
	s2, err := takeSnapshot()
	if err != nil {
		return sample{}, err
	}
	s := sample{res: res, err: werr, before: usageBetween(s0, s1, self), during: usageBetween(s1, s2, self)}
	s.loaded = c.isLoaded(s.before) || c.isLoaded(s.during)
	t1, t2 := treeOf(s1.procs, t.pid), treeOf(s2.procs, t.pid)
	if t2.cpu >= t1.cpu {
		ticks := t2.cpu - t1.cpu
		cpu := time.Duration(ticks) * time.Second / userHZ
		if res.requests > 0 {
			s.cpuPerReq = cpu / time.Duration(res.requests)
		}
		s.cpuCores = cpu.Seconds() / s2.at.Sub(s1.at).Seconds()
	}
	s.loadCores = loadSide(s1, s2, self, st.workloads)
	if _, ok := st.counted[t.key]; !ok {
		st.counted[t.key] = countNames(t2.names)
	}
	return s, nil
}

// loadSide is the cores used between a and b by the bench process itself
// (its cutime holds the wrk runs it reaped) and the workloads.
func loadSide(a, b snapshot, self int, workloads []int) float64 {
	cpu := func(s snapshot) uint64 {
		var n uint64
		for _, p := range s.procs {
			if p.pid == self || slices.Contains(workloads, p.pid) {
				n += p.cpu
			}
		}
		return n
	}
	ca, cb := cpu(a), cpu(b)
	secs := b.at.Sub(a.at).Seconds()
	if cb < ca || secs <= 0 {
		return 0
	}
	return float64(cb-ca) / userHZ / secs
}

func (c config) isLoaded(u usage) bool {
	return u.otherCores > c.maxOther || u.stealFrac > c.maxSteal
}

func describeUsage(before, during usage) string {
	u := during
	if before.otherCores > u.otherCores {
		u = before
	}
	s := fmt.Sprintf("used %.2f cores", u.otherCores)
	if u.top != "" {
		s += " (" + u.top + ")"
	}
	return s + fmt.Sprintf(", steal %.1f%%, load %.2f", 100*max(before.stealFrac, during.stealFrac), u.load1)
}

// countNames summarises process names: "nginx x3, edgebench".
func countNames(names []string) string {
	n := map[string]int{}
	var order []string
	for _, name := range names {
		if n[name] == 0 {
			order = append(order, name)
		}
		n[name]++
	}
	var parts []string
	for _, name := range order {
		if n[name] > 1 {
			parts = append(parts, fmt.Sprintf("%s x%d", name, n[name]))
		} else {
			parts = append(parts, name)
		}
	}
	return strings.Join(parts, ", ")
}

// spread is the median and range of a set of values.
type spread struct{ med, lo, hi float64 }

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{med: m, lo: s[0], hi: s[len(s)-1]}
}

// ratioSpread pairs the rounds of two targets: x[r]/y[r] for every round
// where both were measured, then the median and range of those ratios.
// Pairing by round cancels what a round shared, such as a slow minute.
func ratioSpread(x, y []float64) (spread, bool) {
	var v []float64
	for r := 0; r < len(x) && r < len(y); r++ {
		if x[r] > 0 && y[r] > 0 {
			v = append(v, x[r]/y[r])
		}
	}
	if len(v) == 0 {
		return spread{}, false
	}
	return spreadOf(v), true
}
