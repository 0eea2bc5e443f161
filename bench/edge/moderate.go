package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// result is one paced run.
type result struct {
	rps      float64
	p50, p99 time.Duration
	requests int
	errors   int
}

// median combines rounds: median p50 and p99, summed counts.
func median(rs []result) result {
	var out result
	pick := func(get func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		return spreadOf(v).med
	}
	out.rps = pick(func(r result) float64 { return r.rps })
	out.p50 = time.Duration(pick(func(r result) float64 { return float64(r.p50) }))
	out.p99 = time.Duration(pick(func(r result) float64 { return float64(r.p99) }))
	for _, r := range rs {
		out.requests += r.requests
		out.errors += r.errors
	}
	return out
}

// moderate measures latency at a fixed, moderate request rate (open loop:
// each request's latency counts from when it was due, so queueing shows) for
// the workload directly (a), the baseline proxy (b), the edge (c), nginx
// and HAProxy, in rotated rounds, and reports the p99 each proxy adds over
// direct. wrk cannot pace requests, so this client is the bench's own:
// this binary re-executed in paced mode, pinned where wrk would be.
func moderate(c config, st *setup) string {
	targets := st.targets
	var picked []target
	for _, t := range targets {
		switch t.key {
		case "a", "b", "c", "e2", "e3":
			picked = append(picked, t)
		}
	}
	if len(picked) == 0 || picked[0].key != "a" {
		return ""
	}
	self := os.Getpid()
	rounds := make([][]result, len(picked))
	loaded, total := 0, 0
	var worst usage
	var maxSteal float64
	for r := 0; r < c.rounds; r++ {
		for _, i := range rotation(len(picked), r) {
			t := picked[i]
			s0, err := takeSnapshot()
			res, perr := pacedChild(st.pin.gen, t.base+"/hello", c.rate, c.warmup, c.duration)
			if perr != nil {
				fmt.Fprintf(os.Stderr, "==> moderate round %d/%d %-3s failed: %v\n", r+1, c.rounds, t.key, perr)
				continue
			}
			s1, err2 := takeSnapshot()
			status := ""
			if err == nil && err2 == nil {
				u := usageBetween(s0, s1, self)
				total++
				if u.otherCores > worst.otherCores {
					worst = u
				}
				maxSteal = max(maxSteal, u.stealFrac)
				if c.isLoaded(u) {
					loaded++
					status = "  LOADED: other processes " + describeUsage(u, u)
				}
			}
			fmt.Fprintf(os.Stderr, "==> moderate round %d/%d %-3s %5d req/s: p50 %s p99 %s errors %d%s\n",
				r+1, c.rounds, t.key, c.rate, fmtDur(res.p50), fmtDur(res.p99), res.errors, status)
			rounds[i] = append(rounds[i], res)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## moderate: %d req/s open loop (the bench's paced client, pinned as wrk is), GET /hello, %d rotated rounds of %s; medians\n", c.rate, c.rounds, c.duration)
	fmt.Fprintf(&b, "%-3s %-*s %9s %9s %7s %12s\n", "", labelWidth, "target", "p50", "p99", "errors", "p99 added")
	base := median(rounds[0])
	var edgeAdded *time.Duration
	for i, t := range picked {
		m := median(rounds[i])
		added := "-"
		if i > 0 {
			d := m.p99 - base.p99
			added = fmtDur(d)
			if t.key == "c" {
				edgeAdded = &d
			}
		}
		fmt.Fprintf(&b, "%-3s %-*s %9s %9s %7d %12s\n", t.key, labelWidth, clip(t.label), fmtDur(m.p50), fmtDur(m.p99), m.errors, added)
	}
	v := loadVerdict{loaded: loaded, total: total, worst: worst, maxSteal: maxSteal}
	fmt.Fprintf(&b, "%s\n", v.line(c))
	if edgeAdded != nil {
		verdict := "meets"
		if *edgeAdded > time.Millisecond {
			verdict = "misses"
		}
		fmt.Fprintf(&b, "bar (c) p99 added <= 1ms at %d req/s: %s, %s\n", c.rate, fmtDur(*edgeAdded), verdict)
	}
	return b.String()
}

// pacedChild runs paced in a child process pinned to cpus and reads its
// "PACED p50 p99 requests errors" line (durations in nanoseconds).
func pacedChild(cpus, url string, rate int, warmup, d time.Duration) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, fmt.Errorf("find this binary: %w", err)
	}
	args := []string{"paced", "-url", url, "-rate", strconv.Itoa(rate), "-warmup", warmup.String(), "-duration", d.String()}
	out, err := pinned(cpus, self, args...).Output()
	if err != nil {
		return result{}, fmt.Errorf("paced client: %w", err)
	}
	var r result
	var p50, p99 int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "PACED %d %d %d %d", &p50, &p99, &r.requests, &r.errors); err != nil {
		return result{}, fmt.Errorf("paced client said %q: %w", out, err)
	}
	r.p50, r.p99, r.rps = time.Duration(p50), time.Duration(p99), float64(rate)
	return r, nil
}

// pacedMain is the paced client's process.
func pacedMain(args []string) error {
	fs := flag.NewFlagSet("paced", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET")
	rate := fs.Int("rate", 1000, "requests per second")
	warmup := fs.Duration("warmup", time.Second, "unmeasured time first")
	d := fs.Duration("duration", 3*time.Second, "measured time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *rate <= 0 {
		return errors.New("paced needs -url and a positive -rate")
	}
	r := paced(*url, *rate, *warmup, *d)
	fmt.Printf("PACED %d %d %d %d\n", r.p50, r.p99, r.requests, r.errors)
	return nil
}

// paced sends GETs to target at rate per second for d (after warmup) and
// measures each from the moment it was due.
func paced(target string, rate int, warmup, d time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	interval := time.Second / time.Duration(rate)
	due := make(chan time.Time, 4096)
	type sample struct {
		due time.Time
		lat time.Duration
		ok  bool
	}
	out := make(chan sample, 4096)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for t0 := range due {
				resp, err := client.Get(target)
				ok := err == nil
				if ok {
					for {
						if _, rerr := resp.Body.Read(buf); rerr != nil {
							ok = rerr == io.EOF
							break
						}
					}
					resp.Body.Close()
					ok = ok && resp.StatusCode == 200
				}
				out <- sample{t0, time.Since(t0), ok}
			}
		}()
	}
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(d)
	var all []time.Duration
	errs := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range out {
			if s.due.Before(measureFrom) {
				continue // warmup
			}
			if !s.ok {
				errs++
				continue
			}
			all = append(all, s.lat)
		}
	}()
	for next := start; next.Before(end); next = next.Add(interval) {
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		}
		due <- next
	}
	close(due)
	wg.Wait()
	close(out)
	<-done
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := result{requests: len(all), errors: errs, rps: float64(rate)}
	if len(all) > 0 {
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r
}
