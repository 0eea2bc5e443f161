package mesh_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/core/rollout"
	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// These tests show that a rollout is the mesh's own business: a deploy
// client killed mid-way, a mesh killed mid-rollout and a version that never
// turns healthy all end on the last good digest with no operator action.

// brokenSpore packs a billing spore whose /health answers 500.
func (e *env) brokenSpore() string {
	e.t.Helper()
	man := `{"identity":{"kind":"Spore","name":"billing","version":"9.0.0"},
"runtime":{"command":"./binary","args":[],"env":{"HELLO_VERSION":"broken","HELLO_HEALTH":"fail"}},
"resources":{"nutrients":{"cpu_milli":100,"memory_mb":64}},"slo":{"p99_budget_ms":50},
"security":{"lsm_profile":"","read_only_fs":false}}`
	mf := filepath.Join(e.dir, "broken.json")
	if err := os.WriteFile(mf, []byte(man), 0o644); err != nil {
		e.t.Fatal(err)
	}
	out := filepath.Join(e.dir, "broken.spore")
	runCLI(e.t, "pack", "-binary", helloBn, "-manifest", mf, "-key", filepath.Join(e.dir, "dev.key"), "-out", out)
	return out
}

// rewriteConfig replaces old by new in the written mesh.hcl.
func (e *env) rewriteConfig(old, new string) {
	e.t.Helper()
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		e.t.Fatalf("mesh.hcl lacks %q", old)
	}
	if err := os.WriteFile(e.cfgPath, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// waitRollout waits until rollout id is terminal and returns it. The mesh
// may be restarting meanwhile: errors reaching it are retried.
func (e *env) waitRollout(id string, d time.Duration) rollout.Rollout {
	e.t.Helper()
	var last rollout.Rollout
	waitFor(e.t, d, "rollout "+id+" to end", func() bool {
		select {
		case <-e.exited:
			e.t.Fatalf("mesh exited:\n%s", e.logs.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := e.client().GetRollout(ctx, id)
		if err != nil {
			return false
		}
		last = r
		return r.State.Terminal()
	})
	return last
}

// serves asserts that n requests in a row are answered 200 by version v.
func (e *env) serves(v string, n int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		resp, err := http.Get(e.edgeURL + "/billing/hello")
		if err != nil {
			e.t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Hello-Version"); resp.StatusCode != 200 || got != v {
			e.t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, got, v)
		}
	}
}

// waitServes waits until the edge answers 200 with version v.
func (e *env) waitServes(v string, d time.Duration) {
	e.t.Helper()
	waitFor(e.t, d, "edge serving "+v, func() bool {
		resp, err := http.Get(e.edgeURL + "/billing/hello")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200 && resp.Header.Get("X-Hello-Version") == v
	})
}

// A `mesh deploy` of a broken version SIGKILLed while it follows the
// rollout: the mesh alone reverts to the last good digest and serves it.
func TestRolloutSurvivesKilledDeployClient(t *testing.T) {
	e := newEnv(t)
	e.appExtra = "  health_path = \"/health\"\n"
	e.admin = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	e.writeConfig()
	e.rewriteConfig("agents {\n  count = 3\n", "agents {\n  count = 3\n  health_timeout = \"3s\"\n")
	e.start()
	d1 := e.status().Apps[0].Digest
	broken := e.brokenSpore()

	cmd := exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", broken)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	// The client prints the rollout's ID once the mesh started it.
	var id string
	sc := bufio.NewScanner(stdout)
	for id == "" && sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "rollout" {
			id = strings.TrimSuffix(f[1], ":")
		}
	}
	if id == "" {
		t.Fatalf("deploy printed no rollout id: %v", sc.Err())
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	_ = cmd.Wait()
	killed = true

	r := e.waitRollout(id, 60*time.Second)
	if r.State != rollout.Reverted || r.LastGood != d1 {
		t.Fatalf("rollout after the client died: %s (last good %s, want reverted to %s): %s", r.State, r.LastGood, d1, r.Detail)
	}
	if !strings.Contains(r.Detail, "failed") || r.Version != "9.0.0" || !strings.Contains(r.Who, "uid") {
		t.Fatalf("rollout record: %+v", r)
	}
	if got := e.status().Apps[0].Digest; got != d1 {
		t.Fatalf("plan names %s, want %s", got, d1)
	}
	e.waitServes("v1", 30*time.Second)
	e.serves("v1", 50)

	// The history shows it, with its outcome.
	hist := runCLI(t, "history", "-config", e.cfgPath, "billing")
	var row string
	for _, line := range strings.Split(hist, "\n") {
		if strings.HasPrefix(line, id+" ") {
			row = line
		}
	}
	if !strings.Contains(row, "reverted") || !strings.Contains(row, "9.0.0") {
		t.Fatalf("history has no reverted row for %s:\n%s", id, hist)
	}

	// /metrics counts the outcome.
	resp, err := http.Get("http://" + e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var reverted float64
	for _, m := range fams["mesh_rollouts_ended_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["app"] == "billing" && labels["state"] == "reverted" {
			reverted += m.GetCounter().GetValue()
		}
	}
	if reverted != 1 {
		t.Fatalf("mesh_rollouts_ended_total{app=billing,state=reverted} = %v, want 1", reverted)
	}
}

// SIGKILL of the mesh while a broken version rolls out: restarted, it
// resumes the rollout from its store, reverts it to the last good digest
// and serves that, with no request failing once it settled.
func TestRolloutResumedAfterMeshKill(t *testing.T) {
	e := newEnv(t)
	// The broken version stays "starting" (health_timeout is long): only the
	// progress deadline can end this rollout.
	e.appExtra = "  health_path = \"/health\"\n  progress_deadline = \"4s\"\n"
	e.writeConfig()
	e.rewriteConfig("agents {\n  count = 3\n", "agents {\n  count = 3\n  health_timeout = \"120s\"\n")
	e.start()
	d1 := e.status().Apps[0].Digest
	broken := e.brokenSpore()
	out := runCLI(t, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", broken, "-detach")
	var id string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "rollout" {
			id = strings.TrimSuffix(f[1], ":")
		}
	}
	if id == "" {
		t.Fatalf("deploy -detach printed no rollout id:\n%s", out)
	}
	// Mid-rollout: the broken version is starting somewhere.
	waitFor(t, 15*time.Second, "broken instances starting", func() bool {
		return len(pids(e.status(), "starting")) > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	r, err := e.client().GetRollout(ctx, id)
	cancel()
	if err != nil || r.State != rollout.Progressing {
		t.Fatalf("before the kill: %+v %v", r, err)
	}
	if st := runCLI(t, "status", "-config", e.cfgPath); !strings.Contains(st, id) || !strings.Contains(st, "progressing") {
		t.Fatalf("mesh status does not show the rollout in progress:\n%s", st)
	}
	work := pids(e.status(), "ready", "starting", "draining")
	if err := e.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-e.exited
	if alive := testutil.WaitGone(work, 15*time.Second); len(alive) > 0 {
		for _, p := range alive {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		t.Fatalf("workloads survived SIGKILL of mesh: %v", alive)
	}
	e.cmd = nil

	e.launch()
	r = e.waitRollout(id, 60*time.Second)
	if r.State != rollout.Reverted || r.LastGood != d1 || !strings.Contains(r.Detail, "progress deadline") {
		t.Fatalf("rollout after the mesh restarted: %s, last good %s, want reverted to %s: %s", r.State, r.LastGood, d1, r.Detail)
	}
	if got := e.status().Apps[0].Digest; got != d1 {
		t.Fatalf("plan names %s after the restart, want %s", got, d1)
	}
	e.waitReady(30 * time.Second)
	e.serves("v1", 100)
}

// History lists every rollout with its outcome; rollback goes to the
// previous good digest, to a version and to a digest.
func TestHistoryAndRollback(t *testing.T) {
	e := newEnv(t)
	e.start()
	d1 := e.status().Apps[0].Digest
	out := runCLI(t, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", e.v2)
	if !strings.Contains(out, "is ready on") {
		t.Fatalf("deploy:\n%s", out)
	}
	d2 := e.status().Apps[0].Digest

	var h []rollout.Rollout
	js := runCLI(t, "history", "billing", "-json", "-config", e.cfgPath)
	var body mesh.HistoryResponse
	if err := json.Unmarshal([]byte(js), &body); err != nil || body.SchemaVersion != mesh.SchemaVersion {
		t.Fatalf("history -json: %v\n%s", err, js)
	}
	h = body.Rollouts
	// status -json speaks the same schema: snake_case keys and a version.
	var st map[string]any
	sj := runCLI(t, "status", "-json", "-config", e.cfgPath)
	if err := json.Unmarshal([]byte(sj), &st); err != nil || st["schema_version"] != float64(mesh.SchemaVersion) ||
		!strings.Contains(sj, `"node_id":`) || !strings.Contains(sj, `"requests":`) || strings.Contains(sj, `"NodeID"`) {
		t.Fatalf("status -json: %v\n%s", err, sj)
	}
	if len(h) != 2 || h[0].Digest != d2 || h[0].State != rollout.Succeeded || h[0].Version != "v2.0.0" || h[0].Trigger != rollout.ByDeploy ||
		h[1].Digest != d1 || h[1].State != rollout.Succeeded || h[1].Who != "config" || h[1].Ended.IsZero() {
		t.Fatalf("history:\n%s", js)
	}
	table := runCLI(t, "history", "-config", e.cfgPath, "billing")
	if !strings.Contains(table, h[0].ID) || !strings.Contains(table, "succeeded") || !strings.Contains(table, "v1.0.0") {
		t.Fatalf("history table:\n%s", table)
	}

	for _, tt := range []struct {
		to, want, version string
	}{
		{"", d1, "v1"},       // the previous good digest
		{"v2.0.0", d2, "v2"}, // a version from the history
		{d1, d1, "v1"},       // a digest
		{strings.TrimPrefix(d2, "sha256:"), d2, "v2"}, // a bare hex digest
	} {
		args := []string{"rollback", "-config", e.cfgPath}
		if tt.to != "" {
			args = append(args, "-to", tt.to)
		}
		out := runCLI(t, append(args, "billing")...)
		if !strings.Contains(out, "is ready on "+tt.want) {
			t.Fatalf("rollback -to %q:\n%s", tt.to, out)
		}
		e.serves(tt.version, 5)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	last, err := e.client().LatestRollout(ctx, "billing")
	if err != nil || last.Trigger != rollout.ByRollback || last.Previous != d1 {
		t.Fatalf("latest rollout: %+v %v", last, err)
	}

	cmd := exec.Command(meshBin, "rollback", "-config", e.cfgPath, "-to", "7.7.7", "billing")
	b, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(b), "not in the history") {
		t.Fatalf("rollback to an unknown version: exit %d\n%s", cmd.ProcessState.ExitCode(), b)
	}
}

// The first rollout of an app that never turns healthy stays failed and
// says there is nothing to revert to.
func TestInitialRolloutFails(t *testing.T) {
	e := newEnv(t)
	e.appExtra = "  health_path = \"/health\"\n"
	e.writeConfig()
	broken := e.brokenSpore()
	e.rewriteConfig(`spore   = "billing-v1.spore"`, `spore   = "`+filepath.Base(broken)+`"`)
	e.rewriteConfig("agents {\n  count = 3\n", "agents {\n  count = 3\n  health_timeout = \"2s\"\n")
	e.launch()
	var r rollout.Rollout
	waitFor(t, 60*time.Second, "the initial rollout to end", func() bool {
		if _, err := os.Stat(filepath.Join(e.dir, "control.sock")); err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var err error
		r, err = e.client().LatestRollout(ctx, "billing")
		return err == nil && r.State.Terminal()
	})
	if r.State != rollout.Failed || r.Trigger != rollout.ByConfig || !strings.Contains(r.Detail, "no earlier good digest") {
		t.Fatalf("initial rollout: %+v", r)
	}
}

// Ctrl-C on a following `mesh deploy` stops the following only: it exits 1
// saying so, and the mesh still judges the rollout (here: reverts it when
// its deadline passes).
func TestDeployInterruptedLeavesRolloutToMesh(t *testing.T) {
	e := newEnv(t)
	e.appExtra = "  health_path = \"/health\"\n  progress_deadline = \"3s\"\n"
	e.writeConfig()
	e.rewriteConfig("agents {\n  count = 3\n", "agents {\n  count = 3\n  health_timeout = \"120s\"\n")
	e.start()
	d1 := e.status().Apps[0].Digest
	broken := e.brokenSpore()

	cmd := exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", broken)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	var id string
	sc := bufio.NewScanner(stdout)
	for id == "" && sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "rollout" {
			id = strings.TrimSuffix(f[1], ":")
		}
	}
	var rest strings.Builder
	go func() {
		_, _ = io.Copy(&rest, stdout)
		_ = cmd.Wait()
		close(done)
	}()
	if id == "" {
		t.Fatalf("deploy printed no rollout id: %v", sc.Err())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-done
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "stopped following rollout "+id) {
		t.Fatalf("interrupted deploy: exit %d\n%s%s", code, rest.String(), stderr.String())
	}
	r := e.waitRollout(id, 60*time.Second)
	if r.State != rollout.Reverted || r.LastGood != d1 {
		t.Fatalf("rollout after the client stopped following: %s: %s", r.State, r.Detail)
	}
	e.waitServes("v1", 30*time.Second)
}

// -auto-revert=false reaches the mesh: the failed rollout stays failed with
// its digest in the plan, and blue/green keeps the old version serving.
func TestDeployWithoutAutoRevert(t *testing.T) {
	e := newEnv(t)
	e.appExtra = "  health_path = \"/health\"\n"
	e.writeConfig()
	e.rewriteConfig("agents {\n  count = 3\n", "agents {\n  count = 3\n  health_timeout = \"2s\"\n")
	e.start()
	broken := e.brokenSpore()
	cmd := exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", broken, "-auto-revert=false")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "auto-revert is off") {
		t.Fatalf("deploy -auto-revert=false of a broken spore: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := e.client().LatestRollout(ctx, "billing")
	if err != nil || r.State != rollout.Failed || r.AutoRevert {
		t.Fatalf("latest rollout: %+v %v", r, err)
	}
	if got := e.status().Apps[0].Digest; got != r.Digest {
		t.Fatalf("plan names %s, want the failed %s left in place", got, r.Digest)
	}
	e.serves("v1", 20)
}

// helloSpore packs the sample workload as billing version into
// dir/name.spore, with env (a JSON object's members) in its manifest.
func (e *env) helloSpore(name, version, env string) string {
	e.t.Helper()
	man := `{"identity":{"kind":"Spore","name":"billing","version":"` + version + `"},
"runtime":{"command":"./binary","args":[],"env":{` + env + `}},
"resources":{"nutrients":{"cpu_milli":100,"memory_mb":64}},"slo":{"p99_budget_ms":50},
"security":{"lsm_profile":"","read_only_fs":false}}`
	mf := filepath.Join(e.dir, name+".json")
	if err := os.WriteFile(mf, []byte(man), 0o644); err != nil {
		e.t.Fatal(err)
	}
	out := filepath.Join(e.dir, name+".spore")
	runCLI(e.t, "pack", "-binary", helloBn, "-manifest", mf, "-key", filepath.Join(e.dir, "dev.key"), "-out", out)
	return out
}

// crashySpore packs a billing spore that turns healthy, then writes a FATAL
// line to stderr and exits 3 after the given time.
func (e *env) crashySpore(after string) string {
	return e.helloSpore("crashy", "7.0.0-crashy", `"HELLO_VERSION":"crashy","HELLO_EXIT_AFTER":"`+after+`"`)
}

// deployDetached runs `mesh deploy -detach` of spore and returns the ID of
// the rollout it started.
func (e *env) deployDetached(spore string) string {
	e.t.Helper()
	out, err := exec.Command(meshBin, "deploy", "-config", e.cfgPath, "-app", "billing", "-spore", spore, "-detach").CombinedOutput()
	if err != nil {
		e.t.Fatalf("deploy -detach: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "rollout" {
			return strings.TrimSuffix(f[1], ":")
		}
	}
	e.t.Fatalf("deploy printed no rollout id:\n%s", out)
	return ""
}

// A version that passes its health gate and then crashes (and crashes again
// after each restart) does not succeed: its instances must stay ready for
// min_healthy first, and a crash in that time reverts it to the last good
// digest, the rollout quoting the workload's own last words.
func TestRolloutRevertsVersionThatCrashesAfterHealthy(t *testing.T) {
	e := newEnv(t)
	e.minHealthy = "4s"
	e.writeConfig()
	e.start()
	d1 := e.status().Apps[0].Digest
	// The config's own rollout of v1 proves itself first.
	h, _, err := e.client().History(context.Background(), "billing", 1)
	if err != nil || len(h) != 1 {
		t.Fatalf("history: %v %v", h, err)
	}
	if r := e.waitRollout(h[0].ID, 30*time.Second); r.State != rollout.Succeeded {
		t.Fatalf("v1 rollout: %s (%s)", r.State, r.Detail)
	}

	id := e.deployDetached(e.crashySpore("1500ms"))
	r := e.waitRollout(id, 60*time.Second)
	if r.State != rollout.Reverted || r.LastGood != d1 {
		t.Fatalf("crashing version: %s (last good %s, want reverted to %s): %s", r.State, r.LastGood, d1, r.Detail)
	}
	if !strings.Contains(r.Detail, "exit status 3") || !strings.Contains(r.Detail, "FATAL: hello crashy") {
		t.Fatalf("the rollout does not say how the version failed: %s", r.Detail)
	}
	if got := e.status().Apps[0].Digest; got != d1 {
		t.Fatalf("plan names %s, want %s", got, d1)
	}
	e.waitServes("v1", 30*time.Second)
	e.serves("v1", 20)
}
