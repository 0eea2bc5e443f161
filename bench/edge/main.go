// Command edge is the edge's load scenario. On loopback it starts the hello
// workload three times and loads each target through wrk, in one run:
//
//	a   the workload directly
//	b   an httputil.ReverseProxy with a tuned transport (baseline)
//	c   the mesh edge, round-robin from the out-of-process plugin
//	d   the mesh edge, least-loaded from the out-of-process plugin
//	e1  Caddy, e2 nginx, e3 HAProxy as equivalent reverse proxies
//
// The load comes from wrk, an external generator that costs far less CPU
// per request than a Go client and so does not compress the differences
// between proxies. Where two CPUs or more exist, wrk (and, on a two-CPU
// machine, the workloads) run on one and the proxy under test alone on
// another, so the proxy's core is what limits throughput.
//
// Every proxy is a process of its own (this binary re-executed in proxy
// mode, or the caddy, nginx and haproxy binaries) with the same number of
// worker processes or threads. The balancer plugins run out of process
// through core/pluginhost, served by the mesh binary given with -mesh or,
// by default, by this binary, which serves the same bundled plugins.
//
// Scenarios: the tiny hello answer and a 16 KiB answer over keep-alive
// connections, and the tiny answer with a new connection per request. Each
// runs in rounds that rotate the order of the targets; the table shows the
// median and the spread (min-max) of the rounds, p50 and p99 from wrk's
// latency distribution, the CPU per request of the target's processes from
// /proc/<pid>/stat, and the ratios to the baseline, nginx and HAProxy,
// taken round by round. Before and during every round the bench measures
// what other processes on the machine use and how much CPU the hypervisor
// steals; when either passes a limit the table says LOADED instead of
// passing off its numbers as sound.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mesh/core/pluginhost"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == pluginhost.ServeArg {
		if err := pluginhost.ServeBundled(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "proxy" {
		if err := proxyMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "proxy:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "paced" {
		if err := pacedMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "paced:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run())
}

// config of one run.
type config struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	threads     int
	out         string
	mesh        string
	hello       string
	wrk         string
	skip        map[string]bool
	scenarios   []string
	profileDir  string
	rounds      int
	rate        int
	maxOther    float64
	maxSteal    float64
}

func run() int {
	var c config
	var skip, scenarios string
	fs := flag.NewFlagSet("edge-bench", flag.ContinueOnError)
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "measured time per target and round (whole seconds, as wrk takes them)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds over all targets, each in a rotated order; the table shows medians and min-max")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before each measurement (0: none)")
	fs.IntVar(&c.concurrency, "concurrency", 16, "wrk connections")
	fs.IntVar(&c.threads, "proxy-threads", 2, "worker processes (nginx), threads (HAProxy) or GOMAXPROCS (Go proxies) of every proxy")
	fs.StringVar(&c.out, "out", "", "also write the result table to this file")
	fs.StringVar(&c.mesh, "mesh", "", "mesh binary serving bundled plugins (default: this binary)")
	fs.StringVar(&c.hello, "hello", "", "prebuilt hello workload (default: go build ./workloads/hello)")
	fs.StringVar(&c.wrk, "wrk", "wrk", "wrk binary")
	fs.StringVar(&c.profileDir, "cpuprofile", "", "directory where each Go proxy child writes KIND.pprof")
	fs.IntVar(&c.rate, "rate", 1000, "requests/s of the moderate-load latency scenario (0 skips it)")
	fs.Float64Var(&c.maxOther, "max-other-cpu", 0.1, "cores other processes may use during a round before it counts as LOADED")
	fs.Float64Var(&c.maxSteal, "max-steal", 0.02, "share of CPU time the hypervisor may steal during a round before it counts as LOADED")
	fs.StringVar(&skip, "skip", "", "comma-separated targets to skip: direct,baseline,edge-rr,edge-ll,caddy,nginx,haproxy")
	fs.StringVar(&scenarios, "scenarios", "tiny,16k,close", "comma-separated scenarios: "+scenarioNames())
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	c.skip = splitSet(skip)
	for s := range strings.SplitSeq(scenarios, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, ok := scenarioByName(s); !ok {
			fmt.Fprintf(os.Stderr, "edge bench: unknown scenario %q (have %s)\n", s, scenarioNames())
			return 2
		}
		c.scenarios = append(c.scenarios, s)
	}
	for _, p := range []*string{&c.mesh, &c.hello} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				fmt.Fprintln(os.Stderr, "edge bench:", err)
				return 2
			}
			*p = abs
		}
	}
	c.rounds = max(c.rounds, 1)
	c.threads = max(c.threads, 1)
	c.duration = max(c.duration.Round(time.Second), time.Second)
	if err := bench(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "edge bench:", err)
		return 1
	}
	return 0
}

func splitSet(s string) map[string]bool {
	m := map[string]bool{}
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			m[v] = true
		}
	}
	return m
}

// target is one thing the scenario loads: the workload or a proxy.
type target struct {
	key, label string
	base       string // URL that a scenario's path is appended to
	pid        int    // root of the processes whose CPU counts for it
}

// setup is everything the scenarios run against.
type setup struct {
	targets   []target
	skipped   []target // label holds "skipped: why"
	pin       pinning
	counted   map[string]string // target key -> processes counted, e.g. "nginx x3"
	workloads []int             // pids of the hello workloads
}

func bench(ctx context.Context, c config) error {
	wrkBin, err := exec.LookPath(c.wrk)
	if err != nil {
		return fmt.Errorf("wrk not found (%w): make bench-edge installs it from Debian's packages", err)
	}
	c.wrk = wrkBin
	tmp, err := os.MkdirTemp("", "edge-bench-")
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	var procs []*proc
	var procsMu sync.Mutex
	stopAll := func() {
		procsMu.Lock()
		defer procsMu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
		procs = nil
	}
	defer stopAll()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		stopAll()
		os.RemoveAll(tmp)
		os.Exit(1)
	}()
	track := func(p *proc) {
		procsMu.Lock()
		procs = append(procs, p)
		procsMu.Unlock()
	}

	// How busy the machine is before the bench adds anything.
	quiet, err := measureQuiet(ctx, time.Second)
	if err != nil {
		return err
	}
	_, haveTaskset := lookBin([]string{"taskset"})
	st := &setup{pin: planPinning(allowedCPUs(), haveTaskset), counted: map[string]string{}}
	if err := startTargets(c, tmp, st, track); err != nil {
		return err
	}

	var reports []scenarioReport
	for _, name := range c.scenarios {
		sc, _ := scenarioByName(name)
		rep, err := runScenario(ctx, c, st, sc)
		if err != nil {
			return err
		}
		reports = append(reports, rep)
	}
	table := renderAll(c, st, quiet, reports)
	if c.rate > 0 {
		table += moderate(c, st)
	}
	fmt.Print(table)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(table), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", c.out, err)
		}
	}
	return nil
}

// measureQuiet is what other processes use over d while the bench is idle.
func measureQuiet(ctx context.Context, d time.Duration) (usage, error) {
	a, err := takeSnapshot()
	if err != nil {
		return usage{}, err
	}
	select {
	case <-ctx.Done():
		return usage{}, ctx.Err()
	case <-time.After(d):
	}
	b, err := takeSnapshot()
	if err != nil {
		return usage{}, err
	}
	return usageBetween(a, b, os.Getpid()), nil
}

// startTargets starts the workloads and every proxy. Idle ones cost
// nothing while another is measured.
func startTargets(c config, tmp string, st *setup, track func(*proc)) error {
	hello := c.hello
	if hello == "" {
		hello = filepath.Join(tmp, "hello")
		cmd := exec.Command("go", "build", "-o", hello, "./workloads/hello")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build hello (run from the module root or pass -hello): %w", err)
		}
	}
	var endpoints, upstreams []string
	var helloPIDs []int
	for i := 0; i < 3; i++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		cmd := pinned(st.pin.workload, hello)
		cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), fmt.Sprintf("MESH_INSTANCE=bench-%d", i+1))
		p, err := start("hello", cmd)
		if err != nil {
			return err
		}
		track(p)
		u := "http://127.0.0.1:" + strconv.Itoa(port)
		if err := waitHTTP(u+"/health", 10*time.Second); err != nil {
			return err
		}
		endpoints = append(endpoints, u)
		upstreams = append(upstreams, "127.0.0.1:"+strconv.Itoa(port))
		helloPIDs = append(helloPIDs, p.pid())
	}
	st.workloads = helloPIDs
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary: %w", err)
	}
	skipped := func(key, name, why string) {
		fmt.Fprintf(os.Stderr, "==> %s %s: skipped: %s\n", key, name, why)
		st.skipped = append(st.skipped, target{key: key, label: name + ": skipped: " + why})
	}
	if !c.skip["direct"] {
		st.targets = append(st.targets, target{key: "a", label: "direct to one workload", base: endpoints[0], pid: helloPIDs[0]})
	}
	goProxies := []struct{ skip, key, kind, label string }{
		{"baseline", "b", "baseline", "httputil.ReverseProxy, tuned (baseline)"},
		{"edge-rr", "c", "edge-rr", "edge, round-robin plugin (out of process)"},
		{"edge-ll", "d", "edge-ll", "edge, least-loaded plugin (out of process)"},
	}
	for _, pk := range goProxies {
		if c.skip[pk.skip] {
			continue
		}
		args := []string{"proxy", "-kind", pk.kind, "-endpoints", strings.Join(endpoints, ",")}
		if c.mesh != "" {
			args = append(args, "-mesh", c.mesh)
		}
		if c.profileDir != "" {
			args = append(args, "-cpuprofile", filepath.Join(c.profileDir, pk.kind+".pprof"))
		}
		cmd := pinned(st.pin.proxy, self, args...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(c.threads))
		cmd.Stderr = os.Stderr
		addr, p, note, err := startProxy(cmd)
		if err != nil {
			skipped(pk.key, pk.label, err.Error())
			continue
		}
		track(p)
		if err := waitHTTP("http://"+addr+"/billing/hello", 10*time.Second); err != nil {
			skipped(pk.key, pk.label, err.Error())
			continue
		}
		label := pk.label
		if note != "" {
			label += " [" + note + "]"
		}
		st.targets = append(st.targets, target{key: pk.key, label: label, base: "http://" + addr + "/billing", pid: p.pid()})
	}
	for _, x := range extProxies {
		if c.skip[x.name] {
			continue
		}
		addr, p, version, err := startExt(x, tmp, upstreams, c.threads, st.pin.proxy)
		if err != nil {
			skipped(x.key, x.name, err.Error())
			continue
		}
		track(p)
		st.targets = append(st.targets, target{key: x.key, label: strings.TrimSpace(x.name + " " + version), base: "http://" + addr + "/billing", pid: p.pid()})
	}
	var verified []target
	for _, t := range st.targets {
		if err := verifyTarget(t.base); err != nil {
			skipped(t.key, t.label, err.Error())
			continue
		}
		verified = append(verified, t)
	}
	st.targets = verified
	if len(st.targets) == 0 {
		return errors.New("no target to load")
	}
	return nil
}

// startProxy runs a proxy child and reads "LISTEN addr [note]" from it.
func startProxy(cmd *exec.Cmd) (addr string, p *proc, note string, err error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, "", fmt.Errorf("proxy stdout: %w", err)
	}
	p, err = start("proxy", cmd)
	if err != nil {
		return "", nil, "", err
	}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		f := strings.SplitN(strings.TrimSpace(l), " ", 3)
		if len(f) < 2 || f[0] != "LISTEN" {
			p.stop()
			return "", nil, "", fmt.Errorf("proxy did not start (%q)", strings.TrimSpace(l))
		}
		if len(f) == 3 {
			note = f[2]
		}
		return f[1], p, note, nil
	case <-time.After(30 * time.Second):
		p.stop()
		return "", nil, "", errors.New("proxy did not start within 30s")
	}
}
