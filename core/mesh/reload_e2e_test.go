package mesh_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// setSpore rewrites which spore the billing block of mesh.hcl names.
func (e *env) setSpore(name string) {
	e.t.Helper()
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	src := regexp.MustCompile(`spore   = "[^"]*"`).ReplaceAllString(string(b), fmt.Sprintf("spore   = %q", name))
	if err := os.WriteFile(e.cfgPath, []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// version GETs billing through the edge and returns the version it answers.
func (e *env) version() string {
	e.t.Helper()
	resp, err := http.Get(e.edgeURL + "/billing/hello")
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /billing/hello: %s", resp.Status)
	}
	return resp.Header.Get("X-Hello-Version")
}

func mustContain(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

var planIDRE = regexp.MustCompile(`mesh reload -expect ([0-9a-f]+)`)

// TestReloadKeepsDeployedDigest: a reload after an edit of anything but the
// spore keeps the digest rolled out with `mesh deploy`; `mesh reload -plan`
// shows it first and applies nothing; a changed spore in the file does
// change the digest; a change that needs a restart stays listed.
func TestReloadKeepsDeployedDigest(t *testing.T) {
	e := newEnv(t)
	e.start()
	d2 := e.rollOut(e.v2)

	e.maxInst = 2
	e.writeConfig()
	plan := runCLI(t, "reload", "-plan", "-config", e.cfgPath)
	t.Logf("mesh reload -plan:\n%s", plan)
	mustContain(t, "plan", plan, `~ app "billing" (update)`, "kept deployed digest", "max          3 -> 2", "0 change(s) need a restart")
	if st := e.status(); st.Apps[0].Max != 3 || st.Apps[0].Digest != d2 {
		t.Fatalf("-plan applied something: max %d digest %s", st.Apps[0].Max, st.Apps[0].Digest)
	}
	m := planIDRE.FindStringSubmatch(plan)
	if m == nil {
		t.Fatalf("plan names no ID:\n%s", plan)
	}
	out := runCLI(t, "reload", "-expect", m[1], "-config", e.cfgPath)
	mustContain(t, "reload", out, "Applied reload plan "+m[1], "Configuration reloaded.")
	st := e.status()
	if st.Apps[0].Digest != d2 || st.Apps[0].Max != 2 {
		t.Fatalf("after reload: digest %s max %d, want the deployed %s and max 2", st.Apps[0].Digest, st.Apps[0].Max, d2)
	}
	if v := e.version(); v != "v2" {
		t.Fatalf("after reload billing answers %q, want v2", v)
	}

	// A stale plan is refused.
	cmd := exec.Command(meshBin, "reload", "-expect", "000000000000", "-config", e.cfgPath)
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "plan changed") {
		t.Fatalf("reload of a stale plan: %v\n%s", err, b)
	}

	// An edge listener change needs a restart, and says so on every reload
	// until the mesh restarts.
	serving := e.edgeURL
	e.edgeURL = fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	e.writeConfig()
	for i := range 2 {
		out := runCLI(t, "reload", "-config", e.cfgPath)
		mustContain(t, fmt.Sprintf("reload %d", i+1), out, "! restart needed: edge.listen "+fmt.Sprintf("%q -> %q", strings.TrimPrefix(serving, "http://"), strings.TrimPrefix(e.edgeURL, "http://")))
	}
	e.edgeURL = serving
	e.writeConfig()
	out = runCLI(t, "reload", "-config", e.cfgPath)
	mustContain(t, "reload back to the running edge", out, "0 change(s) need a restart")

	// The file's spore changes: the digest follows the file.
	d1 := e.rollOut(e.v1)
	e.setSpore("billing-v2.spore")
	plan = runCLI(t, "reload", "-plan", "-config", e.cfgPath)
	mustContain(t, "plan", plan, "the file's spore changed", "sha256:"+strings.TrimPrefix(d1, "sha256:")[:12]+" -> sha256:"+strings.TrimPrefix(d2, "sha256:")[:12])
	runCLI(t, "reload", "-config", e.cfgPath)
	waitFor(t, 30*time.Second, "v2 served after the file's spore changed", func() bool {
		return e.status().Apps[0].Digest == d2 && e.version() == "v2"
	})

	// A trusted key added to the file is listed, then applied.
	runCLI(t, "keygen", "-out", filepath.Join(e.dir, "ops"))
	pub, err := os.ReadFile(filepath.Join(e.dir, "ops.pub"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), `trusted_keys = ["dev.pub"]`, `trusted_keys = ["dev.pub", "ops.pub"]`, 1))
	if err := os.WriteFile(e.cfgPath, src, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(pub)), "\n")
	key := lines[len(lines)-1]
	mustContain(t, "plan", runCLI(t, "reload", "-plan", "-config", e.cfgPath), "+ trusted key "+key, "1 trusted key(s) added")
	runCLI(t, "reload", "-config", e.cfgPath)
	mustContain(t, "plan after applying", runCLI(t, "reload", "-plan", "-config", e.cfgPath), "0 trusted key(s) added", `  app "billing" (none)`)
}

// TestStateLostRefused: an empty or missing fabric.db next to an
// applied.json that records apps is refused before anything starts; removing
// applied.json is the documented way to start over from mesh.hcl.
func TestStateLostRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(path string) error
	}{
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
		{"missing", os.Remove},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.start()
			e.rollOut(e.v2)
			e.stop()
			db := filepath.Join(e.dir, "data", "fabric.db")
			if err := tc.lose(db); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(meshBin, "run", "-config", e.cfgPath)
			out, err := cmd.CombinedOutput()
			if err == nil || cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("mesh run on a lost fabric: %v\n%s", err, out)
			}
			mustContain(t, "refusal", string(out), "fabric.db", "applied.json", `"billing"`, "Restore")
			if strings.Contains(string(out), "app applied") || strings.Contains(string(out), "mesh running") {
				t.Fatalf("something started before the refusal:\n%s", out)
			}
			if err := os.Remove(filepath.Join(e.dir, "data", "applied.json")); err != nil {
				t.Fatal(err)
			}
			e.start()
			if v := e.version(); v != "v1" {
				t.Fatalf("started over: billing answers %q, want the file's v1", v)
			}
		})
	}
}

// TestRunRefusesPublicControl: `mesh run` refuses a control listener off
// loopback without a token while validating the file, before anything is
// created or started.
func TestRunRefusesPublicControl(t *testing.T) {
	e := newEnv(t)
	e.controlExtra = fmt.Sprintf("  listen = \"0.0.0.0:%d\"\n", testutil.FreePort(t))
	e.writeConfig()
	cmd := exec.Command(meshBin, "run", "-config", e.cfgPath)
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("mesh run with a public control listener: %v\n%s", err, out)
	}
	mustContain(t, "refusal", string(out), "Control listener without token", "not a loopback address", "mesh.hcl line")
	if _, err := os.Stat(filepath.Join(e.dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("data_dir created before the refusal (%v)", err)
	}
}

// TestCorruptFabricRefused: a damaged fabric.db stops `mesh run` with an
// error that names the file and the way out, not a stack trace.
func TestCorruptFabricRefused(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.stop()
	db := filepath.Join(e.dir, "data", "fabric.db")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	for i := 2 * ps; i < len(b); i++ {
		b[i] = 0xff
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(meshBin, "run", "-config", e.cfgPath)
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("mesh run on a corrupt fabric.db: %v\n%s", err, out)
	}
	mustContain(t, "refusal", string(out), "fabric store is corrupt", db, "Restore the file from a backup", "applied.json")
	if strings.Contains(string(out), "goroutine ") || strings.Contains(string(out), "panic") {
		t.Fatalf("a stack trace instead of an error:\n%s", out)
	}
}
