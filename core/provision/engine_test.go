package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// memBackend is an in-memory hosting backend: one "route" resource per
// domain whose version is the site's title. It counts Apply calls, and when
// gate is set, Apply waits on it (to hold a site's worker busy).
type memBackend struct {
	mu      sync.Mutex
	routes  map[string]string // host → site/title
	applies int
	gate    chan struct{}
	entered chan string
	extra   []Action // appended to every plan
}

func newMem() *memBackend { return &memBackend{routes: map[string]string{}} }

func (m *memBackend) Observe(_ context.Context, req Request) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st State
	for h, v := range m.routes {
		if strings.HasPrefix(v, req.Config.Site.ID+"/") {
			st.Resources = append(st.Resources, Observed{Resource{"route", h}, v})
		}
	}
	return st, nil
}

func (m *memBackend) Plan(_ context.Context, req Request, actual State) ([]Action, error) {
	want := map[string]string{}
	for _, h := range req.Config.Domains.All() {
		want[h] = req.Config.Site.ID + "/" + req.Config.Site.Title
	}
	have := map[string]string{}
	for _, o := range actual.Resources {
		have[o.Key] = o.Version
	}
	var out []Action
	for h, v := range want {
		switch cur, ok := have[h]; {
		case !ok:
			out = append(out, Action{Op: OpCreate, Kind: "route", Key: h, Detail: v})
		case cur != v:
			out = append(out, Action{Op: OpUpdate, Kind: "route", Key: h, Detail: v})
		}
	}
	for h := range have {
		if _, ok := want[h]; !ok {
			out = append(out, Action{Op: OpDelete, Kind: "route", Key: h})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return append(out, m.extra...), nil
}

func (m *memBackend) Apply(ctx context.Context, req Request, actions []Action) ([]Action, error) {
	if m.entered != nil {
		m.entered <- req.Config.Site.ID + "/" + req.Config.Site.Title
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applies++
	for _, a := range actions {
		if a.Op == OpDelete {
			delete(m.routes, a.Key)
		} else {
			m.routes[a.Key] = a.Detail
		}
	}
	return actions, nil
}

func site(id, title string, hosts ...string) *Config {
	c := &Config{Site: Site{ID: id, Title: title}, Hosting: Hosting{Provider: ProviderLocalStatic}}
	if len(hosts) > 0 {
		c.Domains = &Domains{Primary: hosts[0], Aliases: hosts[1:]}
	}
	return c
}

func newTestEngine(t *testing.T, be Backend, opts EngineOptions) *Engine {
	t.Helper()
	opts.Backends = BackendMap{ProviderLocalStatic: {Name: "mem", Backend: be}}
	if opts.Owners == nil {
		opts.Owners = &Owners{Dir: filepath.Join(t.TempDir(), "owned")}
	}
	return NewEngine(opts)
}

func TestReconcileIdempotent(t *testing.T) {
	be := newMem()
	e := newTestEngine(t, be, EngineOptions{})
	ctx := context.Background()
	stream := []*Config{site("a", "v1", "a.test", "www.a.test"), site("b", "v1", "b.test")}
	for _, c := range stream {
		if r := e.Reconcile(ctx, c); r.Status != StatusApplied {
			t.Fatalf("first run %s: %+v", c.Site.ID, r)
		}
	}
	owned := filepath.Join(e.opts.Owners.Dir, "a.json")
	before, err := os.Stat(owned)
	if err != nil {
		t.Fatal(err)
	}
	applies := be.applies
	for _, c := range stream {
		if r := e.Reconcile(ctx, c); r.Status != StatusUnchanged || len(r.Actions) != 0 {
			t.Fatalf("second run %s: %+v", c.Site.ID, r)
		}
	}
	if be.applies != applies {
		t.Fatalf("second run applied %d times", be.applies-applies)
	}
	after, _ := os.Stat(owned)
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Fatal("second run rewrote the ownership record")
	}
}

func TestReconcileRemovesOnlyOwned(t *testing.T) {
	be := newMem()
	e := newTestEngine(t, be, EngineOptions{})
	ctx := context.Background()
	if r := e.Reconcile(ctx, site("a", "v1", "a.test", "old.a.test")); r.Status != StatusApplied {
		t.Fatal(r)
	}
	// Dropping an alias the provisioner created removes it.
	r := e.Reconcile(ctx, site("a", "v1", "a.test"))
	if r.Status != StatusApplied || len(r.Actions) != 1 || r.Actions[0].Op != OpDelete {
		t.Fatalf("drop alias: %+v", r)
	}
	owned, _ := e.opts.Owners.Load("a", "mem")
	if len(owned) != 1 || owned[0].Key != "a.test" {
		t.Fatalf("owned after delete: %v", owned)
	}
	// A route that exists but that the provisioner never made is not
	// removed, whatever the backend plans.
	be.routes["manual.a.test"] = "a/by-hand"
	r = e.Reconcile(ctx, site("a", "v1", "a.test"))
	if r.Status != StatusFailed || !strings.Contains(r.Error, "did not create") {
		t.Fatalf("delete of an unowned route: %+v", r)
	}
	if _, ok := be.routes["manual.a.test"]; !ok {
		t.Fatal("unowned route removed")
	}
}

func TestReconcilePlanChangesNothing(t *testing.T) {
	be := newMem()
	e := newTestEngine(t, be, EngineOptions{Plan: true})
	c := site("a", "v1", "a.test")
	c.Purchase = &Purchase{Provider: RegistrarGandi, Domain: "a.test"}
	r := e.Reconcile(context.Background(), c)
	if r.Status != StatusPlanned || len(r.Actions) != 2 {
		t.Fatalf("plan: %+v", r)
	}
	if r.Actions[1].Op != OpExternal || r.Actions[1].Needs == "" {
		t.Fatalf("purchase not shown as external: %+v", r.Actions[1])
	}
	if be.applies != 0 || len(be.routes) != 0 {
		t.Fatal("plan applied")
	}
	if _, err := os.Stat(e.opts.Owners.Dir); !os.IsNotExist(err) {
		t.Fatalf("plan wrote ownership records: %v", err)
	}
}

func TestReconcileRefusals(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"provider without backend", func(c *Config) { c.Hosting.Provider = ProviderS3Static }, "no hosting backend for provider s3Static"},
		{"build without command", func(c *Config) { c.Build = &Build{Type: BuildHugoNix} }, "build.type hugoNix needs a build command"},
		{"github without fetcher", func(c *Config) { c.Repo = &Repo{Provider: RepoGitHub, Slug: "o/r"} }, "repo.provider github needs a source fetcher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(t, newMem(), EngineOptions{})
			c := site("a", "v1", "a.test")
			tt.edit(c)
			r := e.Reconcile(context.Background(), c)
			if r.Status != StatusFailed || !errors.Is(r.Err, ErrConfigMissing) || !strings.Contains(r.Error, tt.want) {
				t.Fatalf("got %+v, want failed with ErrConfigMissing %q", r, tt.want)
			}
		})
	}
}

func TestReconcileBuildCommandPassedOn(t *testing.T) {
	var got *BuildSteps
	be := &recordingBackend{memBackend: newMem(), seen: func(r Request) { got = r.Build }}
	e := newTestEngine(t, be, EngineOptions{BuildCommands: map[BuildType][]string{BuildHugoNix: {"hugo", "--minify"}}})
	c := site("a", "v1", "a.test")
	c.Build = &Build{Type: BuildHugoNix, OutputDir: "public"}
	if r := e.Reconcile(context.Background(), c); r.Status != StatusApplied {
		t.Fatal(r)
	}
	if got == nil || strings.Join(got.Command, " ") != "hugo --minify" {
		t.Fatalf("build steps %+v", got)
	}
}

type recordingBackend struct {
	*memBackend
	seen func(Request)
}

func (r *recordingBackend) Observe(ctx context.Context, req Request) (State, error) {
	r.seen(req)
	return r.memBackend.Observe(ctx, req)
}

// collector gathers results by "site/status" and signals each one.
type collector struct {
	mu  sync.Mutex
	got []Result
	ch  chan Result
}

func newCollector() *collector { return &collector{ch: make(chan Result, 100)} }

func (c *collector) done(r Result) {
	c.mu.Lock()
	c.got = append(c.got, r)
	c.mu.Unlock()
	c.ch <- r
}

func TestEngineSerialisesAndCoalesces(t *testing.T) {
	be := newMem()
	be.gate = make(chan struct{})
	be.entered = make(chan string, 10)
	e := newTestEngine(t, be, EngineOptions{})
	col := newCollector()
	ctx := context.Background()
	submit := func(i int, c *Config) {
		t.Helper()
		if err := e.Submit(ctx, ctx, Job{Index: i, Config: c, Done: col.done}); err != nil {
			t.Fatal(err)
		}
	}
	submit(0, site("a", "v1", "a.test"))
	if got := <-be.entered; got != "a/v1" {
		t.Fatalf("first apply %s", got)
	}
	// a/v1 is being applied; v2 and v3 queue behind it and v3 replaces v2.
	submit(1, site("a", "v2", "a.test"))
	submit(2, site("a", "v3", "a.test"))
	if r := <-col.ch; r.Index != 1 || r.Status != StatusSuperseded {
		t.Fatalf("want message 1 superseded, got %+v", r)
	}
	// Another site is not held up by a's worker.
	submit(3, site("b", "v1", "b.test"))
	if got := <-be.entered; got != "b/v1" {
		t.Fatalf("second apply %s, want b/v1 beside a/v1", got)
	}
	be.gate <- struct{}{}
	be.gate <- struct{}{}
	if got := <-be.entered; got != "a/v3" {
		t.Fatalf("after a/v1: %s, want a/v3", got)
	}
	be.gate <- struct{}{}
	e.Wait()
	statuses := map[int]string{}
	for _, r := range col.got {
		statuses[r.Index] = r.Status
	}
	want := map[int]string{0: StatusApplied, 1: StatusSuperseded, 2: StatusApplied, 3: StatusApplied}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
	if be.routes["a.test"] != "a/v3" {
		t.Fatalf("a.test → %s, want a/v3", be.routes["a.test"])
	}
}

func TestEngineQueueBackpressure(t *testing.T) {
	be := newMem()
	be.gate = make(chan struct{})
	be.entered = make(chan string, 10)
	e := newTestEngine(t, be, EngineOptions{QueueSize: 1})
	col := newCollector()
	ctx := context.Background()
	if err := e.Submit(ctx, ctx, Job{Config: site("a", "v1", "a.test"), Done: col.done}); err != nil {
		t.Fatal(err)
	}
	<-be.entered
	full, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.Submit(full, ctx, Job{Index: 1, Config: site("b", "v1", "b.test"), Done: col.done}); !errors.Is(err, context.Canceled) {
		t.Fatalf("submit into a full queue: %v, want it to wait (and give up with ctx)", err)
	}
	be.gate <- struct{}{}
	e.Wait()
	if len(col.got) != 1 {
		t.Fatalf("results %v", col.got)
	}
}
