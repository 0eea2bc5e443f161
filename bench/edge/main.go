// Command edge is the edge's load scenario. On loopback it starts the hello
// workload three times and drives a closed-loop load (N keep-alive workers)
// through each target in turn, in one run:
//
//	a  the workload directly
//	b  an in-process httputil.ReverseProxy with a tuned transport (baseline)
//	c  the mesh edge, round-robin from the out-of-process plugin
//	d  the mesh edge, least-loaded from the out-of-process plugin
//	e  Caddy and nginx as equivalent reverse proxies, when installed
//
// Every proxy runs in its own process (this binary re-executed in proxy
// mode, or the caddy and nginx binaries), so the load generator and the
// proxy under test are scheduled by the kernel, not by one Go runtime. The
// balancer plugins run out of process through core/pluginhost, served by
// the mesh binary given with -mesh (its hidden plugin-serve mode) or, by
// default, by this binary, which serves the same bundled plugins.
//
// It prints requests/s, p50 and p99 per target and the ratios to the
// baseline, and writes the same table to -out.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/edge"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
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
	os.Exit(run())
}

// config of one run.
type config struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	out         string
	mesh        string
	hello       string
	skip        map[string]bool
	profileDir  string
	rounds      int
	rate        int
}

func run() int {
	var c config
	var skip string
	fs := flag.NewFlagSet("edge-bench", flag.ContinueOnError)
	fs.DurationVar(&c.duration, "duration", 3*time.Second, "measured time per target and round")
	fs.IntVar(&c.rounds, "rounds", 3, "interleaved rounds over all targets; the table shows medians")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before each measurement")
	fs.IntVar(&c.concurrency, "concurrency", 16, "closed-loop workers (keep-alive connections)")
	fs.StringVar(&c.out, "out", "", "also write the result table to this file")
	fs.StringVar(&c.mesh, "mesh", "", "mesh binary serving bundled plugins (default: this binary)")
	fs.StringVar(&c.hello, "hello", "", "prebuilt hello workload (default: go build ./workloads/hello)")
	fs.StringVar(&c.profileDir, "cpuprofile", "", "directory where each Go proxy child writes KIND.pprof")
	fs.IntVar(&c.rate, "rate", 1000, "requests/s of the moderate-load latency scenario (0 skips it)")
	fs.StringVar(&skip, "skip", "", "comma-separated targets to skip: direct,baseline,edge-rr,edge-ll,caddy,nginx")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	c.skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.skip[s] = true
		}
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
	if c.rounds < 1 {
		c.rounds = 1
	}
	if err := bench(c); err != nil {
		fmt.Fprintln(os.Stderr, "edge bench:", err)
		return 1
	}
	return 0
}

// proc is a child process in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) stop() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func start(name string, cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP waits until url answers 200.
func waitHTTP(u string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %w", u, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// result of one target.
type result struct {
	key, label string
	rps        float64
	p50, p99   time.Duration
	requests   int
	errors     int
	note       string
}

// target is one thing the scenario loads: the workload or a proxy.
type target struct{ key, label, url, skip string }

func bench(c config) error {
	tmp, err := os.MkdirTemp("", "edge-bench-")
	if err != nil {
		return err
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

	hello := c.hello
	if hello == "" {
		hello = filepath.Join(tmp, "hello")
		cmd := exec.Command("go", "build", "-o", hello, "./workloads/hello")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build hello (run from the module root or pass -hello): %w", err)
		}
	}
	var endpoints []string
	for i := 0; i < 3; i++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		cmd := exec.Command(hello)
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
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// Start every target first; idle ones cost nothing. Then measure them
	// in interleaved rounds so that noise from the machine spreads over all
	// targets alike, and report medians.
	var targets []target
	var skippedRows []result
	skipped := func(key, label, why string) {
		fmt.Fprintf(os.Stderr, "==> %s: skipped: %s\n", key, why)
		skippedRows = append(skippedRows, result{key: key, label: label, note: "skipped: " + why})
	}
	if !c.skip["direct"] {
		targets = append(targets, target{key: "a", label: "direct to one workload", url: endpoints[0] + "/hello"})
	}
	proxyKinds := []struct{ skip, key, kind, label string }{
		{"baseline", "b", "baseline", "httputil.ReverseProxy, tuned (baseline)"},
		{"edge-rr", "c", "edge-rr", "edge, round-robin plugin (out of process)"},
		{"edge-ll", "d", "edge-ll", "edge, least-loaded plugin (out of process)"},
	}
	for _, pk := range proxyKinds {
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
		cmd := exec.Command(self, args...)
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
		targets = append(targets, target{key: pk.key, label: label, url: "http://" + addr + "/billing/hello"})
	}
	if !c.skip["caddy"] {
		if addr, p, version, err := startCaddy(tmp, endpoints); err != nil {
			skipped("e1", "caddy", err.Error())
		} else {
			track(p)
			targets = append(targets, target{key: "e1", label: "caddy " + version + " reverse_proxy", url: "http://" + addr + "/billing/hello"})
		}
	}
	if !c.skip["nginx"] {
		if addr, p, version, err := startNginx(tmp, endpoints); err != nil {
			skipped("e2", "nginx", err.Error())
		} else {
			track(p)
			targets = append(targets, target{key: "e2", label: "nginx " + version + " proxy_pass, keepalive upstream", url: "http://" + addr + "/billing/hello"})
		}
	}

	rounds := make([][]result, len(targets))
	for r := 0; r < c.rounds; r++ {
		for i, t := range targets {
			res := load(t.url, c.concurrency, c.warmup, c.duration)
			fmt.Fprintf(os.Stderr, "==> round %d/%d %-3s %-50s %8.0f req/s p50 %s p99 %s errors %d\n",
				r+1, c.rounds, t.key, t.label, res.rps, fmtDur(res.p50), fmtDur(res.p99), res.errors)
			rounds[i] = append(rounds[i], res)
		}
	}
	var results []result
	for i, t := range targets {
		m := median(rounds[i])
		m.key, m.label = t.key, t.label
		results = append(results, m)
	}
	results = append(results, skippedRows...)
	sort.SliceStable(results, func(i, j int) bool { return results[i].key < results[j].key })

	table := render(c, results)
	if c.rate > 0 {
		table += moderate(c, targets)
	}
	fmt.Print(table)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(table), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", c.out, err)
		}
	}
	return nil
}

// startProxy runs a proxy child and reads "LISTEN addr [note]" from it.
func startProxy(cmd *exec.Cmd) (addr string, p *proc, note string, err error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, "", err
	}
	p, err = start("proxy", cmd)
	if err != nil {
		return "", nil, "", err
	}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		io.Copy(io.Discard, out)
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

func startCaddy(tmp string, endpoints []string) (string, *proc, string, error) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return "", nil, "", errors.New("caddy is not installed")
	}
	port, err := freePort()
	if err != nil {
		return "", nil, "", err
	}
	var ups []string
	for _, e := range endpoints {
		ups = append(ups, strings.TrimPrefix(e, "http://"))
	}
	dir := filepath.Join(tmp, "caddy")
	os.MkdirAll(dir, 0o755)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
}

http://127.0.0.1:%d {
	handle_path /billing/* {
		reverse_proxy %s {
			lb_policy round_robin
		}
	}
}
`, port, strings.Join(ups, " "))
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return "", nil, "", err
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir)
	logf, _ := os.Create(filepath.Join(dir, "caddy.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := start("caddy", cmd)
	if err != nil {
		return "", nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP("http://"+addr+"/billing/hello", 15*time.Second); err != nil {
		p.stop()
		return "", nil, "", fmt.Errorf("caddy: %w (log in %s)", err, logf.Name())
	}
	return addr, p, versionOf(bin, "version"), nil
}

func startNginx(tmp string, endpoints []string) (string, *proc, string, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, c := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, serr := os.Stat(c); serr == nil {
				bin, err = c, nil
			}
		}
		if err != nil {
			return "", nil, "", errors.New("nginx is not installed")
		}
	}
	port, err := freePort()
	if err != nil {
		return "", nil, "", err
	}
	dir := filepath.Join(tmp, "nginx")
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	var servers strings.Builder
	for _, e := range endpoints {
		fmt.Fprintf(&servers, "\t\tserver %s;\n", strings.TrimPrefix(e, "http://"))
	}
	conf := fmt.Sprintf(`worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 100000;
	upstream billing {
%[2]s		keepalive 256;
	}
	server {
		listen 127.0.0.1:%[3]d;
		location /billing/ {
			proxy_pass http://billing/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_set_header X-Forwarded-Host $host;
		}
	}
}
`, dir, servers.String(), port)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return "", nil, "", err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", file, "-e", filepath.Join(dir, "logs", "error.log"))
	logf, _ := os.Create(filepath.Join(dir, "nginx.out"))
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := start("nginx", cmd)
	if err != nil {
		return "", nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP("http://"+addr+"/billing/hello", 15*time.Second); err != nil {
		p.stop()
		return "", nil, "", fmt.Errorf("nginx: %w (logs in %s)", err, dir)
	}
	return addr, p, strings.TrimPrefix(versionOf(bin, "-v"), "nginx/"), nil
}

func versionOf(bin string, arg string) string {
	out, err := exec.Command(bin, arg).CombinedOutput()
	if err != nil {
		return ""
	}
	f := strings.Fields(strings.TrimSpace(string(out)))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// load drives target with n closed-loop workers: warmup first, then the
// measured window.
func load(target string, n int, warmup, d time.Duration) result {
	tr := &http.Transport{
		MaxIdleConns:        n * 2,
		MaxIdleConnsPerHost: n * 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var measuring atomic.Bool
	var stop atomic.Bool
	lat := make([][]time.Duration, n)
	errs := make([]int, n)
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 4096)
			samples := make([]time.Duration, 0, 1<<16)
			for !stop.Load() {
				t0 := time.Now()
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
				if !measuring.Load() {
					continue
				}
				if !ok {
					errs[w]++
					continue
				}
				samples = append(samples, time.Since(t0))
			}
			lat[w] = samples
		}(w)
	}
	time.Sleep(warmup)
	measuring.Store(true)
	t0 := time.Now()
	time.Sleep(d)
	measuring.Store(false)
	elapsed := time.Since(t0)
	stop.Store(true)
	wg.Wait()
	var all []time.Duration
	r := result{}
	for w := range lat {
		all = append(all, lat[w]...)
		r.errors += errs[w]
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r.requests = len(all)
	r.rps = float64(len(all)) / elapsed.Seconds()
	if len(all) > 0 {
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r
}

// median combines rounds: median req/s, p50 and p99, summed counts.
func median(rs []result) result {
	var out result
	pick := func(get func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
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

func render(c config, rs []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# edge load scenario: %s, %d cores, %d keep-alive workers, %d interleaved rounds of %s per target (after %s warmup); medians\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), c.concurrency, c.rounds, c.duration, c.warmup)
	fmt.Fprintf(&b, "# 3 hello workloads on loopback; proxies get GET /billing/hello, direct gets GET /hello\n")
	var base float64
	for _, r := range rs {
		if r.key == "b" && r.note == "" {
			base = r.rps
		}
	}
	ratio := func(x float64) string {
		if base == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", x/base)
	}
	fmt.Fprintf(&b, "%-3s %-62s %10s %9s %9s %7s %9s\n", "", "target", "req/s", "p50", "p99", "errors", "vs (b)")
	for _, r := range rs {
		if r.note != "" {
			fmt.Fprintf(&b, "%-3s %-62s %s\n", r.key, r.label, r.note)
			continue
		}
		fmt.Fprintf(&b, "%-3s %-62s %10.0f %9s %9s %7d %9s\n", r.key, r.label, r.rps,
			fmtDur(r.p50), fmtDur(r.p99), r.errors, ratio(r.rps))
	}
	get := func(k string) (result, bool) {
		for _, r := range rs {
			if r.key == k && r.note == "" {
				return r, true
			}
		}
		return result{}, false
	}
	if cr, ok := get("c"); ok && base > 0 {
		verdict := "meets"
		if cr.rps < 0.95*base {
			verdict = "misses"
		}
		fmt.Fprintf(&b, "bar (c) >= 0.95x (b): %.2fx, %s\n", cr.rps/base, verdict)
		if cad, ok := get("e1"); ok {
			verdict = "meets"
			if cr.rps < cad.rps {
				verdict = "misses"
			}
			fmt.Fprintf(&b, "bar (c) >= caddy: %.2fx caddy, %s\n", cr.rps/cad.rps, verdict)
		}
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.0fus", float64(d)/float64(time.Microsecond))
}

// proxyMain serves one proxy under test until SIGTERM. It prints
// "LISTEN addr [note]" once it accepts connections.
func proxyMain(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	kind := fs.String("kind", "", "baseline, edge-rr or edge-ll")
	eps := fs.String("endpoints", "", "comma-separated endpoint URLs")
	mesh := fs.String("mesh", "", "mesh binary serving bundled plugins")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the proxy to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *profile != "" {
		pf, err := os.Create(*profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	urls := strings.Split(*eps, ",")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	switch *kind {
	case "baseline":
		return serveBaseline(urls, sigs)
	case "edge-rr":
		return serveEdge(urls, "round-robin", *mesh, sigs)
	case "edge-ll":
		return serveEdge(urls, "least-loaded", *mesh, sigs)
	}
	return fmt.Errorf("unknown proxy kind %q", *kind)
}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }

// serveBaseline is the reference: httputil.ReverseProxy with a tuned
// transport, a copy-buffer pool and round-robin over the endpoints.
func serveBaseline(urls []string, sigs <-chan os.Signal) error {
	targets := make([]*url.URL, len(urls))
	for i, u := range urls {
		t, err := url.Parse(u)
		if err != nil {
			return err
		}
		targets[i] = t
	}
	var next atomic.Uint64
	pool := &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := targets[(next.Add(1)-1)%uint64(len(targets))]
			pr.SetURL(t)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/billing")
			pr.Out.URL.RawPath = ""
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		BufferPool: pool,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("LISTEN %s\n", ln.Addr())
	<-sigs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// serveEdge runs the mesh edge with the named bundled balancer loaded out
// of process through pluginhost.
func serveEdge(urls []string, balancer, mesh string, sigs <-chan os.Signal) error {
	log := hclog.New(&hclog.LoggerOptions{Name: "bench", Output: os.Stderr, Level: hclog.Warn})
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx := context.Background()
	load := func(exe string) (*pluginhost.Host, sdk.Balancer, error) {
		host, err := pluginhost.New(pluginhost.Options{Logger: log, SelfExe: exe})
		if err != nil {
			return nil, nil, err
		}
		bal, err := host.Balancer(ctx, pluginhost.Spec{Kind: sdk.KindBalancer, Name: balancer})
		if err != nil {
			host.Close()
			return nil, nil, err
		}
		return host, bal, nil
	}
	note := ""
	exe := self
	if mesh != "" {
		exe = mesh
	}
	host, bal, err := load(exe)
	if err != nil && mesh != "" {
		log.Warn("mesh binary cannot serve the plugin; serving it from this binary", "mesh", mesh, "error", err)
		note = "plugin served by the bench binary"
		host, bal, err = load(self)
	}
	if err != nil {
		return fmt.Errorf("load balancer plugin %s: %w", balancer, err)
	}
	defer host.Close()

	f, err := fabric.New(fabric.Options{Logger: log})
	if err != nil {
		return err
	}
	defer f.Close()
	for i, u := range urls {
		f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: u, NodeID: fmt.Sprintf("node-%d", i+1)})
	}
	e, err := edge.New(edge.Options{
		Source:    f,
		Balancers: func(string) edge.Balancer { return bal },
		Logger:    log,
	})
	if err != nil {
		return err
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		return err
	}
	fmt.Printf("LISTEN %s %s\n", e.Addr(), note)
	<-sigs
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.Shutdown(sctx)
}

// moderate measures latency at a fixed, moderate request rate (open loop:
// each request's latency counts from when it was due, so queueing shows) for
// the workload directly (a), the baseline proxy (b) and the edge (c), in
// interleaved rounds, and reports the p99 the proxies add over direct.
func moderate(c config, targets []target) string {
	pick := map[string]target{}
	for _, t := range targets {
		if t.key == "a" || t.key == "b" || t.key == "c" {
			pick[t.key] = t
		}
	}
	if _, ok := pick["a"]; !ok {
		return ""
	}
	keys := []string{"a", "b", "c"}
	rounds := map[string][]result{}
	for r := 0; r < c.rounds; r++ {
		for _, k := range keys {
			t, ok := pick[k]
			if !ok {
				continue
			}
			res := paced(t.url, c.rate, c.warmup, c.duration)
			fmt.Fprintf(os.Stderr, "==> moderate round %d/%d %-3s %5d req/s: p50 %s p99 %s errors %d\n",
				r+1, c.rounds, k, c.rate, fmtDur(res.p50), fmtDur(res.p99), res.errors)
			rounds[k] = append(rounds[k], res)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n# moderate load: %d req/s open loop, %d rounds of %s; medians\n", c.rate, c.rounds, c.duration)
	fmt.Fprintf(&b, "%-3s %-62s %9s %9s %7s %12s\n", "", "target", "p50", "p99", "errors", "p99 added")
	base := median(rounds["a"])
	for _, k := range keys {
		rs, ok := rounds[k]
		if !ok {
			continue
		}
		m := median(rs)
		added := "-"
		if k != "a" {
			added = fmtDur(m.p99 - base.p99)
		}
		fmt.Fprintf(&b, "%-3s %-62s %9s %9s %7d %12s\n", k, pick[k].label, fmtDur(m.p50), fmtDur(m.p99), m.errors, added)
	}
	if rs, ok := rounds["c"]; ok {
		added := median(rs).p99 - base.p99
		verdict := "meets"
		if added > time.Millisecond {
			verdict = "misses"
		}
		fmt.Fprintf(&b, "bar (c) p99 added <= 1ms at %d req/s: %s, %s\n", c.rate, fmtDur(added), verdict)
	}
	return b.String()
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
