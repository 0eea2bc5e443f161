package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/cgroup"
	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/spore"
	"github.com/mycelium-mesh/mesh/sdk"
)

// Health polling: the first check follows the launch almost at once, the
// interval then doubles up to the cap. A single check never waits longer
// than Options.CheckTimeout.
const (
	healthFirstPoll = 2 * time.Millisecond
	healthMaxPoll   = 100 * time.Millisecond
)

// instance is one workload process of an app on this node. The fields above
// mu are set before the instance is shared and never change.
type instance struct {
	a        *Agent
	app      string
	digest   string
	id       string
	restarts int
	health   string // health path from the plan; "" = the agent's
	// onRevoke is called, from its own goroutine, when the fabric revokes
	// the instance's claim before it was given back.
	onRevoke func()
	released chan struct{} // closed when the claim is given back
	log      hclog.Logger
	ctx      context.Context // cancelled to abort a start in progress
	cancel   context.CancelFunc

	mu        sync.Mutex
	state     string
	since     time.Time
	pid       int
	port      int
	url       string
	lastError string
	lease     *fabric.Lease // fabric claim, nil once given back
	endpoint  fabric.Endpoint
	readyAt   time.Time

	group  *cgroup.Group // the instance's cgroup; nil with process groups
	limits cgroup.Limits // enforced by group

	tail     *lineTail         // last lines of stderr
	logsDone []<-chan struct{} // closed when stdout and stderr are copied

	reaped   bool          // the process is reaped; its pid may be reused
	exited   chan struct{} // closed once the process is reaped
	exitErr  error         // from cmd.Wait, valid after exited
	stopOnce sync.Once

	// relayed: a log relay process holds the workload's pipes (Adopt),
	// so the stderr tail is read back from stderr.log. Set before the
	// instance is shared, like the fields above mu.
	relayed bool
	// adopted is set for a workload a previous run started (adopt.go).
	adopted *adoptee
	// detached is closed when the agent stops and leaves the instance
	// running for the next run to adopt; nil without Adopt.
	detached chan struct{}
}

// outcome is what an instance reports to its app when it is over.
type outcome struct {
	inst    *instance
	refused bool  // the claim was refused; nothing was launched
	failed  bool  // the start failed (fetch, launch or health gate)
	err     error // why it failed or how the process exited
	crashed bool  // the process exited on its own after it was ready
}

func newInstanceID(app string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return app + "-" + hex.EncodeToString(b[:])
}

func (i *instance) setState(state, lastError string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state == state && lastError == "" {
		return
	}
	i.state = state
	i.since = time.Now()
	if lastError != "" {
		i.lastError = lastError
	}
}

func (i *instance) getState() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.state
}

func (i *instance) status() InstanceStatus {
	i.mu.Lock()
	defer i.mu.Unlock()
	return InstanceStatus{
		App: i.app, NodeID: i.a.opts.NodeID, Instance: i.id, Digest: i.digest,
		State: i.state, PID: i.pid, Port: i.port, URL: i.url,
		Restarts: i.restarts, LastError: i.lastError, Since: i.since,
		Containment: i.a.contain, Limits: i.limits.String(), StderrTail: i.stderrLast(stderrTailLines),
		Dir: i.dir(),
	}
}

// start fetches, claims, launches and health-gates the instance. It returns
// nil once the instance is healthy; otherwise the outcome to report, with
// every resource it took already given back.
func (i *instance) start(port int) *outcome {
	a := i.a
	dir, m, err := a.prepare(i.ctx, i.digest)
	if err != nil {
		i.log.Error("spore not usable", "error", err)
		i.emit(events.InstanceUnhealthy, "spore not usable: "+err.Error())
		return &outcome{inst: i, failed: true, err: err}
	}
	if err := i.ctx.Err(); err != nil {
		return &outcome{inst: i, err: err}
	}
	lease, err := a.opts.Fabric.Acquire(i.app, a.opts.NodeID, m.Resources.Nutrients.CPUMilli, m.Resources.Nutrients.MemoryMB)
	if err != nil {
		return &outcome{inst: i, refused: true, err: err}
	}
	i.mu.Lock()
	i.lease = lease
	i.mu.Unlock()
	i.watchRevoke(lease)

	if err := i.launch(dir, m, port); err != nil {
		i.log.Error("launch failed", "error", err)
		i.emit(events.InstanceUnhealthy, "launch failed: "+err.Error())
		i.giveBack()
		return &outcome{inst: i, failed: true, err: err}
	}
	i.emit(events.InstanceLaunched, "")
	if err := i.waitHealthy(); err != nil {
		aborted := i.ctx.Err() != nil
		if !aborted {
			i.log.Warn("health fail", "error", err, "timeout", a.opts.HealthTimeout)
			i.emit(events.InstanceUnhealthy, err.Error())
		}
		i.kill()
		<-i.exited
		i.giveBack()
		if aborted {
			return &outcome{inst: i, err: i.ctx.Err()}
		}
		if tail := i.stderrQuote(); tail != "" {
			err = fmt.Errorf("%w; last stderr: %s", err, tail)
		}
		return &outcome{inst: i, failed: true, err: err}
	}
	i.mu.Lock()
	i.readyAt = time.Now()
	i.mu.Unlock()
	i.log.Info("health ok", "url", i.url, "pid", i.pid)
	i.emit(events.InstanceHealthy, "")
	return nil
}

// watchRevoke reports a revocation of lease through onRevoke until the
// claim is given back.
func (i *instance) watchRevoke(lease *fabric.Lease) {
	go func() {
		select {
		case <-lease.Revoked():
			if i.onRevoke != nil {
				i.onRevoke()
			}
		case <-i.released:
		}
	}()
}

// stderrLast returns up to n of the last lines the workload wrote to
// stderr: kept in memory when the agent copies the stream, read back from
// stderr.log when a relay does.
func (i *instance) stderrLast(n int) []string {
	if i.relayed {
		return fileTail(filepath.Join(i.dir(), "stderr.log"), n)
	}
	return i.tail.last(n)
}

// dir is the instance directory: working directory and logs.
func (i *instance) dir() string { return filepath.Join(i.a.nodeDir, i.id) }

// launch starts the workload process in its own group and, where the
// agent uses cgroups, in its own cgroup.
func (i *instance) launch(sporeDir string, m spore.Manifest, wantPort int) error {
	a := i.a
	dir := i.dir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create instance dir: %w", err)
	}
	pol := a.logPolicy(i.app)
	var stdout, stderr *os.File
	if a.opts.Adopt {
		r, err := a.startRelay(dir, pol)
		if err != nil {
			return err
		}
		defer r.closeWriters()
		stdout, stderr = r.stdout, r.stderr
		i.logsDone = []<-chan struct{}{r.done}
	} else {
		var stdoutDone, stderrDone <-chan struct{}
		var err error
		stdout, stdoutDone, err = streamPipe(filepath.Join(dir, "stdout.log"), pol, nil)
		if err != nil {
			return err
		}
		defer stdout.Close()
		stderr, stderrDone, err = streamPipe(filepath.Join(dir, "stderr.log"), pol, i.tail)
		if err != nil {
			return err
		}
		defer stderr.Close()
		i.logsDone = []<-chan struct{}{stdoutDone, stderrDone}
	}

	port, err := i.pickPort(wantPort)
	if err != nil {
		return err
	}
	group, err := i.newGroup(m)
	if err != nil {
		releasePort(port)
		return err
	}
	fail := func(err error) error {
		releasePort(port)
		if group != nil {
			if rerr := group.Remove(); rerr != nil {
				i.log.Warn("remove cgroup", "error", rerr)
			}
		}
		return err
	}
	newCmd := func() *exec.Cmd {
		cmd := exec.Command(filepath.Join(sporeDir, "binary"), m.Runtime.Args...)
		var join []string
		if group != nil {
			join = group.JoinPaths()
		}
		if len(join) > 0 {
			// v1: the shim joins the groups, then execs the workload.
			shim := a.opts.ShimCommand
			cmd = exec.Command(shim[0], append(append(shim[1:len(shim):len(shim)], cmd.Path), m.Runtime.Args...)...)
		}
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.Env = workloadEnv(m.Runtime.Env, map[string]string{
			"PORT":          strconv.Itoa(port),
			"HOST":          a.opts.Host,
			"MESH_APP":      i.app,
			"MESH_NODE":     a.opts.NodeID,
			"MESH_INSTANCE": i.id,
		}, a.opts.Secrets)
		if len(join) > 0 {
			cmd.Env = append(cmd.Env, shimEnv+"="+strings.Join(join, "\n"))
		}
		cmd.SysProcAttr = procAttr(group)
		if a.opts.Adopt {
			outliveAgent(cmd.SysProcAttr)
		}
		return cmd
	}
	i.log.Info("launch start", "port", port, "dir", dir, "containment", a.contain)
	cmd := newCmd()
	// A binary extracted a moment ago can still be open for writing in a
	// child forked by another goroutine that has not reached exec yet; the
	// kernel then answers ETXTBSY. That window is short: try again.
	err = cmd.Start()
	for try := 0; errors.Is(err, syscall.ETXTBSY) && try < 50; try++ {
		time.Sleep(time.Duration(try+1) * time.Millisecond)
		cmd = newCmd()
		err = cmd.Start()
	}
	if err != nil {
		return fail(fmt.Errorf("start %s: %w", cmd.Path, err))
	}
	pid := cmd.Process.Pid
	var limits cgroup.Limits
	if group != nil {
		group.Close() // the child is in; the descriptor is no longer needed
		if err := group.Join(pid); err != nil {
			// Limits that were asked for are not in force: do not run.
			_, _ = group.Kill(context.Background())
			_ = syscall.Kill(-pid, syscall.SIGKILL) // not reaped yet: the group id is still its own
			_ = cmd.Wait()
			return fail(fmt.Errorf("apply limits: %w", err))
		}
		limits = group.Limits()
	}
	i.mu.Lock()
	i.pid, i.port, i.url = pid, port, "http://"+net.JoinHostPort(a.opts.Host, strconv.Itoa(port))
	i.group, i.limits = group, limits
	i.mu.Unlock()
	// The record is written before the process can be reaped, so a pid in a
	// record is never one this agent has already released.
	st, err := readProcStat(pid)
	if err == nil {
		rec := record{PID: pid, PGID: pid, StartTime: st.StartTime, Dir: dir, App: i.app, Digest: i.digest, Instance: i.id,
			Port: port, Logs: []string{filepath.Join(dir, "stdout.log"), filepath.Join(dir, "stderr.log")}, Relayed: i.relayed, Host: a.opts.Host}
		if group != nil {
			rec.Cgroups = group.Paths()
		}
		err = a.writeRecord(rec)
	}
	if err != nil {
		// Without a record a crash of the mesh could orphan this workload.
		i.log.Warn("workload not recorded for leftover cleanup", "pid", pid, "error", err)
	}
	go func() {
		// Wait for the exit without reaping: while the leader is an unreaped
		// zombie its pid, and so the group id, cannot be reused, and the rest
		// of the group (children the workload forked) can still be killed
		// safely. Reaping and that kill happen under i.mu, which signal also
		// holds, so no signal ever reaches a reaped and reused pid. With a
		// cgroup, everything in it is killed, setsid escapees included.
		held := waitExited(pid)
		if i.isDetached() {
			// Left running for the next run, which adopted it (or will
			// stop it): its cgroup, port and record are not ours any more.
			_ = cmd.Wait()
			return
		}
		i.mu.Lock()
		if group != nil {
			if _, err := group.Kill(context.Background()); err != nil {
				i.log.Warn("kill workload cgroup", "cgroup", group.Dir(), "error", err)
			}
		} else if held {
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				i.log.Warn("kill workload group", "pgid", pid, "error", err)
			}
		}
		i.exitErr = cmd.Wait()
		i.reaped = true
		i.mu.Unlock()
		if group != nil {
			if err := group.Remove(); err != nil {
				i.log.Warn("remove workload cgroup", "error", err)
			}
		}
		releasePort(port)
		a.removeRecord(i.id)
		close(i.exited)
	}()
	return nil
}

// handedOut holds the ports given to workloads of every agent of this
// process that have not exited yet. A port probed free is only free until a
// workload binds it; without this set two nodes starting at the same moment
// could be handed the same port, and one would pass the other's health check.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

func releasePort(port int) {
	handedOut.Lock()
	delete(handedOut.ports, port)
	handedOut.Unlock()
}

// pickPort reserves want when it is free on the agent's host address, else
// a free port there.
func (i *instance) pickPort(want int) (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if want > 0 {
		var err error
		if handedOut.ports[want] {
			err = errors.New("in use by another instance")
		} else {
			var ln net.Listener
			if ln, err = net.Listen("tcp", net.JoinHostPort(i.a.opts.Host, strconv.Itoa(want))); err == nil {
				_ = ln.Close()
				handedOut.ports[want] = true
				return want, nil
			}
		}
		i.log.Warn("preferred port not available, using a free one", "port", want, "error", err)
	}
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(i.a.opts.Host, "0"))
		if err != nil {
			return 0, fmt.Errorf("pick a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port, nil
		}
	}
	return 0, errors.New("pick a free port: every port offered is in use by another instance")
}

// waitHealthy polls the health checker until the workload is healthy, the
// health timeout passes, the process exits or the start is aborted.
func (i *instance) waitHealthy() error {
	a := i.a
	deadline := time.Now().Add(a.opts.HealthTimeout)
	ctx, cancel := context.WithDeadline(i.ctx, deadline)
	defer cancel()
	delay := healthFirstPoll
	var last string
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-i.exited:
			return fmt.Errorf("process exited before it was healthy: %v", exitText(i.exitErr))
		case <-ctx.Done():
			if i.ctx.Err() != nil {
				return fmt.Errorf("start aborted: %w", i.ctx.Err())
			}
			if last == "" {
				last = "no answer"
			}
			return fmt.Errorf("not healthy within %s: %s", a.opts.HealthTimeout, last)
		case <-timer.C:
		}
		checkTimeout := min(time.Until(deadline), a.opts.CheckTimeout)
		if checkTimeout <= 0 {
			continue
		}
		cctx, ccancel := context.WithTimeout(ctx, checkTimeout)
		path := a.opts.HealthPath
		if i.health != "" {
			path = i.health
		}
		res, err := a.opts.Health.Check(cctx, sdk.HealthCheck{URL: i.url, Path: path, Timeout: checkTimeout})
		ccancel()
		switch {
		case err != nil && ctx.Err() != nil && last != "":
			// The start's own deadline cut this check short: what the
			// previous one said is the better reason.
		case err != nil && errors.Is(err, context.DeadlineExceeded):
			last = fmt.Sprintf("no answer within the check timeout of %s (health.timeout): %v", checkTimeout, err)
		case err != nil:
			last = err.Error()
		case res.Healthy:
			return nil
		default:
			last = res.Reason
			if last == "" {
				last = "unhealthy"
			}
		}
		timer.Reset(delay)
		delay = min(delay*2, healthMaxPoll)
	}
}

// kill sends SIGKILL to every process of the instance: the whole cgroup
// when it has one, else the process group while the leader is unreaped.
func (i *instance) kill() {
	i.mu.Lock()
	g := i.group
	i.mu.Unlock()
	if g != nil {
		// A cgroup holds only this instance's processes; killing it is safe
		// whether or not the leader was reaped.
		if _, err := g.Kill(context.Background()); err != nil && !errors.Is(err, os.ErrNotExist) {
			i.log.Warn("kill workload cgroup", "error", err)
		}
	}
	i.signal(syscall.SIGKILL)
}

// signal sends sig to the workload's process group. It holds i.mu, under
// which the leader is reaped, so the group is signalled whenever its leader is
// not yet reaped, even when the leader has already exited and only processes
// it forked are left.
func (i *instance) signal(sig syscall.Signal) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.pid <= 0 || i.reaped {
		return // never started, or reaped: the pid may belong to someone else now
	}
	if i.adopted != nil {
		i.signalAdopted(sig)
		return
	}
	if err := syscall.Kill(-i.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		i.log.Warn("signal workload", "signal", sig, "pid", i.pid, "error", err)
	}
}

// stop asks the workload to end: SIGTERM to its group, then SIGKILL after
// the grace period. It returns at once; the exit is reported by the
// instance's watcher.
func (i *instance) stop() {
	i.stopOnce.Do(func() {
		go func() {
			i.signal(syscall.SIGTERM)
			t := time.NewTimer(i.a.opts.Grace)
			defer t.Stop()
			select {
			case <-i.exited:
			case <-t.C:
				i.log.Warn("workload did not stop within grace, killing", "grace", i.a.opts.Grace)
				i.kill()
			}
		}()
	})
}

// giveBack releases the fabric claim of the instance, once.
func (i *instance) giveBack() {
	i.mu.Lock()
	l := i.lease
	i.lease = nil
	i.mu.Unlock()
	if l != nil {
		l.Release()
		close(i.released)
	}
}

// stderrQuoteLines is how many of the last stderr lines a failure quotes.
const stderrQuoteLines = 5

// stderrQuote returns the last lines of the instance's stderr joined for a
// one-line message, once everything the workload wrote is copied (bounded:
// a process it left behind could hold the pipe open).
func (i *instance) stderrQuote() string {
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	for _, done := range i.logsDone {
		select {
		case <-done:
		case <-t.C:
		}
	}
	return strings.Join(i.stderrLast(stderrQuoteLines), " | ")
}

// StderrTail returns up to n of the last lines the instance wrote to
// stderr, for the instance of this node with the given ID; false when the
// agent does not know it (any more).
func (a *Agent) StderrTail(instanceID string, n int) ([]string, bool) {
	a.mu.Lock()
	ctls := make([]*appCtl, 0, len(a.apps))
	for _, c := range a.apps {
		ctls = append(ctls, c)
	}
	a.mu.Unlock()
	for _, c := range ctls {
		c.mu.Lock()
		for _, x := range c.all {
			if x.id == instanceID {
				c.mu.Unlock()
				return x.stderrLast(n), true
			}
		}
		c.mu.Unlock()
	}
	return nil, false
}

// exitText describes how a process ended.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// exitedCleanly reports whether a process ended with status 0.
func exitedCleanly(err error) bool { return err == nil }
