package mesh

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/spore"
)

// Applying mesh.hcl is done in two steps, the same at start, on `mesh
// reload` and on SIGHUP: planReload compares the file with what runs and
// returns a ReloadPlan; applyPlan carries out exactly that plan. `mesh reload
// -plan` stops after the first step.

// App actions of a ReloadPlan.
const (
	ActionAdd    = "add"    // a new app block: its plan is published
	ActionUpdate = "update" // its plan or budget changes
	ActionRemove = "remove" // no longer configured: its plan is withdrawn
	ActionNone   = "none"   // nothing changes
)

// ReloadPlan is what applying mesh.hcl changes in a running mesh.
type ReloadPlan struct {
	// SchemaVersion is the JSON's version (see SchemaVersion).
	SchemaVersion int `json:"schema_version"`
	// ID names the plan's content: ReloadOptions.Expect applies a plan only
	// while it is still this one.
	ID          string     `json:"id"`
	Apps        []AppPlan  `json:"apps"`
	TrustedKeys KeyChanges `json:"trusted_keys"`
	// Restart lists changes that a reload does not apply: they need
	// `mesh run` restarted, and stay listed until it is.
	Restart []string `json:"restart"`
	// Applied is true when the plan was carried out, false for a preview.
	Applied bool `json:"applied"`
}

// AppPlan is what a reload does to one app.
type AppPlan struct {
	App    string `json:"app"`
	Action string `json:"action"` // add, update, remove, none or site
	// Site names the site that owns the app (action "site"): the mesh
	// created it for that site, and a reload keeps it as it runs.
	Site string `json:"site,omitempty"`
	// Digest is the digest the app's plan names after the reload ("" when
	// removed); Previous is the one it names now ("" for a new app).
	Digest   string `json:"digest,omitempty"`
	Previous string `json:"previous,omitempty"`
	// FileDigest is the digest the block's spore or digest attribute names.
	FileDigest string `json:"file_digest,omitempty"`
	// DigestChanged is true when the reload changes the running digest;
	// DigestReason says why it does or does not.
	DigestChanged bool          `json:"digest_changed"`
	DigestReason  string        `json:"digest_reason,omitempty"`
	Changes       []FieldChange `json:"changes,omitempty"`
}

// FieldChange is one setting of an app that a reload changes.
type FieldChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// KeyChanges are trusted keys a reload adds and removes.
type KeyChanges struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// Reasons given for an app's digest.
const (
	reasonNewSpore     = "new app: the file's spore"
	reasonNewDigest    = "new app: the file's digest"
	reasonSporeChanged = "the file's spore changed"
	reasonDigestChange = "the file's digest changed"
	reasonKept         = "kept deployed digest: the file's spore/digest is unchanged"
	reasonUnchanged    = "unchanged"
	reasonNoRecord     = "kept running digest: no record of what the file named when last applied"
)

// planInput is everything a plan is computed from.
type planInput struct {
	running               *config.Config // what runs; nil before the mesh started
	next                  *config.Config // the file as it is now
	runningFP, nextFP     string         // plugin fingerprints
	runningKeys, nextKeys []ed25519.PublicKey
	dataDir               string // of the running mesh: where applied.json is
	applied               appliedState
	plans                 map[string]fabric.Plan
	budgets               map[string]fabric.Budget
	fileDigests           map[string]string // app -> digest its spore or digest attribute names
	siteOwners            map[string]string // app -> site, for apps owned by a site (siteapps.go)
}

// computePlan compares the file with what runs. It has no side effects.
func computePlan(in planInput) ReloadPlan {
	rp := ReloadPlan{SchemaVersion: SchemaVersion}
	for _, a := range in.next.Apps {
		rp.Apps = append(rp.Apps, planApp(in, a))
	}
	var removed []string
	var owned []string
	for name := range in.plans {
		if _, ok := in.next.App(name); !ok {
			if _, ok := in.siteOwners[name]; ok {
				owned = append(owned, name)
				continue
			}
			removed = append(removed, name)
		}
	}
	sort.Strings(owned)
	for _, name := range owned {
		d := in.plans[name].Digest
		rp.Apps = append(rp.Apps, AppPlan{App: name, Action: ActionSite, Site: in.siteOwners[name], Digest: d, Previous: d,
			DigestReason: "owned by site " + in.siteOwners[name] + ": kept as it runs"})
	}
	sort.Strings(removed)
	for _, name := range removed {
		rp.Apps = append(rp.Apps, AppPlan{App: name, Action: ActionRemove, Previous: in.plans[name].Digest,
			DigestChanged: true, DigestReason: "no longer in the file"})
	}
	if in.running != nil {
		rp.Restart = restartNotes(in.running, in.next, in.runningFP, in.nextFP)
		rp.TrustedKeys = keyChanges(in.runningKeys, in.nextKeys)
	}
	rp.ID = planID(rp)
	return rp
}

func planApp(in planInput, a config.AppConfig) AppPlan {
	fd := in.fileDigests[a.Name]
	ap := AppPlan{App: a.Name, FileDigest: fd}
	p, have := in.plans[a.Name]
	rec, recorded := in.applied.Apps[a.Name]
	switch {
	case !have:
		ap.Action, ap.Digest, ap.DigestChanged = ActionAdd, fd, true
		ap.DigestReason = reasonNewDigest
		if a.Spore != "" {
			ap.DigestReason = reasonNewSpore
		}
	case !recorded:
		ap.Digest, ap.DigestReason = p.Digest, reasonNoRecord
	case rec.Digest != fd:
		ap.Digest = fd
		ap.DigestReason = reasonDigestChange
		if a.Spore != "" {
			ap.DigestReason = reasonSporeChanged
		}
	case p.Digest != fd:
		ap.Digest, ap.DigestReason = p.Digest, reasonKept
	default:
		ap.Digest, ap.DigestReason = p.Digest, reasonUnchanged
	}
	if have {
		ap.Previous = p.Digest
		ap.DigestChanged = p.Digest != ap.Digest
	}

	var from fabric.Plan
	if have {
		from = p
	}
	// A new app lists every setting, with no value before.
	change := func(field, was, now string) {
		switch {
		case !have:
			ap.Changes = append(ap.Changes, FieldChange{Field: field, To: now})
		case was != now:
			ap.Changes = append(ap.Changes, FieldChange{Field: field, From: was, To: now})
		}
	}
	to := planFor(a, ap.Digest)
	change("min", fmt.Sprint(from.Min), fmt.Sprint(to.Min))
	change("max", fmt.Sprint(from.Max), fmt.Sprint(to.Max))
	change("port", fmt.Sprint(from.Port), fmt.Sprint(to.Port))
	change("restart", from.Restart, to.Restart)
	change("health_path", from.HealthPath, to.HealthPath)
	bFrom, bTo := in.budgets[a.Name], budgetFor(a)
	bFrom.AppName = a.Name
	ap.Changes = append(ap.Changes, budgetChanges(bFrom, bTo)...)
	if in.running != nil {
		old, ok := in.running.App(a.Name)
		if !ok || old.StripPrefix != a.StripPrefix {
			was := ""
			if ok {
				was = fmt.Sprint(old.StripPrefix)
			}
			ap.Changes = append(ap.Changes, FieldChange{Field: "strip_prefix", From: was, To: fmt.Sprint(a.StripPrefix)})
		}
	}
	if ap.Action == "" {
		ap.Action = ActionNone
		if ap.DigestChanged || len(ap.Changes) > 0 {
			ap.Action = ActionUpdate
		}
	}
	return ap
}

func budgetChanges(from, to fabric.Budget) []FieldChange {
	var out []FieldChange
	add := func(field string, was, now int) {
		if was != now {
			out = append(out, FieldChange{Field: "budget." + field, From: limit(was), To: limit(now)})
		}
	}
	add("max_instances", from.MaxInstances, to.MaxInstances)
	add("cpu_milli", from.CPUmilli, to.CPUmilli)
	add("memory_mb", from.MemoryMB, to.MemoryMB)
	return out
}

func limit(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// planFor is the fabric plan of an app block naming digest.
func planFor(a config.AppConfig, digest string) fabric.Plan {
	return fabric.Plan{AppName: a.Name, Digest: digest, Min: a.Min, Max: a.Max, Port: a.Port, Restart: a.Restart, HealthPath: a.HealthPath}
}

// budgetFor is the fabric budget of an app block; no budget block is an
// unlimited budget.
func budgetFor(a config.AppConfig) fabric.Budget {
	b := fabric.Budget{AppName: a.Name}
	if a.Budget != nil {
		b.MaxInstances, b.CPUmilli, b.MemoryMB = a.Budget.MaxInstances, a.Budget.CPUMilli, a.Budget.MemoryMB
	}
	return b
}

func keyChanges(old, next []ed25519.PublicKey) KeyChanges {
	set := func(keys []ed25519.PublicKey) map[string]bool {
		m := map[string]bool{}
		for _, k := range keys {
			m[spore.FormatPublicKey(k)] = true
		}
		return m
	}
	o, n := set(old), set(next)
	var kc KeyChanges
	for k := range n {
		if !o[k] {
			kc.Added = append(kc.Added, k)
		}
	}
	for k := range o {
		if !n[k] {
			kc.Removed = append(kc.Removed, k)
		}
	}
	sort.Strings(kc.Added)
	sort.Strings(kc.Removed)
	return kc
}

// planID hashes what a plan changes (not whether it was applied).
func planID(rp ReloadPlan) string {
	rp.ID, rp.Applied = "", false
	b, err := json.Marshal(rp)
	if err != nil {
		panic("mesh: hashing a reload plan: " + err.Error()) // plain data, cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// fileDigests resolves the digest each app block names. With publish, spores
// are stored in the repo (and its backend) and digests must be there; without
// it, spores are only hashed and nothing is written.
func (m *Mesh) fileDigests(ctx context.Context, cfg *config.Config, publish bool) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range cfg.Apps {
		switch {
		case a.Spore != "" && publish:
			d, err := m.repo.PutFile(ctx, a.Spore)
			if err != nil {
				return nil, fmt.Errorf("app %q: publish %s: %w", a.Name, a.Spore, err)
			}
			out[a.Name] = d
		case a.Spore != "":
			d, err := hashFile(a.Spore)
			if err != nil {
				return nil, fmt.Errorf("app %q: %w", a.Name, err)
			}
			out[a.Name] = d
		default:
			if publish {
				if _, err := m.repo.PathContext(ctx, a.Digest); err != nil {
					return nil, fmt.Errorf("app %q: %w", a.Name, err)
				}
			}
			out[a.Name] = a.Digest
		}
	}
	return out, nil
}

// hashFile returns the repo digest of a file: the sha256 of its bytes.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read spore: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read spore %s: %w", path, err)
	}
	return repo.FormatDigest(hex.EncodeToString(h.Sum(nil))), nil
}

// planReload computes the plan of applying cfg; callers hold applyMu.
// running is nil before the mesh has started.
func (m *Mesh) planReload(ctx context.Context, running, cfg *config.Config, publish bool) (ReloadPlan, planInput, error) {
	// A changed data_dir needs a restart: until then the running one holds
	// the fabric and the applied state.
	dataDir := cfg.DataDir
	if running != nil {
		dataDir = running.DataDir
	}
	applied, err := readApplied(appliedPath(dataDir))
	if err != nil {
		return ReloadPlan{}, planInput{}, err
	}
	digests, err := m.fileDigests(ctx, cfg, publish)
	if err != nil {
		return ReloadPlan{}, planInput{}, err
	}
	owners, err := m.siteOwners()
	if err != nil {
		return ReloadPlan{}, planInput{}, err
	}
	if err := checkSiteOwned(cfg, owners); err != nil {
		return ReloadPlan{}, planInput{}, err
	}
	in := planInput{running: running, next: cfg, dataDir: dataDir, applied: applied, fileDigests: digests,
		plans: map[string]fabric.Plan{}, budgets: map[string]fabric.Budget{}, siteOwners: owners}
	for _, p := range m.fabric.Plans() {
		in.plans[p.AppName] = p
	}
	for _, a := range cfg.Apps {
		if b, ok := m.fabric.GetBudget(a.Name); ok {
			in.budgets[a.Name] = b
		}
	}
	if running != nil {
		m.mu.Lock()
		in.runningFP, in.runningKeys = m.pluginsFP, m.trust
		m.mu.Unlock()
		in.nextFP = pluginsFingerprint(cfg)
		keys, err := spore.LoadTrustedKeys(cfg.TrustedKeys)
		if err != nil {
			return ReloadPlan{}, planInput{}, fmt.Errorf("load trusted keys: %w", err)
		}
		in.nextKeys = keys
	}
	return computePlan(in), in, nil
}

// applyPlan carries out rp, computed from in, on the fabric and records what
// the file named in the applied state. It stops at the first failure; what
// was applied until then is recorded.
func (m *Mesh) applyPlan(rp ReloadPlan, in planInput) (err error) {
	path := appliedPath(in.dataDir)
	st := in.applied
	defer func() {
		if werr := writeApplied(path, st); werr != nil && err == nil {
			err = werr
		}
	}()
	for _, ap := range rp.Apps {
		if ap.Action == ActionSite {
			continue // owned by a site: not the file's to change
		}
		if ap.Action == ActionRemove {
			if err := m.deletePlan(ap.App); err != nil && !errors.Is(err, fabric.ErrNotFound) {
				return fmt.Errorf("app %q: remove plan: %w", ap.App, err)
			}
			delete(st.Apps, ap.App)
			m.log.Info("app removed", "app", ap.App)
			continue
		}
		a, _ := in.next.App(ap.App)
		if b := budgetFor(a); b != withName(in.budgets[a.Name], a.Name) {
			if err := m.fabric.SetBudget(b); err != nil {
				return fmt.Errorf("app %q: set budget: %w", a.Name, err)
			}
		}
		if p := planFor(a, ap.Digest); p != in.plans[a.Name] {
			var old *fabric.Plan
			if cur, ok := in.plans[a.Name]; ok {
				old = &cur
			}
			m.markPublished(a.Name)
			// Swap, not publish: a deploy that landed since the plan was
			// computed is never overwritten with the digest read before it.
			swap := func() error { return m.fabric.SwapPlan(old, p) }
			if err := m.publishApplied(p, old, a.ProgressDeadline, a.MinHealthy, swap); err != nil {
				if errors.Is(err, fabric.ErrConflict) {
					return fmt.Errorf("app %q: its plan changed while the reload was applied (a deploy?); nothing was changed for it, run the reload again: %w", a.Name, err)
				}
				return fmt.Errorf("app %q: publish plan: %w", a.Name, err)
			}
			m.log.Info("app applied", "app", a.Name, "action", ap.Action, "digest", ap.Digest, "why", ap.DigestReason)
		}
		st.Apps[a.Name] = appliedApp{Spore: a.Spore, Digest: ap.FileDigest}
	}
	// Apps recorded but neither configured nor planned are gone already.
	for name := range st.Apps {
		if _, ok := in.next.App(name); !ok {
			delete(st.Apps, name)
		}
	}
	return nil
}

func withName(b fabric.Budget, app string) fabric.Budget {
	b.AppName = app
	return b
}

// applyApps applies the app blocks of cfg when the mesh starts.
func (m *Mesh) applyApps(ctx context.Context, cfg *config.Config) error {
	rp, in, err := m.planReload(ctx, nil, cfg, true)
	if err != nil {
		return err
	}
	return m.applyPlan(rp, in)
}

// ReloadOptions choose what ReloadWith does.
type ReloadOptions struct {
	// PlanOnly computes the plan without applying anything (`mesh reload
	// -plan`); spores named by the file are hashed, not published.
	PlanOnly bool `json:"plan_only,omitempty"`
	// Expect, when set, applies the plan only if its ID is still this one.
	Expect string `json:"expect,omitempty"`
}

// ErrPlanChanged is returned when ReloadOptions.Expect names another plan
// than the one a reload would apply now.
var ErrPlanChanged = errors.New("reload plan changed")

// Reload re-reads mesh.hcl, applies what changed and returns the changes
// that need a restart.
func (m *Mesh) Reload(ctx context.Context) ([]string, error) {
	rp, err := m.ReloadWith(ctx, ReloadOptions{})
	return rp.Restart, err
}

// ReloadWith re-reads mesh.hcl and returns the plan of applying it: app
// blocks (plans, budgets, strip_prefix) and trusted keys are applied live
// unless opts.PlanOnly; everything else is listed in Restart and left as it
// runs. An app's digest changes only when the file's spore or digest for it
// changed since it was last applied.
func (m *Mesh) ReloadWith(ctx context.Context, opts ReloadOptions) (ReloadPlan, error) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	cfg, err := loadConfig(m.opts.ConfigPath)
	if err != nil {
		return ReloadPlan{}, err
	}
	if m.opts.Warmup > 0 {
		cfg.Warmup = m.opts.Warmup
	}
	running := m.Config()
	rp, in, err := m.planReload(ctx, running, cfg, !opts.PlanOnly)
	if err != nil {
		return ReloadPlan{}, err
	}
	if opts.Expect != "" && opts.Expect != rp.ID {
		return rp, fmt.Errorf("%w: expected plan %s, the file and the running mesh now give plan %s (run `mesh reload -plan` again)", ErrPlanChanged, opts.Expect, rp.ID)
	}
	if opts.PlanOnly {
		return rp, nil
	}
	if err := m.applyPlan(rp, in); err != nil {
		return rp, err
	}
	rp.Applied = true
	now := runningConfig(running, cfg)
	m.mu.Lock()
	m.cfg = now
	m.trust = in.nextKeys
	e := m.edge
	m.mu.Unlock()
	if e != nil {
		e.SetApps(edgeApps(now))
	}
	m.log.Info("configuration reloaded", "plan", rp.ID, "apps", len(cfg.Apps), "restart_needed", len(rp.Restart))
	m.emit(events.Event{Type: events.ReloadApplied,
		Detail: fmt.Sprintf("plan %s: %d apps, %d changes need a restart", rp.ID, len(cfg.Apps), len(rp.Restart))})
	return rp, nil
}

// runningConfig is the configuration in force after a reload applied next
// over running: next's app blocks and trusted keys, everything else (and each
// app's balancer) as it runs. A later reload compares the file with this, so
// a change that needs a restart stays listed until the mesh restarts.
func runningConfig(running, next *config.Config) *config.Config {
	now := *running
	now.TrustedKeys = append([]string(nil), next.TrustedKeys...)
	now.Apps = nil
	for _, a := range next.Apps {
		if o, ok := running.App(a.Name); ok {
			a.Balancer = o.Balancer
		} else {
			a.Balancer = running.Edge.Balancer
		}
		now.Apps = append(now.Apps, a)
	}
	return &now
}
