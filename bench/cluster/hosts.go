package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mesh/internal/netnstest"
)

// host is where the bench runs processes: a network namespace with its
// own address on a private bridge when the machine allows it (root, ip,
// nsenter), else an address of the loopback net (127.0.0.x) that the
// processes of this "host" bind to.
type host struct {
	name string
	ip   string
	ns   *netnstest.Host // nil on loopback

	mu    sync.Mutex
	procs []*proc
}

// proc is a process the bench started on a host, in its own process group.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited <-chan struct{}
	log    string
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive reports whether p has not exited yet.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM to p and, after d, SIGKILL to its process group.
func (p *proc) stop(d time.Duration) {
	if !p.alive() {
		return
	}
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(d):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

// start runs bin with args on h, its output appended to logPath.
func (h *host) start(r *runner, name, logPath, bin string, args ...string) *proc {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.Fatalf("open log of %s: %v", name, err)
	}
	p := &proc{name: name, log: logPath}
	if h.ns != nil {
		cmd := h.ns.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		np := h.ns.Start(cmd)
		p.cmd, p.exited = np.Cmd, np.Exited()
	} else {
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			r.Fatalf("start %s on %s: %v", name, h.name, err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		p.cmd, p.exited = cmd, done
	}
	go func() { <-p.exited; logf.Close() }()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	r.Cleanup(func() { p.stop(20 * time.Second) })
	return p
}

// killAll SIGKILLs every process of the host, as a host that loses power:
// in a namespace every process in it; on loopback every process the bench
// started there and all their descendants (the workloads of an agent).
func (h *host) killAll() {
	if h.ns != nil {
		h.ns.KillAll()
		return
	}
	h.mu.Lock()
	procs := h.procs
	h.procs = nil
	h.mu.Unlock()
	for _, p := range procs {
		if !p.alive() {
			continue
		}
		for _, pid := range descendants(p.pid()) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

// descendants lists root and every process below it, root first, from
// the parent links in /proc.
func descendants(root int) []int { return subtree(procTable(), root) }

// network is the hosts of one run.
type network struct {
	mode string // "netns" or "loopback"
	why  string // why loopback, when it is
	net  *netnstest.Net
	next int // next loopback address: 127.0.0.<next>
}

// newNetwork builds hosts as network namespaces when the machine allows
// it and want is "auto" or "netns"; otherwise on loopback.
func newNetwork(r *runner, want string) (*network, error) {
	n := &network{mode: "loopback", next: 2}
	if want == "loopback" {
		n.why = "asked for (-hosts loopback)"
		return n, nil
	}
	err := catch(func() { n.net = netnstest.New(r) })
	if err == nil {
		n.mode = "netns"
		return n, nil
	}
	if want == "netns" {
		return nil, fmt.Errorf("network namespaces: %w", err)
	}
	n.why = err.Error()
	return n, nil
}

// addHost adds a host named name.
func (n *network) addHost(name string) *host {
	if n.net != nil {
		ns := n.net.AddHost(name)
		return &host{name: name, ip: ns.IP, ns: ns}
	}
	h := &host{name: name, ip: fmt.Sprintf("127.0.0.%d", n.next)}
	n.next++
	return h
}

// port returns a TCP port free on ip a moment ago. In a namespace every
// port is free, so a fixed base is used per host.
func (h *host) port(r *runner, base int) int {
	if h.ns != nil {
		return base
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(h.ip, "0"))
	if err != nil {
		r.Fatalf("free port on %s: %v", h.ip, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
