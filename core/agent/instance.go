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
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/fabric"
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

	reaped   bool          // the process is reaped; its pid may be reused
	exited   chan struct{} // closed once the process is reaped
	exitErr  error         // from cmd.Wait, valid after exited
	stopOnce sync.Once
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
	go func() {
		select {
		case <-lease.Revoked():
			if i.onRevoke != nil {
				i.onRevoke()
			}
		case <-i.released:
		}
	}()

	if err := i.launch(dir, m.Runtime.Args, m.Runtime.Env, port); err != nil {
		i.log.Error("launch failed", "error", err)
		i.giveBack()
		return &outcome{inst: i, failed: true, err: err}
	}
	if err := i.waitHealthy(); err != nil {
		aborted := i.ctx.Err() != nil
		if !aborted {
			i.log.Warn("health fail", "error", err, "timeout", a.opts.HealthTimeout)
		}
		i.kill()
		<-i.exited
		i.giveBack()
		if aborted {
			return &outcome{inst: i, err: i.ctx.Err()}
		}
		return &outcome{inst: i, failed: true, err: err}
	}
	i.mu.Lock()
	i.readyAt = time.Now()
	i.mu.Unlock()
	i.log.Info("health ok", "url", i.url, "pid", i.pid)
	return nil
}

// dir is the instance directory: working directory and logs.
func (i *instance) dir() string { return filepath.Join(i.a.nodeDir, i.id) }

// launch starts the workload process in its own group.
func (i *instance) launch(sporeDir string, args []string, env map[string]string, wantPort int) error {
	a := i.a
	dir := i.dir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create instance dir: %w", err)
	}
	stdout, err := os.OpenFile(filepath.Join(dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open stdout log: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(filepath.Join(dir, "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open stderr log: %w", err)
	}
	defer stderr.Close()

	port, err := i.pickPort(wantPort)
	if err != nil {
		return err
	}
	newCmd := func() *exec.Cmd {
		cmd := exec.Command(filepath.Join(sporeDir, "binary"), args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.Env = workloadEnv(env, map[string]string{
			"PORT":          strconv.Itoa(port),
			"MESH_APP":      i.app,
			"MESH_NODE":     a.opts.NodeID,
			"MESH_INSTANCE": i.id,
		})
		cmd.SysProcAttr = sysProcAttr()
		return cmd
	}
	i.log.Info("launch start", "port", port, "dir", dir)
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
		releasePort(port)
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	pid := cmd.Process.Pid
	i.mu.Lock()
	i.pid, i.port, i.url = pid, port, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	i.mu.Unlock()
	// The record is written before the process can be reaped, so a pid in a
	// record is never one this agent has already released.
	st, err := readProcStat(pid)
	if err == nil {
		err = a.writeRecord(record{PID: pid, PGID: pid, StartTime: st.StartTime, Dir: dir, App: i.app, Digest: i.digest, Instance: i.id})
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
		// holds, so no signal ever reaches a reaped and reused pid.
		held := waitExited(pid)
		i.mu.Lock()
		if held {
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				i.log.Warn("kill workload group", "pgid", pid, "error", err)
			}
		}
		i.exitErr = cmd.Wait()
		i.reaped = true
		i.mu.Unlock()
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

// pickPort reserves want when it is free on loopback, else a free port.
func (i *instance) pickPort(want int) (int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if want > 0 {
		var err error
		if handedOut.ports[want] {
			err = errors.New("in use by another instance")
		} else {
			var ln net.Listener
			if ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(want))); err == nil {
				_ = ln.Close()
				handedOut.ports[want] = true
				return want, nil
			}
		}
		i.log.Warn("preferred port not available, using a free one", "port", want, "error", err)
	}
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
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

// workloadEnv builds the environment of a workload: a few neutral variables
// of the mesh, then the manifest's env, then the mesh's own variables.
func workloadEnv(manifest, mesh map[string]string) []string {
	vars := map[string]string{}
	for _, k := range []string{"PATH", "LANG", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			vars[k] = v
		}
	}
	for k, v := range manifest {
		vars[k] = v
	}
	for k, v := range mesh {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
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

// kill sends SIGKILL to the group while the process is still unreaped.
func (i *instance) kill() {
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

// exitText describes how a process ended.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// exitedCleanly reports whether a process ended with status 0.
func exitedCleanly(err error) bool { return err == nil }
