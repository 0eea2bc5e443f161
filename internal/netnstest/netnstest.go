// Package netnstest builds a small network of hosts on one machine for
// tests: each host is a Linux network namespace with its own address on a
// private bridge, joined to it by a veth pair, so processes started "on" a
// host see only that host's interfaces and reach the others over the bridge.
//
// Everything a Net creates is named after one run-unique tag (the bridge
// "mb<tag>", namespaces "mn<tag>-<host>", veths "mv<tag>h<i>" and
// "mv<tag>p<i>") and deleted by those names when the test ends: the veths
// first, because `ip netns del` tears a namespace down asynchronously and a
// quick rerun would otherwise collide with leftovers. A test process that
// is killed (a test timeout skips every cleanup) leaves its net behind;
// each Net records its owner (pid and start time) under
// /run/mesh-netnstest, and the next New deletes the nets of owners that are
// gone.
//
// The bridge has an address too, so the test process in the root namespace
// reaches every host directly. Processes are started in a host with
// nsenter(1), which enters the namespace and execs the command: the PID a
// test holds is the process's own, and /sys (with the cgroup hierarchy) is
// left as it is. A host's link can be taken down and up again (a partition)
// and every process in its namespace killed (a host lost).
//
// Building hosts needs root, the ip(8) and nsenter(1) commands and a kernel
// with network namespaces, veth and bridge support. Require checks them:
// without them a test fails loudly under CI=true and is skipped with the
// same message otherwise, so a CI run can never pass without the harness.
package netnstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Require fails (CI=true) or skips t when this machine cannot build hosts
// as network namespaces, naming what is missing.
func Require(t testing.TB) {
	t.Helper()
	if why := probe(); why != "" {
		msg := "multi-host harness unavailable: " + why
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this test must run)")
			return
		}
		t.Skip(msg)
	}
}

// probe is missing, replaced by tests of Require.
var probe = missing

// missing says which feature the harness lacks, or "".
func missing() string {
	if os.Geteuid() != 0 {
		return "not running as root (network namespaces, veth and bridges need CAP_NET_ADMIN and CAP_SYS_ADMIN)"
	}
	for _, c := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Sprintf("the %s command is not installed (%v)", c, err)
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return "the kernel has no network namespaces (/proc/self/ns/net: " + err.Error() + ")"
	}
	// Probe the pieces the harness uses: a namespace, a veth pair, a bridge.
	tag := newTag()
	ns, br, a, b := "mn"+tag+"-probe", "mb"+tag, "mv"+tag+"a", "mv"+tag+"b"
	defer func() {
		_ = exec.Command("ip", "link", "del", a).Run()
		_ = exec.Command("ip", "link", "del", br).Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}()
	for _, step := range []struct{ what, args string }{
		{"network namespaces", "netns add " + ns},
		{"veth pairs", "link add " + a + " type veth peer name " + b},
		{"bridges", "link add " + br + " type bridge"},
	} {
		if out, err := exec.Command("ip", strings.Fields(step.args)...).CombinedOutput(); err != nil {
			return fmt.Sprintf("the kernel refuses %s (ip %s: %v: %s)", step.what, step.args, err, bytes.TrimSpace(out))
		}
	}
	return ""
}

func newTag() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Net is a private bridge and the hosts on it.
type Net struct {
	t      testing.TB
	tag    string
	bridge string
	prefix string // first three octets of the /24, e.g. "10.77.12"
	// Gateway is the bridge's own address: the root namespace on the net.
	Gateway string

	mu    sync.Mutex
	hosts []*Host
}

// Host is one network namespace on a Net.
type Host struct {
	Name string
	NS   string // namespace name, for ip netns
	IP   string // the host's address on the bridge
	// hostSide is the veth end in the root namespace, enslaved to the
	// bridge: taking it down cuts the host off.
	hostSide string
	net      *Net
	mu       sync.Mutex
	procs    []*Proc
}

// New creates a bridge on a fresh private /24 with the address .1; it and
// every host added are deleted when t ends. What an earlier test process
// left behind because it was killed (a test timeout ends the process
// without cleanups) is deleted first.
func New(t testing.TB) *Net {
	t.Helper()
	Require(t)
	sweep()
	tag := newTag()
	b, _ := hex.DecodeString(tag)
	n := &Net{t: t, tag: tag, bridge: "mb" + tag, prefix: fmt.Sprintf("10.%d.%d", 64+int(b[0])%64, b[1])}
	n.Gateway = n.prefix + ".1"
	if err := claimTag(tag); err != nil {
		t.Fatalf("record the owner of net %s: %v", tag, err)
	}
	t.Cleanup(func() { n.teardown(); releaseTag(tag) })
	n.ip("link", "add", n.bridge, "type", "bridge")
	n.ip("addr", "add", n.Gateway+"/24", "dev", n.bridge)
	n.ip("link", "set", n.bridge, "up")
	return n
}

func (n *Net) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// AddHost creates a namespace named after name with the next address on
// the bridge and loopback up.
func (n *Net) AddHost(name string) *Host {
	n.t.Helper()
	n.mu.Lock()
	i := len(n.hosts)
	h := &Host{Name: name, NS: "mn" + n.tag + "-" + name, IP: fmt.Sprintf("%s.%d", n.prefix, 10+i),
		hostSide: fmt.Sprintf("mv%sh%d", n.tag, i), net: n}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	peer := fmt.Sprintf("mv%sp%d", n.tag, i)
	n.ip("netns", "add", h.NS)
	n.ip("link", "add", h.hostSide, "type", "veth", "peer", "name", peer)
	n.ip("link", "set", peer, "netns", h.NS)
	n.ip("link", "set", h.hostSide, "master", n.bridge)
	n.ip("link", "set", h.hostSide, "up")
	n.ip("-n", h.NS, "link", "set", "lo", "up")
	n.ip("-n", h.NS, "addr", "add", h.IP+"/24", "dev", peer)
	n.ip("-n", h.NS, "link", "set", peer, "up")
	return h
}

// teardown stops every process the hosts started and deletes the veths,
// the namespaces and the bridge, each by the name this Net gave it.
func (n *Net) teardown() {
	n.mu.Lock()
	hosts := append([]*Host(nil), n.hosts...)
	n.mu.Unlock()
	for _, h := range hosts {
		h.KillAll()
	}
	for _, h := range hosts {
		_ = exec.Command("ip", "link", "del", h.hostSide).Run()
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
	}
	_ = exec.Command("ip", "link", "del", n.bridge).Run()
}

// Command returns a command that runs in the host's namespace. Start it
// with Host.Start to have it stopped when the test ends.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + h.NS, "--", name}, args...)...)
}

// Proc is a process started on a host.
type Proc struct {
	Cmd    *exec.Cmd
	exited chan struct{}
}

// Exited is closed once the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Pid is the process's PID (nsenter execs the command in place).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Start starts cmd (from Command) in its own process group and records it,
// so that KillAll and the end of the test stop it by its PID.
func (h *Host) Start(cmd *exec.Cmd) *Proc {
	h.net.t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		h.net.t.Fatalf("start %s on %s: %v", cmd.Path, h.Name, err)
	}
	p := &Proc{Cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p
}

// Stop sends SIGTERM to p and waits up to d for it to exit, then kills
// it; it reports whether p stopped on SIGTERM.
func (p *Proc) Stop(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.exited
		return false
	}
}

// Kill SIGKILLs p by its PID and waits until it is reaped.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Pids lists every process whose network namespace is the host's, but
// the test process.
func (h *Host) Pids() []int {
	out, err := exec.Command("ip", "netns", "pids", h.NS).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		// The test process itself shows up while one of its threads is
		// in the namespace to dial from there (DialContext).
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// KillAll SIGKILLs every process in the host's namespace, as a host that
// loses power, and waits for the ones this host started to be reaped.
func (h *Host) KillAll() {
	for range 10 {
		pids := h.Pids()
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.mu.Lock()
	procs := h.procs
	h.procs = nil
	h.mu.Unlock()
	for _, p := range procs {
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL) // anything left in its group
		<-p.exited
	}
}

// LinkDown cuts the host off the bridge: packets between it and every
// other host (and the root namespace) are lost until LinkUp.
func (h *Host) LinkDown() { h.net.ip("link", "set", h.hostSide, "down") }

// LinkUp heals a LinkDown.
func (h *Host) LinkUp() { h.net.ip("link", "set", h.hostSide, "up") }
