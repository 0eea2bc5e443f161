// Package fabric is the in-process control fabric of a mesh: it holds the
// desired state (plans and budgets), the runtime endpoint table, and the
// instance claims agents take before they launch a workload.
//
// # Plans
//
// A Plan says which spore digest an app should run and how many instances:
//
//   - Max is the most instances of the app across all nodes. A node runs at
//     most one steady instance of an app; during a blue/green rollout the
//     node's successor instance is not counted a second time. 0 = no limit
//     (a Budget's MaxInstances may still limit it).
//   - Min is how many instances are wanted. Every agent that receives a plan
//     runs the app while the claims are below Max (so the mesh fills up to
//     Max, or to every node when Max is 0); an agent refused a claim retries
//     later, so a released slot is taken again by another node. Min is the
//     level below which the app is reported degraded: fewer registered
//     (healthy) endpoints than Min, see Fabric.Degraded.
//   - Port is the preferred listen port of the workload. 0 lets the agent pick
//     a free loopback port. When the preferred port cannot be bound (another
//     node on the same host, the old instance during a rollout, or any other
//     process holds it) the agent logs a warning and falls back to a free
//     port; the registered endpoint always carries the port in use.
//   - Restart is the restart policy applied when a workload exits: "never"
//     (also ""), "on-failure" (non-zero exit or killed by a signal) or
//     "always".
//
// Plans and budgets are persisted (bbolt, DataDir/fabric.db) and reloaded by
// New; endpoints and claims are runtime state and start empty.
//
// # Delivery
//
// PublishPlan never blocks on subscribers. Each subscriber owns a pending set
// keyed by app, pumped by its own goroutine: a subscriber that does not read
// for a while later receives the newest plan of every app that changed, with
// older plans of the same app coalesced away, and no app is ever dropped. A
// deleted plan is delivered as a Plan with only AppName set (Digest "").
//
// # Claims
//
// Claim reserves one instance slot of an app for a node, atomically across
// every agent of the fabric. Usage is counted per node: a node holding
// several claims for an app (a steady instance and its rollout successor)
// counts as one instance, and its CPU and memory are the largest of its
// claims, not their sum. A claim is refused with ErrBudgetExceeded when it
// would raise the instance count above min(Plan.Max, Budget.MaxInstances),
// or raise CPU or memory above the app's Budget (0 = unlimited).
//
// # Lowered limits
//
// When a plan or budget lowers the limits below what the claims already
// hold, the fabric decides which nodes give their instance up, atomically
// and the same way for every agent: the nodes holding claims are taken in
// node-ID order, and a node is admitted while the nodes admitted so far,
// itself included, fit every limit; the first node that does not fit and
// every node after it are in excess. The claims of an excess
// node are revoked: a Lease's Revoked channel is closed, and its holder is
// expected to withdraw its endpoint, stop the instance and release the
// claim. A revoked claim still counts against the limits until it is
// released, since its instance may still run; a node whose claims are
// revoked is refused a new claim while it would still be in excess, and
// takes a slot again by an ordinary claim once the limits allow it.
//
// # Implementations
//
// Store is the contract consumers depend on. *Fabric, this package's
// store, keeps everything in one process; package core/fabric/etcd keeps
// the same state in an etcd cluster for meshes spanning several hosts.
// Package core/fabric/fabrictest is the conformance suite both pass.
package fabric

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// Restart policies a Plan may name.
const (
	RestartNever     = "never"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Errors callers may need to tell apart.
var (
	// ErrBudgetExceeded is returned by Claim when the claim does not fit the
	// app's instance limit or resource budget.
	ErrBudgetExceeded = errors.New("budget exceeded")
	// ErrInvalid is returned for a malformed plan or budget.
	ErrInvalid = errors.New("invalid")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("fabric closed")
	// ErrNotFound is returned when deleting a plan that does not exist.
	ErrNotFound = errors.New("not found")
)

// Plan is the desired state of one app. See the package documentation for
// the meaning of Min, Max, Port and Restart.
type Plan struct {
	AppName string `json:"app"`
	Digest  string `json:"digest"`
	Min     int    `json:"min"`
	Max     int    `json:"max"`
	Port    int    `json:"port"`
	Restart string `json:"restart,omitempty"`
	// HealthPath is the path the app is health-checked on; "" means the
	// agent's default (/health).
	HealthPath string `json:"health_path,omitempty"`
}

// Deleted reports whether p announces that its app was withdrawn.
func (p Plan) Deleted() bool { return p.Digest == "" }

// Budget limits what one app may use across all nodes. Zero fields are
// unlimited.
type Budget struct {
	AppName      string `json:"app"`
	MaxInstances int    `json:"max_instances"`
	CPUmilli     int    `json:"cpu_milli"`
	MemoryMB     int    `json:"memory_mb"`
}

// Endpoint is one routable instance of an app; there is at most one per app
// and node.
type Endpoint struct {
	AppName string
	URL     string
	NodeID  string
	// Digest is the spore the instance behind the endpoint runs, so that a
	// control process on another host can follow a rollout; "" when the
	// registering agent did not say.
	Digest string `json:",omitempty"`
}

// Snapshot is the whole endpoint table at one version. Apps maps an app to
// its endpoints sorted by NodeID; apps without endpoints are absent. A
// snapshot is shared between watchers and must not be modified.
type Snapshot struct {
	Version uint64
	Apps    map[string][]Endpoint
}

// Usage is what the claims of one app currently hold.
type Usage struct {
	Instances int // nodes holding at least one claim
	CPUmilli  int
	MemoryMB  int
}

// Options configure a Fabric.
type Options struct {
	// DataDir holds fabric.db with plans and budgets. "" keeps everything in
	// memory only.
	DataDir string
	Logger  hclog.Logger
}

var (
	bucketPlans   = []byte("plans")
	bucketBudgets = []byte("budgets")
)

// Fabric is the control fabric. All methods are safe for concurrent use.
type Fabric struct {
	log hclog.Logger
	db  *bolt.DB

	mu sync.Mutex
	// wmu serialises writes of desired state: the store is written under
	// wmu alone, so a disk sync never holds mu, which the claim, endpoint
	// and read paths take.
	wmu       sync.Mutex
	closed    bool
	plans     map[string]Plan
	budgets   map[string]Budget
	subs      map[*subscriber]struct{}
	claims    map[string]map[string]map[*claim]struct{} // app -> node -> claims
	endpoints map[string]map[string]Endpoint            // app -> node -> endpoint
	epVersion uint64
	snapshot  Snapshot
	watchers  map[chan Snapshot]struct{}
	failures  map[string]map[string]StartFailure // app -> node; in memory only (failures.go)
}

type claim struct {
	cpu, mem int
	revoked  chan struct{} // closed when the fabric revokes the claim
	gone     bool          // revoked; set and read under Fabric.mu
}

// Lease is a granted claim. Release gives it back; Revoked is closed when
// a lowered limit puts the holder's node in excess.
type Lease struct {
	revoked <-chan struct{}
	release func()
	keep    func()
	once    sync.Once // Release and Keep: whichever comes first, once
}

// Release gives the claim back. It is safe to call more than once and after
// the lease was revoked.
func (l *Lease) Release() { l.once.Do(l.release) }

// Keep lets go of the claim without giving it back, for an agent that
// stops and leaves its instance running for its next run to adopt. A
// store whose claims outlive the process (etcd) keeps the claim for the
// next run of the same node, which takes it over when it claims that app
// again; the embedded store, whose claims live and die with the process,
// gives it back as Release does. After Keep, Release does nothing.
func (l *Lease) Keep() { l.once.Do(l.keep) }

// Revoked is closed when the fabric revokes the claim because the app's
// limits were lowered below what the claims hold and the holder's node is in
// excess. The holder should withdraw its endpoint, stop the instance and
// then call Release. It is never closed for a lease that was released
// before a revocation.
func (l *Lease) Revoked() <-chan struct{} { return l.revoked }

// New opens the fabric, reloading plans and budgets from opts.DataDir.
func New(opts Options) (*Fabric, error) {
	f := &Fabric{
		log:       opts.Logger,
		plans:     map[string]Plan{},
		budgets:   map[string]Budget{},
		subs:      map[*subscriber]struct{}{},
		claims:    map[string]map[string]map[*claim]struct{}{},
		endpoints: map[string]map[string]Endpoint{},
		watchers:  map[chan Snapshot]struct{}{},
		snapshot:  Snapshot{Apps: map[string][]Endpoint{}},
	}
	if f.log == nil {
		f.log = hclog.NewNullLogger()
	}
	if opts.DataDir == "" {
		return f, nil
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create fabric data dir: %w", err)
	}
	path := filepath.Join(opts.DataDir, "fabric.db")
	db, plans, budgets, err := openStore(path)
	if err != nil {
		return nil, err
	}
	f.plans, f.budgets = plans, budgets
	f.db = db
	f.log.Debug("fabric state loaded", "path", path, "plans", len(f.plans), "budgets", len(f.budgets))
	return f, nil
}

// Close stops every subscription and watch and closes the store.
func (f *Fabric) Close() error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	for s := range f.subs {
		s.stop()
	}
	f.subs = nil
	for ch := range f.watchers {
		close(ch)
	}
	f.watchers = nil
	f.mu.Unlock()
	if f.db != nil {
		if err := f.db.Close(); err != nil {
			return fmt.Errorf("close fabric store: %w", err)
		}
	}
	return nil
}

// ValidAppName reports whether name is usable as an app name: 1 to 63
// characters from [A-Za-z0-9._-], not starting with '.' or '-'. App names
// appear in URL paths and directory names.
func ValidAppName(name string) bool {
	if name == "" || len(name) > 63 || name[0] == '.' || name[0] == '-' {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func validDigest(d string) bool {
	const prefix = "sha256:"
	if len(d) != len(prefix)+64 || d[:len(prefix)] != prefix {
		return false
	}
	for _, c := range d[len(prefix):] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Validate checks a plan before it is published.
func (p Plan) Validate() error {
	switch {
	case !ValidAppName(p.AppName):
		return fmt.Errorf("%w plan: app name %q", ErrInvalid, p.AppName)
	case !validDigest(p.Digest):
		return fmt.Errorf("%w plan %s: digest %q is not sha256:<64 hex>", ErrInvalid, p.AppName, p.Digest)
	case p.Min < 0 || p.Max < 0:
		return fmt.Errorf("%w plan %s: min and max must not be negative", ErrInvalid, p.AppName)
	case p.Max > 0 && p.Min > p.Max:
		return fmt.Errorf("%w plan %s: min %d above max %d", ErrInvalid, p.AppName, p.Min, p.Max)
	case p.Port < 0 || p.Port > 65535:
		return fmt.Errorf("%w plan %s: port %d out of range", ErrInvalid, p.AppName, p.Port)
	}
	switch p.Restart {
	case "", RestartNever, RestartOnFailure, RestartAlways:
	default:
		return fmt.Errorf("%w plan %s: restart %q (want never, on-failure or always)", ErrInvalid, p.AppName, p.Restart)
	}
	return nil
}

// Validate checks a budget before it is stored.
func (b Budget) Validate() error {
	if !ValidAppName(b.AppName) {
		return fmt.Errorf("%w budget: app name %q", ErrInvalid, b.AppName)
	}
	if b.MaxInstances < 0 || b.CPUmilli < 0 || b.MemoryMB < 0 {
		return fmt.Errorf("%w budget %s: limits must not be negative", ErrInvalid, b.AppName)
	}
	return nil
}

func (f *Fabric) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// put writes one record of desired state; callers hold wmu.
func (f *Fabric) put(bucket []byte, key string, v any) error {
	if f.db == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return f.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), data)
	})
}

func (f *Fabric) del(bucket []byte, key string) error {
	if f.db == nil {
		return nil
	}
	return f.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(key))
	})
}

// PublishPlan stores p and hands it to every subscriber. It never waits for
// a subscriber to read. Publishing the plan in force again writes nothing.
func (f *Fabric) PublishPlan(p Plan) error {
	if err := p.Validate(); err != nil {
		return err
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.isClosed() {
		return ErrClosed
	}
	// A plan equal to the stored one is on disk already: it is handed to
	// the subscribers again without a synced write.
	if cur, ok := f.Plan(p.AppName); !ok || cur != p {
		if err := f.put(bucketPlans, p.AppName, p); err != nil {
			return fmt.Errorf("persist plan %s: %w", p.AppName, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans[p.AppName] = p
	f.revokeExcessLocked(p.AppName)
	for s := range f.subs {
		s.offer(p)
	}
	f.log.Debug("plan published", "app", p.AppName, "digest", p.Digest, "min", p.Min, "max", p.Max)
	return nil
}

// DeletePlan withdraws an app: subscribers receive Plan{AppName: app} and
// agents stop the app.
func (f *Fabric) DeletePlan(app string) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.isClosed() {
		return ErrClosed
	}
	if _, ok := f.Plan(app); !ok {
		return fmt.Errorf("delete plan %s: %w", app, ErrNotFound)
	}
	if err := f.del(bucketPlans, app); err != nil {
		return fmt.Errorf("delete plan %s: %w", app, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.plans, app)
	for s := range f.subs {
		s.offer(Plan{AppName: app})
	}
	f.log.Debug("plan deleted", "app", app)
	return nil
}

// Plans returns the current plans sorted by app.
func (f *Fabric) Plans() []Plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sortedPlansLocked()
}

func (f *Fabric) sortedPlansLocked() []Plan {
	out := make([]Plan, 0, len(f.plans))
	for _, p := range f.plans {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AppName < out[j].AppName })
	return out
}

// Plan returns the current plan of app.
func (f *Fabric) Plan(app string) (Plan, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.plans[app]
	return p, ok
}

// SubscribePlans returns a channel that yields every current plan, then each
// change, coalesced per app. It is closed by Close.
func (f *Fabric) SubscribePlans() <-chan Plan {
	return f.Subscribe(context.Background())
}

// Subscribe is SubscribePlans bounded by ctx: the channel is closed when ctx
// ends or the fabric is closed.
func (f *Fabric) Subscribe(ctx context.Context) <-chan Plan {
	s := newSubscriber()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		close(s.out)
		return s.out
	}
	for _, p := range f.sortedPlansLocked() {
		s.offer(p)
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	go s.pump()
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				f.mu.Lock()
				if f.subs != nil {
					delete(f.subs, s)
				}
				f.mu.Unlock()
				s.stop()
			case <-s.done:
			}
		}()
	}
	return s.out
}

// SetBudget stores b, replacing the app's previous budget. Claims already
// held are kept while they fit; when the new limits are below what the
// claims hold, the claims of the nodes in excess are revoked (see Lease).
func (f *Fabric) SetBudget(b Budget) error {
	if err := b.Validate(); err != nil {
		return err
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.isClosed() {
		return ErrClosed
	}
	if err := f.put(bucketBudgets, b.AppName, b); err != nil {
		return fmt.Errorf("persist budget %s: %w", b.AppName, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.budgets[b.AppName] = b
	f.revokeExcessLocked(b.AppName)
	return nil
}

// GetBudget returns the budget of app.
func (f *Fabric) GetBudget(app string) (Budget, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.budgets[app]
	return b, ok
}

// appClaimsLocked gathers the claims of app for the admission rules.
func (f *Fabric) appClaimsLocked(app string) AppClaims {
	out := AppClaims{}
	for node, cs := range f.claims[app] {
		for c := range cs {
			out[node] = append(out[node], ClaimSize{CPU: c.cpu, Mem: c.mem, Revoked: c.gone})
		}
	}
	return out
}

// limitsLocked are the limits of app from its plan and budget.
func (f *Fabric) limitsLocked(app string) Limits {
	p, ok := f.plans[app]
	return LimitsOf(p, ok, f.budgets[app])
}

// Usage returns what the claims of app hold now.
func (f *Fabric) Usage(app string) Usage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appClaimsLocked(app).Usage("", nil)
}

// revokeExcessLocked revokes every claim of the nodes of app in excess of
// its current limits.
func (f *Fabric) revokeExcessLocked(app string) {
	for node := range f.appClaimsLocked(app).Excess(f.limitsLocked(app), "", nil) {
		n := 0
		for c := range f.claims[app][node] {
			if !c.gone {
				c.gone = true
				close(c.revoked)
				n++
			}
		}
		if n > 0 {
			f.log.Info("claims revoked: limits lowered", "app", app, "node", node, "claims", n)
		}
	}
}

// Claim reserves an instance of app on nodeID with the given CPU (milli) and
// memory (MB). It returns a release func that is safe to call more than once,
// or an error wrapping ErrBudgetExceeded. It is Acquire for callers that do
// not follow revocations.
func (f *Fabric) Claim(app, nodeID string, cpuMilli, memoryMB int) (release func(), err error) {
	l, err := f.Acquire(app, nodeID, cpuMilli, memoryMB)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// Acquire reserves an instance of app on nodeID with the given CPU (milli)
// and memory (MB), or returns an error wrapping ErrBudgetExceeded. A claim is
// refused only on a dimension it would raise (see the package documentation
// for how usage is counted), or when its node would be in excess of lowered
// limits. The lease is revoked if the limits are later lowered below what
// the claims hold and the node is in excess.
func (f *Fabric) Acquire(app, nodeID string, cpuMilli, memoryMB int) (*Lease, error) {
	if cpuMilli < 0 || memoryMB < 0 {
		return nil, fmt.Errorf("%w claim %s on %s: negative resources", ErrInvalid, app, nodeID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	size := ClaimSize{CPU: cpuMilli, Mem: memoryMB}
	if err := f.appClaimsLocked(app).Admit(app, nodeID, f.limitsLocked(app), size); err != nil {
		return nil, err
	}
	c := &claim{cpu: cpuMilli, mem: memoryMB, revoked: make(chan struct{})}
	nodes := f.claims[app]
	if nodes == nil {
		nodes = map[string]map[*claim]struct{}{}
		f.claims[app] = nodes
	}
	cs := nodes[nodeID]
	if cs == nil {
		cs = map[*claim]struct{}{}
		nodes[nodeID] = cs
	}
	cs[c] = struct{}{}
	return NewLease(c.revoked, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(cs, c)
		if len(cs) == 0 && f.claims[app] != nil && f.claims[app][nodeID] != nil && len(f.claims[app][nodeID]) == 0 {
			delete(f.claims[app], nodeID)
			if len(f.claims[app]) == 0 {
				delete(f.claims, app)
			}
		}
	}), nil
}

// RegisterEndpoint sets the endpoint of (e.AppName, e.NodeID), replacing the
// node's previous one.
func (f *Fabric) RegisterEndpoint(e Endpoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	nodes := f.endpoints[e.AppName]
	if nodes == nil {
		nodes = map[string]Endpoint{}
		f.endpoints[e.AppName] = nodes
	}
	if old, ok := nodes[e.NodeID]; ok && old == e {
		return
	}
	nodes[e.NodeID] = e
	f.endpointsChangedLocked(e.AppName)
}

// DeregisterEndpoint removes the endpoint of app on nodeID, if any.
func (f *Fabric) DeregisterEndpoint(app, nodeID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.endpoints[app][nodeID]; !ok || f.closed {
		return
	}
	delete(f.endpoints[app], nodeID)
	f.endpointsChangedLocked(app)
}

// RemoveEndpoint removes e only if it is still the registered endpoint of its
// app and node, and reports whether it did. An instance uses it so that its
// exit never removes the endpoint of its successor.
func (f *Fabric) RemoveEndpoint(e Endpoint) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur, ok := f.endpoints[e.AppName][e.NodeID]; !ok || cur != e || f.closed {
		return false
	}
	delete(f.endpoints[e.AppName], e.NodeID)
	f.endpointsChangedLocked(e.AppName)
	return true
}

// Degraded reports whether app is planned and has fewer registered
// endpoints than its plan's Min.
func (f *Fabric) Degraded(app string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.plans[app]
	return ok && len(f.snapshot.Apps[app]) < p.Min
}

// Endpoints returns the endpoints of app sorted by NodeID.
func (f *Fabric) Endpoints(app string) []Endpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	eps := f.snapshot.Apps[app]
	return append([]Endpoint(nil), eps...)
}

func (f *Fabric) endpointsChangedLocked(app string) {
	f.epVersion++
	apps := make(map[string][]Endpoint, len(f.snapshot.Apps)+1)
	for a, eps := range f.snapshot.Apps {
		apps[a] = eps
	}
	nodes := f.endpoints[app]
	if len(nodes) == 0 {
		delete(apps, app)
		delete(f.endpoints, app)
	} else {
		eps := make([]Endpoint, 0, len(nodes))
		for _, e := range nodes {
			eps = append(eps, e)
		}
		sort.Slice(eps, func(i, j int) bool { return eps[i].NodeID < eps[j].NodeID })
		apps[app] = eps
	}
	f.snapshot = Snapshot{Version: f.epVersion, Apps: apps}
	for ch := range f.watchers {
		offerSnapshot(ch, f.snapshot)
	}
}

// offerSnapshot replaces whatever the watcher has not read yet. Only the
// fabric sends on ch, under its lock, so the send after the drain cannot
// block.
func offerSnapshot(ch chan Snapshot, s Snapshot) {
	select {
	case <-ch:
	default:
	}
	ch <- s
}

// WatchEndpoints yields the current endpoint table, then the newest table
// after each change. A slow watcher skips intermediate versions and never
// delays RegisterEndpoint. The channel is closed when ctx ends or the fabric
// is closed.
func (f *Fabric) WatchEndpoints(ctx context.Context) <-chan Snapshot {
	ch := make(chan Snapshot, 1)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		close(ch)
		return ch
	}
	ch <- f.snapshot
	f.watchers[ch] = struct{}{}
	f.mu.Unlock()
	if ctx.Done() != nil {
		go func() {
			<-ctx.Done()
			f.mu.Lock()
			defer f.mu.Unlock()
			if _, ok := f.watchers[ch]; ok {
				delete(f.watchers, ch)
				close(ch)
			}
		}()
	}
	return ch
}
