package provision

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Statuses of a message in the output contract.
const (
	StatusApplied    = "applied"    // actions were performed
	StatusUnchanged  = "unchanged"  // the site was already as described: nothing written
	StatusPlanned    = "planned"    // -plan: the actions were computed, nothing changed
	StatusInvalid    = "invalid"    // the message was refused before reaching a backend
	StatusFailed     = "failed"     // observing, planning or applying failed
	StatusSuperseded = "superseded" // a newer message for the same site replaced it while queued
)

// Result is the outcome of one message: one JSON line of the output
// contract.
type Result struct {
	Index   int      `json:"index"`
	Source  string   `json:"source,omitempty"`
	Site    string   `json:"site,omitempty"`
	Status  string   `json:"status"`
	Backend string   `json:"backend,omitempty"`
	Actions []Action `json:"actions,omitempty"`
	Error   string   `json:"error,omitempty"`
	// Err is the error behind Error, for exit codes; not serialised.
	Err error `json:"-"`
}

// Job is one decoded message waiting for its site's worker.
type Job struct {
	Index  int
	Source string
	Config *Config
	// Done receives the job's result exactly once.
	Done func(Result)
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	Backends Backends
	Owners   *Owners
	// Plan computes and reports plans without applying them.
	Plan bool
	// QueueSize bounds the jobs accepted and not yet finished, across all
	// sites. Submit blocks when it is reached: backpressure to the reader.
	QueueSize int
	// BuildCommands maps a build type to the command that builds it.
	BuildCommands map[BuildType][]string
	// Fetchers lists the repo providers a backend can fetch sources from.
	Fetchers map[RepoProvider]bool
	Log      hclog.Logger
}

// Engine reconciles sites: work for one site is serialised (one worker per
// site at a time) and coalesced (a newer job for a site whose job is still
// queued replaces it); different sites proceed in parallel.
type Engine struct {
	opts  EngineOptions
	slots chan struct{}

	mu    sync.Mutex
	sites map[string]*siteQueue
	wg    sync.WaitGroup
}

type siteQueue struct {
	pending *Job
	running bool
}

// DefaultQueueSize is the engine's default bound on accepted jobs.
const DefaultQueueSize = 64

// NewEngine returns an engine; its workers run until their site's queue is
// empty.
func NewEngine(opts EngineOptions) *Engine {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	return &Engine{opts: opts, slots: make(chan struct{}, opts.QueueSize), sites: map[string]*siteQueue{}}
}

// Submit queues a job, blocking while the queue is full. ctx bounds only the
// wait for room; the job itself runs under the context given to Run. It
// returns ctx's error when it gave up waiting (the job is then not queued).
func (e *Engine) Submit(ctx, runCtx context.Context, j Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	id := j.Config.Site.ID
	e.mu.Lock()
	q := e.sites[id]
	if q == nil {
		q = &siteQueue{}
		e.sites[id] = q
	}
	old := q.pending
	q.pending = &j
	start := !q.running
	q.running = true
	if start {
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if old != nil {
		<-e.slots
		old.Done(Result{Index: old.Index, Source: old.Source, Site: id, Status: StatusSuperseded,
			Error: fmt.Sprintf("replaced by message %d before it was applied", j.Index)})
	}
	if start {
		go e.work(runCtx, id, q)
	}
	return nil
}

// Wait returns when every submitted job has reported.
func (e *Engine) Wait() { e.wg.Wait() }

func (e *Engine) work(ctx context.Context, id string, q *siteQueue) {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		j := q.pending
		if j == nil {
			q.running = false
			delete(e.sites, id)
			e.mu.Unlock()
			return
		}
		q.pending = nil
		e.mu.Unlock()
		res := e.Reconcile(ctx, j.Config)
		res.Index, res.Source = j.Index, j.Source
		<-e.slots
		j.Done(res)
	}
}

// Reconcile takes one site to its described state: observe, plan, and
// unless planning only, apply and record what was created. It is
// level-triggered: it compares with what exists, never with the previous
// message, so replaying a stream converges instead of repeating work.
func (e *Engine) Reconcile(ctx context.Context, c *Config) Result {
	res := Result{Site: c.Site.ID}
	fail := func(err error) Result {
		res.Status, res.Err, res.Error = StatusFailed, err, err.Error()
		return res
	}
	be, name, err := e.opts.Backends.Backend(c.Hosting.Provider)
	if err != nil {
		return fail(err)
	}
	res.Backend = name
	req := Request{Config: c, Plan: e.opts.Plan}
	if err := e.precheck(c, &req); err != nil {
		return fail(err)
	}
	if req.Owned, err = e.opts.Owners.Load(c.Site.ID, name); err != nil {
		return fail(err)
	}
	actual, err := be.Observe(ctx, req)
	if err != nil {
		return fail(fmt.Errorf("observe %s with %s: %w", c.Site.ID, name, err))
	}
	actions, err := be.Plan(ctx, req, actual)
	if err != nil {
		return fail(fmt.Errorf("plan %s with %s: %w", c.Site.ID, name, err))
	}
	if err := checkOwnedDeletes(actions, req.Owned); err != nil {
		return fail(fmt.Errorf("plan %s with %s: %w", c.Site.ID, name, err))
	}
	external := externalActions(c)
	res.Actions = append(actions, external...)
	switch {
	case e.opts.Plan:
		res.Status = StatusPlanned
		return res
	case len(actions) == 0:
		res.Status = StatusUnchanged
		return res
	}
	done, err := be.Apply(ctx, req, actions)
	if rerr := e.opts.Owners.Record(c.Site.ID, name, done); rerr != nil {
		err = errors.Join(err, rerr)
	}
	res.Actions = append(done, external...)
	if err != nil {
		return fail(fmt.Errorf("apply %s with %s: %w", c.Site.ID, name, err))
	}
	res.Status = StatusApplied
	if len(done) == 0 {
		// The backend found nothing to do after all (a build that
		// reproduced what is served).
		res.Status = StatusUnchanged
	}
	return res
}

// precheck refuses what no backend could do without more configuration:
// build types that need a build command, sources that need a fetcher.
func (e *Engine) precheck(c *Config, req *Request) error {
	if b := c.Build; b != nil && b.Type != BuildStaticPrebuilt {
		cmd := e.opts.BuildCommands[b.Type]
		if len(cmd) == 0 {
			return fmt.Errorf("%w: build.type %s needs a build command (mesh provision -build %s=COMMAND); only staticPrebuilt sites are built without one",
				ErrConfigMissing, b.Type, b.Type)
		}
		req.Build = &BuildSteps{Command: cmd}
	}
	if r := c.Repo; r != nil && r.Provider != RepoNone && !e.opts.Fetchers[r.Provider] {
		return fmt.Errorf("%w: repo.provider %s needs a source fetcher, and none is configured; use repo.provider none with prebuilt files under the sites root",
			ErrConfigMissing, r.Provider)
	}
	return nil
}

// checkOwnedDeletes enforces that a plan only removes what the provisioner
// recorded as its own, whatever the backend proposes.
func checkOwnedDeletes(actions []Action, owned []Resource) error {
	mine := map[Resource]bool{}
	for _, r := range owned {
		mine[r] = true
	}
	for _, a := range actions {
		if a.Op == OpDelete && !mine[Resource{Kind: a.Kind, Key: a.Key}] {
			return fmt.Errorf("backend planned to delete %s %s, which the provisioner did not create", a.Kind, a.Key)
		}
		if a.Op == OpExternal {
			return fmt.Errorf("backend planned an external action %s", a)
		}
	}
	return nil
}

// externalActions are the parts of a message no bundled backend performs.
func externalActions(c *Config) []Action {
	if c.Purchase == nil {
		return nil
	}
	return []Action{{Op: OpExternal, Kind: "domain-purchase", Key: c.Purchase.Domain,
		Detail: "register with " + c.Purchase.Provider.String(), Needs: "a registrar plugin (none is bundled)"}}
}
