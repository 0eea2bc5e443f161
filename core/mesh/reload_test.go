package mesh

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/spore"
)

func TestRestartNotes(t *testing.T) {
	base := `control {
  socket = "c.sock"
}
plugin "balancer" "least-loaded" {
  config {
    %s
  }
}
app "billing" {
  digest = "sha256:%s"
  max    = %d
}
`
	digest := strings.Repeat("a", 64)
	load := func(t *testing.T, dir, src string) (*config.Config, string) {
		t.Helper()
		path := filepath.Join(dir, "mesh.hcl")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, diags := config.Load(path)
		if diags.HasErrors() {
			t.Fatalf("load: %s", diags.Error())
		}
		return cfg, pluginsFingerprint(cfg)
	}
	for _, tc := range []struct {
		name     string
		old, new string
		want     []string // substrings, one note each
	}{
		{"nothing", fmtCfg(base, "", digest, 3), fmtCfg(base, "", digest, 3), nil},
		{"app block only: applied live", fmtCfg(base, "", digest, 3), fmtCfg(base, "", digest, 1), nil},
		{"plugin config", fmtCfg(base, "", digest, 3), fmtCfg(base, `max_weight = 50`, digest, 3), []string{"plugins changed: restart"}},
		{"edge listener", fmtCfg(base, "", digest, 3), fmtCfg(base, "", digest, 3) + "edge {\n  listen = \"127.0.0.1:9999\"\n}\n", []string{`edge.listen "127.0.0.1:8080" -> "127.0.0.1:9999": restart`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldCfg, oldFP := load(t, dir, tc.old)
			newCfg, newFP := load(t, dir, tc.new)
			notes := restartNotes(oldCfg, newCfg, oldFP, newFP)
			if len(notes) != len(tc.want) {
				t.Fatalf("notes %q, want %d matching %q", notes, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(notes[i], w) {
					t.Errorf("note %q lacks %q", notes[i], w)
				}
			}
		})
	}
}

func fmtCfg(base, pluginCfg, digest string, max int) string {
	return fmt.Sprintf(base, pluginCfg, digest, max)
}

func digestOf(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

func appBlock(name string, max int) config.AppConfig {
	return config.AppConfig{Name: name, Spore: "/s/" + name + ".spore", Min: 1, Max: max,
		Restart: "on-failure", StripPrefix: true, HealthPath: "/health", Balancer: "round-robin"}
}

// TestComputePlan pins how a reload decides each app's digest and settings:
// only a changed spore or digest in the file changes the digest.
func TestComputePlan(t *testing.T) {
	v1, v2, v3 := digestOf('1'), digestOf('2'), digestOf('3')
	billing := appBlock("billing", 3)
	planOf := func(a config.AppConfig, d string) fabric.Plan { return planFor(a, d) }
	cfgWith := func(apps ...config.AppConfig) *config.Config {
		return &config.Config{Apps: apps, Edge: config.EdgeConfig{Balancer: "round-robin"}}
	}
	max2 := appBlock("billing", 2)
	noStrip := billing
	noStrip.StripPrefix = false
	budgeted := billing
	budgeted.Budget = &config.BudgetConfig{MaxInstances: 2}
	tests := []struct {
		name        string
		running     *config.Config
		next        *config.Config
		applied     map[string]appliedApp
		plans       map[string]fabric.Plan
		budgets     map[string]fabric.Budget
		file        map[string]string
		wantAction  string
		wantDigest  string
		wantReason  string
		wantChanged bool
		wantFields  []string
	}{
		{
			name: "deployed digest survives a change of max", running: cfgWith(billing), next: cfgWith(max2),
			applied: map[string]appliedApp{"billing": {Digest: v1}}, plans: map[string]fabric.Plan{"billing": planOf(billing, v2)},
			file: map[string]string{"billing": v1}, wantAction: ActionUpdate, wantDigest: v2, wantReason: reasonKept, wantFields: []string{"max"},
		},
		{
			name: "deployed digest survives an unchanged file", running: cfgWith(billing), next: cfgWith(billing),
			applied: map[string]appliedApp{"billing": {Digest: v1}}, plans: map[string]fabric.Plan{"billing": planOf(billing, v2)},
			file: map[string]string{"billing": v1}, wantAction: ActionNone, wantDigest: v2, wantReason: reasonKept,
		},
		{
			name: "the file's spore changed", running: cfgWith(billing), next: cfgWith(billing),
			applied: map[string]appliedApp{"billing": {Digest: v1}}, plans: map[string]fabric.Plan{"billing": planOf(billing, v2)},
			file: map[string]string{"billing": v3}, wantAction: ActionUpdate, wantDigest: v3, wantReason: reasonSporeChanged, wantChanged: true,
		},
		{
			name: "the file's spore changed to what is deployed", running: cfgWith(billing), next: cfgWith(billing),
			applied: map[string]appliedApp{"billing": {Digest: v1}}, plans: map[string]fabric.Plan{"billing": planOf(billing, v2)},
			file: map[string]string{"billing": v2}, wantAction: ActionNone, wantDigest: v2, wantReason: reasonSporeChanged,
		},
		{
			name: "no record keeps what runs", running: cfgWith(billing), next: cfgWith(billing),
			applied: map[string]appliedApp{}, plans: map[string]fabric.Plan{"billing": planOf(billing, v2)},
			file: map[string]string{"billing": v1}, wantAction: ActionNone, wantDigest: v2, wantReason: reasonNoRecord,
		},
		{
			name: "new app at start", running: nil, next: cfgWith(billing),
			applied: map[string]appliedApp{}, plans: map[string]fabric.Plan{},
			file: map[string]string{"billing": v1}, wantAction: ActionAdd, wantDigest: v1, wantReason: reasonNewSpore, wantChanged: true,
			wantFields: []string{"min", "max", "port", "restart", "health_path"},
		},
		{
			name: "strip_prefix is applied live", running: cfgWith(billing), next: cfgWith(noStrip),
			applied: map[string]appliedApp{"billing": {Digest: v1}}, plans: map[string]fabric.Plan{"billing": planOf(billing, v1)},
			file: map[string]string{"billing": v1}, wantAction: ActionUpdate, wantDigest: v1, wantReason: reasonUnchanged, wantFields: []string{"strip_prefix"},
		},
		{
			name: "budget added", running: cfgWith(billing), next: cfgWith(budgeted),
			applied: map[string]appliedApp{"billing": {Digest: v1}}, plans: map[string]fabric.Plan{"billing": planOf(billing, v1)},
			file: map[string]string{"billing": v1}, wantAction: ActionUpdate, wantDigest: v1, wantReason: reasonUnchanged, wantFields: []string{"budget.max_instances"},
		},
		{
			name: "budget block removed lifts the budget", running: cfgWith(budgeted), next: cfgWith(billing),
			applied: map[string]appliedApp{"billing": {Digest: v1}}, plans: map[string]fabric.Plan{"billing": planOf(billing, v1)},
			budgets: map[string]fabric.Budget{"billing": {AppName: "billing", MaxInstances: 2}},
			file:    map[string]string{"billing": v1}, wantAction: ActionUpdate, wantDigest: v1, wantReason: reasonUnchanged, wantFields: []string{"budget.max_instances"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rp := computePlan(planInput{running: tc.running, next: tc.next, applied: appliedState{Apps: tc.applied},
				plans: tc.plans, budgets: tc.budgets, fileDigests: tc.file})
			if len(rp.Apps) != 1 {
				t.Fatalf("apps %+v, want one", rp.Apps)
			}
			ap := rp.Apps[0]
			if ap.Action != tc.wantAction || ap.Digest != tc.wantDigest || ap.DigestReason != tc.wantReason || ap.DigestChanged != tc.wantChanged {
				t.Errorf("got action %q digest %s reason %q changed %v\nwant action %q digest %s reason %q changed %v",
					ap.Action, ap.Digest, ap.DigestReason, ap.DigestChanged, tc.wantAction, tc.wantDigest, tc.wantReason, tc.wantChanged)
			}
			var fields []string
			for _, c := range ap.Changes {
				fields = append(fields, c.Field)
			}
			if fmt.Sprint(fields) != fmt.Sprint(tc.wantFields) {
				t.Errorf("changed fields %v, want %v", fields, tc.wantFields)
			}
		})
	}
}

func TestComputePlanRemovesAndIDs(t *testing.T) {
	v1 := digestOf('1')
	billing, echo := appBlock("billing", 3), appBlock("echo", 1)
	in := planInput{
		running:     &config.Config{Apps: []config.AppConfig{billing, echo}},
		next:        &config.Config{Apps: []config.AppConfig{billing}},
		applied:     appliedState{Apps: map[string]appliedApp{"billing": {Digest: v1}, "echo": {Digest: v1}}},
		plans:       map[string]fabric.Plan{"billing": planFor(billing, v1), "echo": planFor(echo, v1)},
		fileDigests: map[string]string{"billing": v1},
	}
	rp := computePlan(in)
	if len(rp.Apps) != 2 || rp.Apps[1].App != "echo" || rp.Apps[1].Action != ActionRemove || rp.Apps[1].Previous != v1 {
		t.Fatalf("plan %+v, want billing unchanged and echo removed", rp.Apps)
	}
	if again := computePlan(in); again.ID != rp.ID {
		t.Fatalf("same input, IDs %s and %s", rp.ID, again.ID)
	}
	in.next = in.running
	if other := computePlan(in); other.ID == rp.ID {
		t.Fatalf("different plans share ID %s", rp.ID)
	}
}

// TestRestartNotesStayUntilRestart: a change a reload cannot apply is not
// recorded as in force, so the next reload still lists it.
func TestRestartNotesStayUntilRestart(t *testing.T) {
	running := &config.Config{Edge: config.EdgeConfig{Listen: "127.0.0.1:8080", Balancer: "round-robin"},
		Apps: []config.AppConfig{appBlock("billing", 3)}}
	next := *running
	next.Edge.Listen = "127.0.0.1:9999"
	next.Apps = []config.AppConfig{appBlock("billing", 2), appBlock("echo", 1)}
	next.Apps[1].Balancer = "least-loaded"
	first := restartNotes(running, &next, "fp", "fp")
	now := runningConfig(running, &next)
	second := restartNotes(now, &next, "fp", "fp")
	want := []string{`edge.listen "127.0.0.1:8080" -> "127.0.0.1:9999"`, `app "echo": balancer "round-robin" -> "least-loaded"`}
	for _, notes := range [][]string{first, second} {
		if len(notes) != len(want) {
			t.Fatalf("notes %q, want %q", notes, want)
		}
		for i, w := range want {
			if !strings.Contains(notes[i], w) {
				t.Errorf("note %q lacks %q", notes[i], w)
			}
		}
	}
	if now.Edge.Listen != "127.0.0.1:8080" || len(now.Apps) != 2 || now.Apps[0].Max != 2 {
		t.Fatalf("in force after reload: edge %q apps %+v", now.Edge.Listen, now.Apps)
	}
}

func TestKeyChanges(t *testing.T) {
	a, _, _ := ed25519.GenerateKey(nil)
	b, _, _ := ed25519.GenerateKey(nil)
	kc := keyChanges([]ed25519.PublicKey{a}, []ed25519.PublicKey{a, b})
	if len(kc.Added) != 1 || kc.Added[0] != spore.FormatPublicKey(b) || len(kc.Removed) != 0 {
		t.Fatalf("changes %+v", kc)
	}
}

func TestWriteReloadPlan(t *testing.T) {
	v1, v2 := digestOf('1'), digestOf('2')
	rp := ReloadPlan{ID: "abc", Apps: []AppPlan{
		{App: "billing", Action: ActionUpdate, Digest: v2, Previous: v2, FileDigest: v1, DigestReason: reasonKept,
			Changes: []FieldChange{{Field: "max", From: "3", To: "2"}}},
	}, Restart: []string{`edge.listen "127.0.0.1:8080" -> "127.0.0.1:9999": restart the mesh to apply`}}
	var b strings.Builder
	if err := WriteReloadPlan(&b, rp); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`~ app "billing" (update)`,
		"sha256:222222222222 " + reasonKept + " (the file names sha256:111111111111)",
		"max          3 -> 2",
		"! restart needed: edge.listen",
		"mesh reload -expect abc",
	} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, b.String())
		}
	}
}
