package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
)

// Restart backoff and the wait before a refused claim is tried again.
const (
	restartFirstBackoff = 100 * time.Millisecond
	restartMaxBackoff   = 10 * time.Second
	// An instance that was ready this long before it exited resets the backoff.
	restartStableAfter = 10 * time.Second
	claimRetry         = time.Second
	// Stopped and failed instances kept for Instances, with their
	// directories and logs, per app.
	keepFinished = 5
)

type eventKind int

const (
	evReady   eventKind = iota // an instance passed its health gate
	evOver                     // an instance is over; its process, if any, is reaped
	evDrained                  // a replaced instance finished its warmup
	evRevoked                  // the fabric revoked an instance's claim: limits lowered
)

type event struct {
	kind eventKind
	inst *instance
	out  *outcome
}

// appCtl converges one app on this node to its latest plan. Only its run
// goroutine touches the fields below mu.
type appCtl struct {
	a      *Agent
	name   string
	log    hclog.Logger
	plans  chan fabric.Plan // latest-wins, one sender
	events chan event
	done   chan struct{}

	mu  sync.Mutex
	all []*instance // live instances and the last finished ones, oldest first

	plan      fabric.Plan
	havePlan  bool
	active    *instance // ready and registered
	pending   *instance // starting for the planned digest
	draining  map[*instance]bool
	live      map[*instance]bool // not over yet
	down      bool               // the planned digest failed and the policy says stay down
	holdUntil time.Time          // no launch before this time (restart backoff, claim retry)
	backoff   time.Duration
	restarts  int
	refused   bool // last claim was refused (logged once per streak)
	// reported is the digest whose start failure on this node is in the
	// fabric, "" for none (failures.go)
	reported string
	timer    *time.Timer
	timerC   <-chan time.Time
}

func newAppCtl(a *Agent, name string) *appCtl {
	return &appCtl{
		a:        a,
		name:     name,
		log:      a.log.With("app", name),
		plans:    make(chan fabric.Plan, 1),
		events:   make(chan event, 16),
		done:     make(chan struct{}),
		draining: map[*instance]bool{},
		live:     map[*instance]bool{},
		backoff:  restartFirstBackoff,
	}
}

// offer hands the app its newest plan, replacing one not yet taken.
func (c *appCtl) offer(p fabric.Plan) {
	for {
		select {
		case c.plans <- p:
			return
		default:
		}
		select {
		case <-c.plans:
		default:
		}
	}
}

// post delivers an event to the run loop; it never blocks once the loop is gone.
func (c *appCtl) post(ev event) {
	select {
	case c.events <- ev:
	case <-c.done:
	}
}

func (c *appCtl) run(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			c.shutdown()
			return
		case p := <-c.plans:
			c.onPlan(p)
		case ev := <-c.events:
			c.onEvent(ev)
		case <-c.timerC:
			c.timerC = nil
		}
		c.reconcile()
	}
}

// shutdown stops every instance of the app and waits for them to be over.
// With Adopt the ready instance is left running for the next run instead.
func (c *appCtl) shutdown() {
	c.havePlan = false
	if c.a.opts.Adopt && c.active != nil {
		inst := c.active
		c.active = nil
		delete(c.live, inst)
		inst.detach()
		inst.log.Info("agent stopping: workload left running for the next run to adopt", "pid", inst.status().PID)
	}
	c.stopAll("mesh stopping")
	for len(c.live) > 0 {
		ev := <-c.events
		c.onEvent(ev)
		c.stopAll("mesh stopping")
	}
}

func (c *appCtl) onPlan(p fabric.Plan) {
	if p.Deleted() {
		c.log.Info("plan received: app withdrawn")
	} else {
		c.log.Info("plan received", "digest", p.Digest, "min", p.Min, "max", p.Max, "restart", p.Restart)
	}
	if !c.havePlan || p.Digest != c.plan.Digest {
		c.holdUntil = time.Time{}
		c.backoff = restartFirstBackoff
		c.restarts = 0
		c.refused = false
	}
	c.plan, c.havePlan, c.down = p, true, false
	if c.reported != "" && c.reported != p.Digest {
		c.clearStartFailure() // about a version no longer planned
	}
	c.removeDirsIfWithdrawn()
}

func (c *appCtl) restartPolicy() string {
	if c.plan.Restart == "" {
		return fabric.RestartNever
	}
	return c.plan.Restart
}

// reconcile moves the app one step toward its plan.
func (c *appCtl) reconcile() {
	if !c.havePlan || c.plan.Deleted() {
		c.stopAll("plan withdrawn")
		return
	}
	want := c.plan.Digest
	if c.pending != nil && c.pending.digest != want {
		c.log.Info("abandoning superseded start", "digest", c.pending.digest, "instance", c.pending.id, "newest", want)
		c.abort(c.pending, "superseded by "+want)
		c.pending = nil
	}
	if c.pending != nil || c.down || (c.active != nil && c.active.digest == want) {
		return
	}
	if wait := time.Until(c.holdUntil); wait > 0 {
		c.arm(wait)
		return
	}
	if c.refused && c.active == nil && c.fabricFull() {
		// Still full as the fabric last showed it: look again later
		// instead of a claim round trip that would be refused (in a
		// cluster each one is an etcd transaction, every second, for
		// every refused node of every app).
		c.log.Debug("budget refusal: the app is still at its instance limit; no claim tried")
		c.holdUntil = time.Now().Add(claimRetry)
		c.arm(claimRetry)
		return
	}
	c.launch(want)
}

// fabricFull reports whether the claims of the app, as this node's fabric
// store last saw them, already fill its plan's max or its budget's
// instance limit. The answer is a cheap local read and may be stale; a
// stale "full" only delays the next claim until the store catches up, a
// stale "not full" costs one refused claim.
func (c *appCtl) fabricFull() bool {
	limit := c.plan.Max
	if b, ok := c.a.opts.Fabric.GetBudget(c.name); ok && b.MaxInstances > 0 && (limit <= 0 || b.MaxInstances < limit) {
		limit = b.MaxInstances
	}
	return limit > 0 && c.a.opts.Fabric.Usage(c.name).Instances >= limit
}

func (c *appCtl) arm(d time.Duration) {
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Stop()
		c.timer.Reset(d)
	}
	c.timerC = c.timer.C
}

func (c *appCtl) launch(digest string) {
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{
		a:        c.a,
		app:      c.name,
		digest:   digest,
		id:       newInstanceID(c.name),
		restarts: c.restarts,
		ctx:      ctx,
		cancel:   cancel,
		state:    StateStarting,
		since:    time.Now(),
		exited:   make(chan struct{}),
		health:   c.plan.HealthPath,
		released: make(chan struct{}),
		tail:     &lineTail{},
	}
	if c.a.opts.Adopt {
		inst.detached, inst.relayed = make(chan struct{}), true
	}
	inst.onRevoke = func() { c.post(event{kind: evRevoked, inst: inst}) }
	inst.log = c.log.With("digest", digest, "instance", inst.id)
	c.pending = inst
	c.live[inst] = true
	c.mu.Lock()
	c.all = append(c.all, inst)
	c.mu.Unlock()
	port := c.plan.Port
	c.supervise(inst, func() *outcome { return inst.start(port) })
}

// supervise runs start (a launch or an adoption) for inst in a goroutine
// of its own, reports its outcome and, once it is ready, its exit; an
// instance detached when the agent stops is no longer reported.
func (c *appCtl) supervise(inst *instance, start func() *outcome) {
	go func() {
		defer inst.cancel()
		if out := start(); out != nil {
			c.post(event{kind: evOver, inst: inst, out: out})
			return
		}
		c.post(event{kind: evReady, inst: inst})
		select {
		case <-inst.exited:
		case <-inst.detached:
			return
		}
		// Withdraw the endpoint at once, without waiting for the run loop; only
		// this instance's own endpoint is removed, never a successor's.
		if ep := inst.registered(); ep.URL != "" && c.a.opts.Fabric.RemoveEndpoint(ep) {
			inst.log.Info("endpoint deregistered", "url", ep.URL)
			inst.emitEndpoint(events.EndpointRemoved, ep.URL)
		}
		err := inst.exitErr
		if err != nil && inst.getState() == StateReady {
			// It died on its own while serving: say why in its own words,
			// as a failed start does.
			if tail := inst.stderrQuote(); tail != "" {
				err = fmt.Errorf("%w; last stderr: %s", err, tail)
			}
		}
		c.post(event{kind: evOver, inst: inst, out: &outcome{inst: inst, err: err}})
	}()
}

// abort cancels a start in progress; its goroutine kills what it launched.
func (c *appCtl) abort(inst *instance, why string) {
	inst.setState(StateDraining, why)
	inst.cancel()
	inst.stop()
}

// retire withdraws the endpoint of a running instance and stops it now.
func (c *appCtl) retire(inst *instance, why string) {
	c.deregister(inst)
	delete(c.draining, inst)
	if inst.getState() != StateDraining {
		inst.log.Info("stopping instance", "reason", why)
	}
	inst.setState(StateDraining, "")
	inst.stop()
}

func (c *appCtl) stopAll(why string) {
	if c.pending != nil {
		c.abort(c.pending, why)
		c.pending = nil
	}
	if c.active != nil {
		c.retire(c.active, why)
		c.active = nil
	}
	for inst := range c.draining {
		c.retire(inst, why)
	}
}

func (i *instance) registered() fabric.Endpoint {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.endpoint
}

func (c *appCtl) deregister(inst *instance) {
	if ep := inst.registered(); ep.URL != "" && c.a.opts.Fabric.RemoveEndpoint(ep) {
		inst.log.Info("endpoint deregistered", "url", ep.URL)
		inst.emitEndpoint(events.EndpointRemoved, ep.URL)
	}
}

func (c *appCtl) onEvent(ev event) {
	switch ev.kind {
	case evReady:
		c.onReady(ev.inst)
	case evDrained:
		if c.draining[ev.inst] {
			delete(c.draining, ev.inst)
			ev.inst.log.Info("warmup over, stopping replaced instance")
			ev.inst.stop()
		}
	case evRevoked:
		c.onRevoked(ev.inst)
	case evOver:
		c.onOver(ev.out)
	}
}

// onRevoked gives up an instance whose claim the fabric revoked because the
// app's instance limit or budget was lowered and this node is in excess. A
// serving instance is withdrawn from the endpoints first and drains for
// Warmup before it is stopped, so requests already routed to it complete.
// The node then goes idle and claims again every claimRetry, so it takes a
// slot again when the limits are raised.
func (c *appCtl) onRevoked(inst *instance) {
	if !c.live[inst] {
		return
	}
	c.holdUntil = time.Now().Add(claimRetry)
	switch {
	case inst == c.pending:
		inst.log.Info("instance limit lowered: abandoning start")
		c.abort(inst, "claim revoked: instance limit lowered")
		c.pending = nil
	case inst == c.active:
		c.active = nil
		c.deregister(inst)
		c.drain(inst, "instance limit lowered: draining and stopping", "")
	}
	// A draining instance is already withdrawn and stops after its warmup.
}

// drain marks a withdrawn instance draining and stops it after Warmup.
func (c *appCtl) drain(inst *instance, msg, successor string) {
	inst.setState(StateDraining, "")
	c.draining[inst] = true
	if successor != "" {
		inst.log.Info(msg, "warmup", c.a.opts.Warmup, "successor", successor)
	} else {
		inst.log.Info(msg, "warmup", c.a.opts.Warmup)
	}
	time.AfterFunc(c.a.opts.Warmup, func() { c.post(event{kind: evDrained, inst: inst}) })
}

func (c *appCtl) onReady(inst *instance) {
	if inst != c.pending {
		// Superseded or withdrawn while its health gate passed.
		inst.stop()
		return
	}
	c.pending = nil
	c.refused = false
	ep := fabric.Endpoint{AppName: c.name, URL: inst.status().URL, NodeID: c.a.opts.NodeID, Digest: inst.digest}
	inst.mu.Lock()
	inst.endpoint = ep
	inst.mu.Unlock()
	inst.setState(StateReady, "")
	c.a.opts.Fabric.RegisterEndpoint(ep)
	inst.log.Info("endpoint register", "url", ep.URL)
	c.clearStartFailure()
	if inst.adopted != nil {
		inst.adopted.settle()
	}
	inst.emitEndpoint(events.EndpointRegistered, ep.URL)
	if old := c.active; old != nil {
		// The new endpoint replaced the old one in the fabric; the old
		// instance keeps serving requests already routed to it while it drains.
		c.drain(old, "draining replaced instance", inst.id)
	}
	c.active = inst
}

func (c *appCtl) onOver(out *outcome) {
	inst := out.inst
	if inst.adopted != nil {
		defer inst.adopted.settle()
	}
	delete(c.live, inst)
	delete(c.draining, inst)
	inst.giveBack()
	c.deregister(inst)

	if out.refused {
		if c.pending == inst {
			c.pending = nil
		}
		c.forget(inst)
		if !c.refused {
			c.log.Info("budget refusal: not running here", "digest", inst.digest, "reason", out.err)
			c.refused = true
		} else {
			c.log.Debug("budget refusal", "digest", inst.digest, "reason", out.err)
		}
		c.holdUntil = time.Now().Add(claimRetry)
		return
	}

	st := inst.status()
	wasPending, wasActive := c.pending == inst, c.active == inst
	switch {
	case wasPending && inst.adopted != nil:
		// An adoption that did not work out is no start of the plan: the
		// restart policy does not apply, a fresh instance is launched.
		c.pending = nil
		inst.setState(StateStopped, errText(out.err))
		inst.log.Warn("adoption given up: launching a fresh instance", "error", out.err)
	case wasPending:
		c.pending = nil
		inst.setState(StateFailed, errText(out.err))
		inst.log.Error("instance failed to start", "error", out.err)
		c.reportStartFailure(inst, out.err)
		c.applyPolicy(false, 0)
	case wasActive:
		c.active = nil
		clean := exitedCleanly(out.err)
		state := StateStopped
		if !clean {
			state = StateFailed
		}
		inst.setState(state, errText(out.err))
		inst.log.Warn("process exit", "pid", st.PID, "status", exitText(out.err))
		inst.emit(events.InstanceExited, exitText(out.err))
		inst.mu.Lock()
		ran := time.Since(inst.readyAt)
		inst.mu.Unlock()
		c.applyPolicy(clean, ran)
	default:
		if st.PID > 0 {
			inst.log.Info("process exit", "pid", st.PID, "status", exitText(out.err))
		}
		if inst.getState() != StateFailed {
			inst.setState(StateStopped, "")
		}
		if st.PID > 0 {
			inst.emit(events.InstanceExited, exitText(out.err))
		}
	}
	c.pruneFinished()
	c.removeDirsIfWithdrawn()
	c.a.kickSporeGC()
}

// removeDirsIfWithdrawn removes the app's directories once its plan is
// withdrawn and nothing of it runs any more. A mesh stopping is not a
// withdrawal: its logs stay for the next run.
func (c *appCtl) removeDirsIfWithdrawn() {
	if c.havePlan && c.plan.Deleted() && len(c.live) == 0 {
		c.removeAppDirs()
	}
}

// removeAppDirs removes the instance directories, logs included, of a
// withdrawn app from this node; its finished instances stay in Instances.
func (c *appCtl) removeAppDirs() {
	for _, d := range c.a.instanceDirs()[c.name] {
		if err := os.RemoveAll(d); err != nil {
			c.log.Warn("remove instance directory of withdrawn app", "dir", d, "error", err)
		}
	}
	c.log.Info("app withdrawn: instance directories removed")
}

// applyPolicy decides what follows the failure or exit of the instance that
// carried the planned digest.
func (c *appCtl) applyPolicy(clean bool, ranFor time.Duration) {
	if !c.havePlan || c.plan.Deleted() {
		return
	}
	policy := c.restartPolicy()
	restart := policy == fabric.RestartAlways || (policy == fabric.RestartOnFailure && !clean)
	if !restart {
		c.down = true
		c.log.Info("not restarting", "restart", policy)
		return
	}
	if ranFor >= restartStableAfter {
		c.backoff = restartFirstBackoff
	}
	c.restarts++
	c.holdUntil = time.Now().Add(c.backoff)
	c.log.Info("restarting", "restart", policy, "in", c.backoff, "restarts", c.restarts)
	if c.a.opts.Events != nil {
		c.a.opts.Events(events.Event{Type: events.InstanceRestarted, App: c.name, Node: c.a.opts.NodeID, Digest: c.plan.Digest,
			Detail: fmt.Sprintf("restart %s: restart %d in %s", policy, c.restarts, c.backoff)})
	}
	c.backoff = min(c.backoff*2, restartMaxBackoff)
}

func errText(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return ""
	}
	return err.Error()
}

// forget removes an instance that never ran from the status list.
func (c *appCtl) forget(inst *instance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, x := range c.all {
		if x == inst {
			c.all = append(c.all[:k], c.all[k+1:]...)
			return
		}
	}
}

// pruneFinished keeps only the newest few finished instances, and removes
// the instance directories (with their logs) of the ones it drops, so that a
// crash loop does not fill the disk. Finished instances are reaped, so
// nothing writes to those directories any more.
func (c *appCtl) pruneFinished() {
	c.mu.Lock()
	finished := 0
	for _, x := range c.all {
		if !c.live[x] {
			finished++
		}
	}
	var dropped []*instance
	kept := c.all[:0]
	for _, x := range c.all {
		if !c.live[x] && finished > keepFinished {
			finished--
			dropped = append(dropped, x)
			continue
		}
		kept = append(kept, x)
	}
	clear(c.all[len(kept):])
	c.all = kept
	c.mu.Unlock()
	for _, x := range dropped {
		if err := os.RemoveAll(x.dir()); err != nil {
			x.log.Warn("remove instance directory", "error", err)
		}
	}
}

func (c *appCtl) statuses() []InstanceStatus {
	c.mu.Lock()
	list := append([]*instance(nil), c.all...)
	c.mu.Unlock()
	out := make([]InstanceStatus, 0, len(list))
	for _, x := range list {
		out = append(out, x.status())
	}
	return out
}
