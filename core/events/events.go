// Package events is the mesh's in-process event bus: what happened to plans,
// instances, endpoints, rollouts, plugins and the configuration, as typed
// events an operator can follow (`mesh events -f`, the control API's
// GET /v1/events, the web console).
//
// Publishers (the agents, the edge, the rollout watcher, the plugin host)
// call Bus.Publish, which never blocks: every follower has a bounded queue,
// and a follower that does not keep up loses the events that do not fit.
// It is told so by an event of type Lost carrying how many it missed, in
// the place where they would have been, so a slow reader can never stall
// the mesh and never silently misses history. The bus also keeps the
// newest events in a ring, so a new follower starts with recent history.
//
// Components that publish do not import the mesh: they take a Sink (a
// func(Event)) in their options, and a nil Sink publishes nothing.
package events

import (
	"fmt"
	"sync"
	"time"
)

// Type names what happened. The values are stable: scripts match on them.
type Type string

// The event types, grouped by what they are about.
const (
	PlanPublished Type = "plan.published" // a plan naming a digest was published for an app

	InstanceLaunched  Type = "instance.launched"  // a workload process was started (pid, port)
	InstanceHealthy   Type = "instance.healthy"   // it passed its health gate
	InstanceUnhealthy Type = "instance.unhealthy" // it never passed its health gate, or failed to start
	InstanceExited    Type = "instance.exited"    // its process ended (detail: the exit status)
	InstanceRestarted Type = "instance.restarted" // the restart policy scheduled a new instance

	EndpointRegistered Type = "endpoint.registered" // the instance takes traffic
	EndpointRemoved    Type = "endpoint.removed"    // the endpoint was withdrawn
	EndpointEjected    Type = "endpoint.ejected"    // the edge stopped sending it traffic after failures
	EndpointReturned   Type = "endpoint.returned"   // an ejected endpoint takes traffic again

	RolloutStarted    Type = "rollout.started"
	RolloutProgressed Type = "rollout.progressed" // its ready or healthy count changed
	RolloutReverted   Type = "rollout.reverted"   // it failed and the plan names the last good digest again
	RolloutCompleted  Type = "rollout.completed"  // it ended; state says how (succeeded, failed, reverted, superseded)

	PluginRestarted Type = "plugin.restarted"
	ReloadApplied   Type = "reload.applied"

	// Lost tells a follower that Count events did not fit its queue.
	Lost Type = "events.lost"
)

// Types lists every type a publisher emits, in documentation order.
var Types = []Type{
	PlanPublished,
	InstanceLaunched, InstanceHealthy, InstanceUnhealthy, InstanceExited, InstanceRestarted,
	EndpointRegistered, EndpointRemoved, EndpointEjected, EndpointReturned,
	RolloutStarted, RolloutProgressed, RolloutReverted, RolloutCompleted,
	PluginRestarted, ReloadApplied,
}

// Event is one thing that happened. Fields that do not apply are empty.
type Event struct {
	Seq      uint64    // set by the bus: increasing by one per event published; 0 on Lost
	Time     time.Time // set by the bus when zero
	Type     Type
	App      string
	Node     string
	Instance string
	Digest   string
	Rollout  string // the rollout's ID
	State    string // the instance's or rollout's state after the event
	Plugin   string // "kind/name" of a plugin event
	PID      int
	URL      string // the endpoint's URL
	Ready    int    // rollout progress: ready instances of the digest
	Desired  int    // rollout progress: instances the mesh aims for
	Count    int    // Lost: how many events were dropped
	Detail   string // free text: why, the exit status, the error
}

// Sink receives events; publishers hold one in their options. Calling a
// nil Sink is a no-op through Emit.
type Sink func(Event)

// Emit calls s with e when s is not nil.
func (s Sink) Emit(e Event) {
	if s != nil {
		s(e)
	}
}

// Filter selects events; the zero Filter selects every one.
type Filter struct {
	App string // only events of this app
}

// Match reports whether e passes f. Lost events always pass.
func (f Filter) Match(e Event) bool {
	return f.App == "" || e.App == f.App || e.Type == Lost
}

// Defaults for New.
const (
	DefaultHistory = 1024 // events kept for new followers
	DefaultQueue   = 256  // events queued per follower
)

// Bus fans events out to followers. The zero value is not usable; call New.
type Bus struct {
	mu    sync.Mutex
	ring  []Event // the newest len(ring) events, oldest at head once full
	head  int
	full  bool
	seq   uint64
	subs  map[*Subscription]struct{}
	queue int
}

// New returns a bus keeping the newest history events (DefaultHistory when
// history <= 0) and queueing up to queue events per follower
// (DefaultQueue when queue <= 0).
func New(history, queue int) *Bus {
	if history <= 0 {
		history = DefaultHistory
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	return &Bus{ring: make([]Event, history), subs: map[*Subscription]struct{}{}, queue: queue}
}

// Publish records e and offers it to every follower without blocking. It
// is safe for concurrent use and safe on a nil Bus (a no-op).
func (b *Bus) Publish(e Event) {
	if b == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	b.ring[b.head] = e
	b.head = (b.head + 1) % len(b.ring)
	if b.head == 0 {
		b.full = true
	}
	for s := range b.subs {
		s.offer(e)
	}
}

// Sink returns b.Publish as a Sink.
func (b *Bus) Sink() Sink { return b.Publish }

// Recent returns the kept events that pass f, oldest first.
func (b *Bus) Recent(f Filter) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.recentLocked(f)
}

func (b *Bus) recentLocked(f Filter) []Event {
	var out []Event
	add := func(es []Event) {
		for _, e := range es {
			if e.Seq != 0 && f.Match(e) {
				out = append(out, e)
			}
		}
	}
	if b.full {
		add(b.ring[b.head:])
	}
	add(b.ring[:b.head])
	return out
}

// Subscribe starts following the events that pass f. It returns the kept
// history (oldest first) and a subscription whose C delivers every event
// published after it, in order; no event is in both. Close the
// subscription when done.
func (b *Bus) Subscribe(f Filter) ([]Event, *Subscription) {
	s := &Subscription{f: f, ch: make(chan Event, b.queue), b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	hist := b.recentLocked(f)
	b.subs[s] = struct{}{}
	return hist, s
}

// Subscription is one follower of a Bus.
type Subscription struct {
	f    Filter
	ch   chan Event
	b    *Bus
	lost int // events dropped since the last Lost delivered; guarded by b.mu
	once sync.Once
}

// C delivers the events in order. It is closed by Close.
func (s *Subscription) C() <-chan Event { return s.ch }

// Close stops the subscription and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		delete(s.b.subs, s)
		close(s.ch)
		s.b.mu.Unlock()
	})
}

// offer queues e without blocking; the caller holds b.mu. A follower that
// lost events first gets a Lost event saying how many, once it has room for
// it and e.
func (s *Subscription) offer(e Event) {
	if !s.f.Match(e) {
		return
	}
	if s.lost > 0 {
		if cap(s.ch)-len(s.ch) < 2 {
			s.lost++
			return
		}
		s.ch <- Event{Time: e.Time, Type: Lost, Count: s.lost,
			Detail: fmt.Sprintf("%d events lost: this follower read too slowly", s.lost)}
		s.lost = 0
	}
	select {
	case s.ch <- e:
	default:
		s.lost++
	}
}
