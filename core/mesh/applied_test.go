package mesh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/fabric"
)

func TestReadApplied(t *testing.T) {
	d := digestOf('a')
	tests := []struct {
		name    string
		content string // "" = no file
		want    map[string]appliedApp
		wantErr string
	}{
		{name: "missing file", want: map[string]appliedApp{}},
		{name: "first format", content: `{"billing": "0123abcd|` + d + `"}`, want: map[string]appliedApp{"billing": {Digest: d}}},
		{name: "current format", content: `{"version": 2, "apps": {"billing": {"spore": "/s/b.spore", "digest": "` + d + `"}}}`,
			want: map[string]appliedApp{"billing": {Spore: "/s/b.spore", Digest: d}}},
		{name: "newer version", content: `{"version": 9, "apps": {}}`, wantErr: "a newer mesh wrote it"},
		{name: "garbage", content: `{"billing": `, wantErr: "remove the file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "applied.json")
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			st, err := readApplied(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one naming %s and saying %q", err, path, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Apps) != len(tc.want) {
				t.Fatalf("apps %+v, want %+v", st.Apps, tc.want)
			}
			for k, v := range tc.want {
				if st.Apps[k] != v {
					t.Errorf("app %s: %+v, want %+v", k, st.Apps[k], v)
				}
			}
			// What is read is written back in the current format.
			if err := writeApplied(path, st); err != nil {
				t.Fatal(err)
			}
			again, err := readApplied(path)
			if err != nil || len(again.Apps) != len(st.Apps) {
				t.Fatalf("round trip: %+v %v", again, err)
			}
		})
	}
}

// TestCheckState: an applied.json that records apps next to a fabric that
// holds no plan for them is refused, naming both files and the way out.
func TestCheckState(t *testing.T) {
	d := digestOf('a')
	billing := appBlock("billing", 3)
	tests := []struct {
		name    string
		applied string
		plans   []fabric.Plan
		apps    []config.AppConfig
		lost    bool
	}{
		{name: "fresh mesh", apps: []config.AppConfig{billing}},
		{name: "consistent", applied: `{"version":2,"apps":{"billing":{"digest":"` + d + `"}}}`, plans: []fabric.Plan{planFor(billing, d)}, apps: []config.AppConfig{billing}},
		{name: "store emptied", applied: `{"version":2,"apps":{"billing":{"digest":"` + d + `"}}}`, apps: []config.AppConfig{billing}, lost: true},
		{name: "removed app already withdrawn", applied: `{"version":2,"apps":{"billing":{"digest":"` + d + `"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f, err := fabric.New(fabric.Options{DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, p := range tc.plans {
				if err := f.PublishPlan(p); err != nil {
					t.Fatal(err)
				}
			}
			if tc.applied != "" {
				if err := os.WriteFile(appliedPath(dir), []byte(tc.applied), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err = checkState(&config.Config{DataDir: dir, Apps: tc.apps}, f)
			if !tc.lost {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrStateLost) {
				t.Fatalf("error %v, want ErrStateLost", err)
			}
			for _, w := range []string{appliedPath(dir), filepath.Join(dir, "fabric.db"), `"billing"`, "Restore", "remove"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}

// TestApplyPlanNeverOverwritesADeploy: a deploy that lands between computing
// a reload plan and applying it is kept; the reload reports the conflict.
func TestApplyPlanNeverOverwritesADeploy(t *testing.T) {
	dir := t.TempDir()
	f, err := fabric.New(fabric.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v1, v2, v3 := digestOf('1'), digestOf('2'), digestOf('3')
	billing := appBlock("billing", 3)
	if err := f.PublishPlan(planFor(billing, v2)); err != nil {
		t.Fatal(err)
	}
	max2 := appBlock("billing", 2)
	in := planInput{next: &config.Config{DataDir: dir, Apps: []config.AppConfig{max2}}, dataDir: dir,
		applied:     appliedState{Apps: map[string]appliedApp{"billing": {Digest: v1}}},
		plans:       map[string]fabric.Plan{"billing": planFor(billing, v2)},
		fileDigests: map[string]string{"billing": v1}}
	rp := computePlan(in)
	if rp.Apps[0].Digest != v2 {
		t.Fatalf("plan keeps %s, want the deployed %s", rp.Apps[0].Digest, v2)
	}
	// A deploy lands now.
	if err := f.PublishPlan(planFor(billing, v3)); err != nil {
		t.Fatal(err)
	}
	m := &Mesh{fabric: f, log: hclog.NewNullLogger(), published: map[string]time.Time{}}
	if err := m.applyPlan(rp, in); !errors.Is(err, fabric.ErrConflict) {
		t.Fatalf("applyPlan: %v, want ErrConflict", err)
	}
	if p, _ := f.Plan("billing"); p.Digest != v3 || p.Max != 3 {
		t.Fatalf("plan after the conflict: digest %s max %d, want the deploy's %s and max 3", p.Digest, p.Max, v3)
	}
}
