package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the child's process group, then SIGKILL after 5s.
func (p *proc) stop() {
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

func start(name string, cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
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
			_, _ = io.Copy(io.Discard, resp.Body)
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

// verifyTarget checks that base serves what the workload serves for each
// scenario's path, so that no proxy is measured answering something
// cheaper (a 404, or the workload's catch-all because a path was not
// rewritten).
func verifyTarget(base string) error {
	for _, c := range []struct {
		path   string
		prefix string
		size   int
	}{{"/hello", "hello from billing ", -1}, {"/blob", "abcdefghij", 16 << 10}} {
		resp, err := http.Get(base + c.path)
		if err != nil {
			return fmt.Errorf("GET %s: %w", base+c.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %w", base+c.path, err)
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), c.prefix) || (c.size >= 0 && len(body) != c.size) {
			return fmt.Errorf("GET %s: status %d, %d bytes %.40q: not the workload's answer", base+c.path, resp.StatusCode, len(body), body)
		}
	}
	return nil
}

// pinning says which CPUs each side of the scenario runs on, as taskset
// CPU lists ("" leaves a side to the scheduler).
type pinning struct {
	gen      string // wrk
	workload string // the hello workloads
	proxy    string // the proxy under test and its children
	note     string // how it was decided, for the table's header
}

// planPinning splits the CPUs the bench may use: wrk on the first, the
// proxy under test alone on the second, the workloads on the rest or, with
// two CPUs, beside wrk. The proxy's core is then the scenario's bottleneck,
// so throughput compares proxies rather than the generator.
func planPinning(cpus []int, taskset bool) pinning {
	if !taskset {
		return pinning{note: "not pinned: taskset is not installed"}
	}
	if len(cpus) < 2 {
		return pinning{note: fmt.Sprintf("not pinned: only %d CPU available", len(cpus))}
	}
	p := pinning{gen: strconv.Itoa(cpus[0]), proxy: strconv.Itoa(cpus[1])}
	if len(cpus) == 2 {
		p.workload = p.gen
	} else {
		var rest []string
		for _, c := range cpus[2:] {
			rest = append(rest, strconv.Itoa(c))
		}
		p.workload = strings.Join(rest, ",")
	}
	p.note = fmt.Sprintf("wrk on cpu %s, workloads on cpu %s, proxy under test on cpu %s", p.gen, p.workload, p.proxy)
	return p
}

// allowedCPUs lists the CPUs this process may run on, from the
// Cpus_allowed_list line of /proc/self/status.
func allowedCPUs() []int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return parseCPUList(strings.TrimSpace(v))
		}
	}
	return nil
}

// parseCPUList reads the kernel's CPU list format: "0-3,8,10-11".
func parseCPUList(s string) []int {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// pinned is exec.Command for bin, run through taskset when cpus is set.
// taskset sets the affinity and then execs bin, so the child's pid is
// bin's and every thread and child it makes inherits the CPU list.
func pinned(cpus, bin string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpus, bin}, args...)...)
}
