package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/mycelium-mesh/mesh/core/cgroup"
	"github.com/mycelium-mesh/mesh/core/fabric"
)

// Adoption: with Options.Adopt, a workload outlives the agent that started
// it (no death signal; its logs go through a relay process, logrelay.go),
// and its record under <RunDir>/<node>/instances/ says how to find it
// again: pid, process start time, process group, cgroup, port, digest,
// instance ID and log files, written atomically (a temporary file renamed
// over the record) before the process can exit.
//
// The next Start adopts a recorded workload, instead of stopping it, only
// when every check passes: its record parses; a pidfd opened on the pid
// names a live process whose /proc start time and process group are the
// recorded ones (a pid reused by another process has another start time,
// and from the moment the pidfd is open the check cannot be raced); its
// cgroup, when it had one, still holds it; it listens on the address the
// agent's workloads listen on now (the advertise address in a cluster);
// the plan of its app names the recorded digest; it was started with a
// log relay; and no other record of its app was adopted already. Anything
// else is stopped as a leftover, as without Adopt.
//
// An adopted workload is gated on health again, registered as the node's
// endpoint (replacing the endpoint the previous run registered, so traffic
// never stops) and supervised like any other: its exit is seen when its
// pidfd becomes readable. Its exit status cannot be read (only a parent
// can wait for a process, and its parent is gone), so it is reported as
// errAdoptedExit and counts as a failure for the restart policy.

// errAdoptedExit is how the exit of an adopted workload is reported.
var errAdoptedExit = errors.New("exited (status unknown: adopted)")

// adoptee is a recorded workload that passed the adoption checks.
type adoptee struct {
	rec   record
	pid   *pidHandle
	group *cgroup.Group // nil when contained by process group
	// settle tells Agent.Adopted that this adoption is registered or
	// given up; safe to call more than once.
	settle func()
}

// adoptable checks r for adoption (see above). It returns the adoptee, or
// why r cannot be adopted. taken lists the apps already adopted.
func (a *Agent) adoptable(r record, taken map[string]bool) (*adoptee, string) {
	if !r.Relayed {
		return nil, "its logs were held by the previous agent, not a relay"
	}
	if taken[r.App] {
		return nil, "another instance of the app was adopted already"
	}
	if r.Port <= 0 || r.Port > 65535 {
		return nil, "no port in the record"
	}
	if r.host() != a.opts.Host {
		return nil, fmt.Sprintf("it listens on %s, and this agent's workloads on %s", r.host(), a.opts.Host)
	}
	digest := ""
	for _, p := range a.opts.Fabric.Plans() {
		if p.AppName == r.App && !p.Deleted() {
			digest = p.Digest
		}
	}
	switch digest {
	case "":
		return nil, "the app is not planned any more"
	case r.Digest:
	default:
		return nil, fmt.Sprintf("the plan now wants %s", digest)
	}
	h, err := openPid(r.PID)
	if err != nil {
		return nil, err.Error()
	}
	fail := func(why string) (*adoptee, string) {
		h.close()
		return nil, why
	}
	// Checked after the pidfd is open: the handle is now pinned to the
	// process that has the recorded start time, or the check fails.
	if !sameProcess(r) {
		return fail("pid belongs to another process now (start time or group differ)")
	}
	ad := &adoptee{rec: r, pid: h}
	switch {
	case len(r.Cgroups) == 0 && a.cg != nil:
		return fail("it ran without a cgroup and cgroups are in use now")
	case len(r.Cgroups) > 0 && a.cg == nil:
		return fail("it ran in a cgroup and cgroups are not in use now")
	case len(r.Cgroups) > 0:
		g, err := a.cg.Open(r.Cgroups)
		if err != nil {
			return fail(err.Error())
		}
		if !g.Holds(r.PID) {
			return fail("its cgroup does not hold it any more")
		}
		ad.group = g
	}
	return ad, ""
}

// release gives up an adoptee that will not be adopted after all.
func (ad *adoptee) release() { ad.pid.close() }

// adopt makes ad the app's starting instance; its goroutine gates it on
// health and then supervises it like one the agent launched.
func (c *appCtl) adopt(ad *adoptee) {
	r := ad.rec
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{
		a:        c.a,
		app:      c.name,
		digest:   r.Digest,
		id:       r.Instance,
		restarts: c.restarts,
		ctx:      ctx,
		cancel:   cancel,
		state:    StateStarting,
		since:    time.Now(),
		exited:   make(chan struct{}),
		detached: make(chan struct{}),
		health:   c.plan.HealthPath,
		released: make(chan struct{}),
		tail:     &lineTail{},
		relayed:  true,
		adopted:  ad,
		pid:      r.PID,
		port:     r.Port,
		url:      "http://" + net.JoinHostPort(r.host(), strconv.Itoa(r.Port)),
		group:    ad.group,
	}
	handedOut.Lock()
	handedOut.ports[r.Port] = true
	handedOut.Unlock()
	inst.onRevoke = func() { c.post(event{kind: evRevoked, inst: inst}) }
	inst.log = c.log.With("digest", r.Digest, "instance", inst.id)
	c.pending = inst
	c.live[inst] = true
	c.mu.Lock()
	c.all = append(c.all, inst)
	c.mu.Unlock()
	go inst.watchAdopted()
	c.supervise(inst, inst.resume)
}

// resume claims the adopted instance's slot and gates it on health, as
// start does for a launch; on failure the workload is killed.
func (i *instance) resume() *outcome {
	a := i.a
	// The spore is prepared (verified against the trusted keys of now) so
	// that its shared copy, the running binary's directory, stays held.
	_, m, err := a.prepare(i.ctx, i.digest)
	if err != nil {
		i.log.Error("adopted workload's spore not usable", "error", err)
		return i.abandon(&outcome{inst: i, failed: true, err: err})
	}
	lease, err := a.opts.Fabric.Acquire(i.app, a.opts.NodeID, m.Resources.Nutrients.CPUMilli, m.Resources.Nutrients.MemoryMB)
	if err != nil {
		return i.abandon(&outcome{inst: i, failed: true, err: fmt.Errorf("claim for adopted workload refused: %w", err)})
	}
	i.mu.Lock()
	i.lease = lease
	i.mu.Unlock()
	i.watchRevoke(lease)
	if err := i.waitHealthy(); err != nil {
		i.log.Warn("adopted workload not healthy", "error", err)
		i.giveBack()
		return i.abandon(&outcome{inst: i, failed: i.ctx.Err() == nil, err: err})
	}
	i.mu.Lock()
	i.readyAt = time.Now()
	i.mu.Unlock()
	i.log.Info("adopted workload healthy", "url", i.url, "pid", i.pid)
	return nil
}

// abandon kills an adopted workload that cannot be kept and waits until it
// is gone.
func (i *instance) abandon(out *outcome) *outcome {
	i.kill()
	<-i.exited
	return out
}

// watchAdopted waits for the adopted workload to exit, then kills what it
// left in its cgroup (or, by start time, in its group), frees its port and
// removes its record, as the launch watcher does for a child.
func (i *instance) watchAdopted() {
	ad := i.adopted
	ad.pid.wait()
	select {
	case <-i.detached:
		ad.pid.close()
		return // a later run adopts it again; nothing here is ours any more
	default:
	}
	i.mu.Lock()
	if i.group != nil {
		if _, err := i.group.Kill(context.Background()); err != nil {
			i.log.Warn("kill workload cgroup", "cgroup", i.group.Dir(), "error", err)
		}
	} else {
		killGroupRemains(ad.rec)
	}
	i.exitErr = errAdoptedExit
	i.reaped = true
	i.mu.Unlock()
	ad.pid.close()
	if i.group != nil {
		if err := i.group.Remove(); err != nil {
			i.log.Warn("remove workload cgroup", "error", err)
		}
	}
	releasePort(i.port)
	i.a.removeRecord(i.id)
	close(i.exited)
}

// signalAdopted is signal for an adopted workload: the leader through its
// pidfd (never a process that reused its pid) and, with a cgroup, every
// process in it. The group id is not signalled: nothing guarantees it is
// still this workload's once the leader was reaped by someone else.
func (i *instance) signalAdopted(sig syscall.Signal) {
	if err := i.adopted.pid.signal(sig); err != nil {
		i.log.Warn("signal workload", "signal", sig, "pid", i.pid, "error", err)
	}
	if i.group == nil {
		return
	}
	procs, _ := i.group.Procs()
	for _, p := range procs {
		if p != i.pid {
			_ = syscall.Kill(p, sig)
		}
	}
}

// detach lets go of a ready instance without stopping it, as an agent
// with Adopt does when it stops: the workload keeps serving, its record and
// endpoint stay, and the next run adopts it. Its claim is kept
// (fabric.Lease.Keep): a fabric shared with other hosts holds the slot for
// the next run, which takes it over when it claims the app again, so no
// other host starts an instance in its place meanwhile.
func (i *instance) detach() {
	i.mu.Lock()
	select {
	case <-i.detached:
	default:
		close(i.detached)
	}
	l := i.lease
	i.lease = nil
	i.mu.Unlock()
	if l != nil {
		l.Keep()
		close(i.released)
	}
}

func (i *instance) isDetached() bool {
	select {
	case <-i.detached:
		return true
	default:
		return false
	}
}

// startAdopted starts the controller of an adopted workload's app with the
// workload as its starting instance, before any plan is delivered.
func (a *Agent) startAdopted(ctx context.Context, wg *sync.WaitGroup, ad *adoptee) {
	a.adopting.Add(1)
	ad.settle = sync.OnceFunc(a.adopting.Done)
	var plan fabric.Plan
	found := false
	for _, p := range a.opts.Fabric.Plans() {
		if p.AppName == ad.rec.App && !p.Deleted() {
			plan, found = p, true
		}
	}
	if !found || plan.Digest != ad.rec.Digest {
		// Changed between the check and now: stop it as a leftover.
		ad.release()
		a.stopLeftover(ad.rec)
		a.removeRecord(ad.rec.Instance)
		ad.settle()
		return
	}
	a.mu.Lock()
	c := newAppCtl(a, ad.rec.App)
	a.apps[ad.rec.App] = c
	a.mu.Unlock()
	c.plan, c.havePlan = plan, true
	c.adopt(ad)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.run(ctx)
	}()
}

// Adopted is closed once Start has looked at the workloads a previous run
// left and every one it adopted is registered as an endpoint again or
// given up; a mesh waits for it before its edge takes traffic, so that a
// restart costs no request.
func (a *Agent) Adopted() <-chan struct{} { return a.adoptedC }
