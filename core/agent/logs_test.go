package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

func TestRotatingFile(t *testing.T) {
	tests := []struct {
		name      string
		pol       LogPolicy
		writes    []int // sizes
		wantFiles map[string]int64
	}{
		{"under the cap", LogPolicy{MaxSize: 100, MaxFiles: 3}, []int{40, 40}, map[string]int64{"log": 80}},
		{"rotates at the cap", LogPolicy{MaxSize: 100, MaxFiles: 3}, []int{60, 60}, map[string]int64{"log": 60, "log.1": 60}},
		{"keeps max_files", LogPolicy{MaxSize: 100, MaxFiles: 3}, []int{60, 61, 62, 63, 64}, map[string]int64{"log": 64, "log.1": 63, "log.2": 62}},
		{"one file truncates", LogPolicy{MaxSize: 100, MaxFiles: 1}, []int{60, 61, 62}, map[string]int64{"log": 62}},
		{"oversized write goes whole into a fresh file", LogPolicy{MaxSize: 100, MaxFiles: 2}, []int{10, 250}, map[string]int64{"log": 250, "log.1": 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := openRotating(filepath.Join(dir, "log"), tc.pol)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.writes {
				if _, err := r.Write(bytes.Repeat([]byte("x"), n)); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				info, _ := e.Info()
				got[e.Name()] = info.Size()
			}
			if len(got) != len(tc.wantFiles) {
				t.Fatalf("files %v, want %v", got, tc.wantFiles)
			}
			for name, size := range tc.wantFiles {
				if got[name] != size {
					t.Fatalf("files %v, want %v", got, tc.wantFiles)
				}
			}
		})
	}
}

func TestLineTail(t *testing.T) {
	var tl lineTail
	for i := 0; i < stderrTailLines+5; i++ {
		_, _ = tl.Write([]byte("line " + string(rune('a'+i)) + "\n"))
	}
	_, _ = tl.Write([]byte("FATAL: par"))
	_, _ = tl.Write([]byte("tial"))
	got := tl.last(2)
	if len(got) != 2 || got[0] != "line y" || got[1] != "FATAL: partial" {
		t.Fatalf("last(2) = %q", got)
	}
	if n := len(tl.last(100)); n != stderrTailLines+1 {
		t.Fatalf("kept %d lines", n)
	}
	_, _ = tl.Write([]byte(strings.Repeat("y", 3*tailLineMax) + "\n"))
	if l := tl.last(1)[0]; len(l) != tailLineMax {
		t.Fatalf("long line kept as %d bytes", len(l))
	}
}

// A noisy workload's stdout is capped on disk by the app's policy.
func TestWorkloadLogsRotated(t *testing.T) {
	e := newEnv(t)
	// 3 MiB of output before serving, then a marker.
	d := scriptSpore(t, e.repo, `head -c 3145728 /dev/zero | tr '\0' 'x'; echo; echo END`, nil)
	a := e.startAgent("n1", func(o *Options) {
		o.Logs = func(app string) LogPolicy {
			if app != "billing" {
				t.Errorf("policy asked for %q", app)
			}
			return LogPolicy{MaxSize: 1 << 20, MaxFiles: 2}
		}
	})
	e.publish(fabric.Plan{Digest: d})
	st := a.readyWith(t, "billing", d, 10*time.Second)
	dir := filepath.Join(e.runDir, "n1", st.Instance)
	// The agent may still be copying the last of the pipe: wait for the
	// marker, then check the caps.
	waitFor(t, 10*time.Second, "all output copied", func() bool {
		data, err := os.ReadFile(filepath.Join(dir, "stdout.log"))
		return err == nil && bytes.HasSuffix(data, []byte("\nEND\n"))
	})
	files, _ := filepath.Glob(filepath.Join(dir, "stdout.log*"))
	sort.Strings(files)
	var total int64
	for _, f := range files {
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over the 1 MiB cap", f, info.Size())
		}
		total += info.Size()
	}
	if len(files) != 2 || filepath.Base(files[1]) != "stdout.log.1" {
		t.Fatalf("stdout files %v, want stdout.log and stdout.log.1", files)
	}
	if total <= 1<<20 {
		t.Fatalf("%d bytes kept: the rotated file is missing", total)
	}
}

// A workload that dies before it is healthy leaves its last stderr lines in
// the instance's LastError and StderrTail.
func TestHealthFailureQuotesStderr(t *testing.T) {
	e := newEnv(t)
	d := scriptSpore(t, e.repo, `echo "starting" >&2; echo "FATAL: no config at /etc/billing.conf" >&2; exit 3`, nil)
	a := e.startAgent("n1", nil)
	e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartNever})
	var st InstanceStatus
	waitFor(t, 10*time.Second, "instance failed", func() bool {
		f := a.inState("billing", StateFailed)
		if len(f) > 0 {
			st = f[0]
		}
		return len(f) > 0
	})
	if !strings.Contains(st.LastError, "FATAL: no config at /etc/billing.conf") || !strings.Contains(st.LastError, "exit status 3") {
		t.Fatalf("LastError %q does not quote stderr", st.LastError)
	}
	if n := len(st.StderrTail); n != 2 || st.StderrTail[1] != "FATAL: no config at /etc/billing.conf" {
		t.Fatalf("StderrTail %q", st.StderrTail)
	}
	if tail, ok := a.StderrTail(st.Instance, 1); !ok || len(tail) != 1 || !strings.HasPrefix(tail[0], "FATAL") {
		t.Fatalf("StderrTail(%s) = %q, %v", st.Instance, tail, ok)
	}
}

// Withdrawing an app removes its instance directories and logs from the
// node once its instances are over.
func TestWithdrawnAppDirsRemoved(t *testing.T) {
	e := newEnv(t)
	d := e.spore("v1", nil)
	a := e.startAgent("n1", nil)
	e.publish(fabric.Plan{Digest: d})
	st := a.readyWith(t, "billing", d, 10*time.Second)
	dir := filepath.Join(e.runDir, "n1", st.Instance)
	if _, err := os.Stat(filepath.Join(dir, "stderr.log")); err != nil {
		t.Fatal(err)
	}
	if err := e.fab.DeletePlan("billing"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "instance dir removed", func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err)
	})
}

// The control token never reaches a workload: not as MESH_TOKEN, not in
// any variable that carries its value.
func TestWorkloadEnvScrubsToken(t *testing.T) {
	const secret = "s3cret-token-value"
	t.Setenv("MESH_TOKEN", secret)
	t.Setenv("TZ", "Europe/"+secret) // an inherited variable that carries it
	e := newEnv(t)
	d := scriptSpore(t, e.repo, `env > "$PWD/env.txt"`, map[string]string{
		"MESH_TOKEN": "from-manifest", "DSN": "postgres://u:" + secret + "@db", "KEEP": "me",
	})
	a := e.startAgent("n1", func(o *Options) { o.Secrets = []string{secret} })
	e.publish(fabric.Plan{Digest: d})
	st := a.readyWith(t, "billing", d, 10*time.Second)
	data, err := os.ReadFile(filepath.Join(e.runDir, "n1", st.Instance, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	env := string(data)
	if strings.Contains(env, secret) || strings.Contains(env, "MESH_TOKEN") {
		t.Fatalf("workload environment carries the token:\n%s", env)
	}
	if !strings.Contains(env, "KEEP=me") || !strings.Contains(env, "MESH_APP=billing") {
		t.Fatalf("workload environment lost its variables:\n%s", env)
	}
}

func TestWorkloadEnv(t *testing.T) {
	got := workloadEnv(
		map[string]string{"A": "1", TokenEnv: "x", "B": "has-tok-inside"},
		map[string]string{"PORT": "80"},
		[]string{"tok", ""},
	)
	joined := strings.Join(got, " ")
	for _, bad := range []string{TokenEnv, "B="} {
		if strings.Contains(joined, bad) {
			t.Fatalf("%q kept in %v", bad, got)
		}
	}
	for _, want := range []string{"A=1", "PORT=80"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("%q missing from %v", want, got)
		}
	}
}
