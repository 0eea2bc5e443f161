package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	requests int           // completed requests
	rps      float64       // its "Requests/sec"
	p50, p99 time.Duration // from the --latency distribution
	errors   int           // socket errors plus non-2xx/3xx answers
}

// wrkRun describes one invocation of wrk.
type wrkRun struct {
	bin         string // wrk binary
	pin         string // taskset CPU list for wrk, "" for none
	connections int    // open connections
	duration    time.Duration
	headers     []string // extra "Name: value" headers
	url         string
}

// args is the command line, taskset first when pinned. wrk runs one thread:
// it is given one core.
func (w wrkRun) args() []string {
	var a []string
	if w.pin != "" {
		a = append(a, "taskset", "-c", w.pin)
	}
	a = append(a, w.bin, "-t", "1", "-c", strconv.Itoa(w.connections),
		"-d", fmt.Sprintf("%ds", max(1, int(w.duration.Round(time.Second)/time.Second))), "--latency")
	for _, h := range w.headers {
		a = append(a, "-H", h)
	}
	return append(a, w.url)
}

// run executes wrk and parses its report.
func (w wrkRun) run(ctx context.Context) (wrkResult, error) {
	a := w.args()
	out, err := exec.CommandContext(ctx, a[0], a[1:]...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("%s: %w: %s", strings.Join(a, " "), err, strings.TrimSpace(string(out)))
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, fmt.Errorf("%s: %w", strings.Join(a, " "), err)
	}
	return r, nil
}

// parseWrk reads wrk's --latency report: the latency distribution table,
// the "N requests in" line, socket errors, non-2xx answers and
// Requests/sec.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveReq, have50, have99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	inDist := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case line == "Latency Distribution":
			inDist = true
			continue
		case inDist && len(f) == 2 && strings.HasSuffix(f[0], "%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("latency %s: %w", f[0], err)
			}
			switch f[0] {
			case "50%":
				r.p50, have50 = d, true
			case "99%":
				r.p99, have99 = d, true
			}
			continue
		}
		inDist = false
		switch {
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return r, fmt.Errorf("requests line %q: %w", line, err)
			}
			r.requests, haveReq = n, true
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("Requests/sec %q: %w", line, err)
			}
			r.rps, haveRPS = v, true
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.Atoi(strings.TrimSuffix(f[i+1], ","))
				if err != nil {
					return r, fmt.Errorf("socket errors %q: %w", line, err)
				}
				r.errors += n
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(f) == 5:
			n, err := strconv.Atoi(f[4])
			if err != nil {
				return r, fmt.Errorf("non-2xx %q: %w", line, err)
			}
			r.errors += n
		}
	}
	if !haveRPS || !haveReq || !have50 || !have99 {
		return r, errors.New("incomplete wrk report (want Requests/sec, N requests, 50% and 99% latency): " + strings.TrimSpace(out))
	}
	return r, nil
}

// parseWrkDuration reads wrk's durations: "912.00us", "1.03ms", "2.10s",
// "1.50m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}
