package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

// TestHelpAndUsageErrors runs the real binary: help asked for goes to stdout
// with exit 0, usage errors go to stderr with exit 2, for mesh itself and
// every command in the registry.
func TestHelpAndUsageErrors(t *testing.T) {
	bin := buildConfigMesh(t)
	dir := t.TempDir()
	type want struct {
		code         int
		stdoutPrefix string // "" means stdout must be empty
		stderrHas    string // "" means stderr must be empty
	}
	tests := []struct {
		args []string
		want
	}{
		{[]string{"-h"}, want{exitOK, "Usage: mesh <command>", ""}},
		{[]string{"--help"}, want{exitOK, "Usage: mesh <command>", ""}},
		{[]string{"help"}, want{exitOK, "Usage: mesh <command>", ""}},
		{[]string{"help", "status"}, want{exitOK, "Usage: mesh status", ""}},
		{[]string{}, want{exitUsage, "", "Usage: mesh <command>"}},
		{[]string{"nope"}, want{exitUsage, "", `unknown command "nope"`}},
		{[]string{"status", "-nope"}, want{exitUsage, "", "flag provided but not defined: -nope"}},
		{[]string{"version", "extra"}, want{exitUsage, "", "Usage: mesh version"}},
		{[]string{"status", "a", "b"}, want{exitUsage, "", "unexpected arguments [b]"}},
		{[]string{"pack"}, want{exitUsage, "", "Usage: mesh pack"}},
	}
	// Every command in the registry, the hidden ones the mesh starts
	// itself included: help on stdout, an unknown flag on stderr.
	for _, name := range allCommands() {
		for _, h := range []string{"-h", "--help"} {
			tests = append(tests, struct {
				args []string
				want
			}{[]string{name, h}, want{exitOK, "Usage: mesh " + name, ""}})
		}
		tests = append(tests, struct {
			args []string
			want
		}{[]string{name, "-no-such-flag"}, want{exitUsage, "", "flag provided but not defined: -no-such-flag\nUsage: mesh " + name}})
	}
	for _, args := range [][]string{{"cgroup-exec"}, {"log-relay"}, {"log-relay", "a", "b"}, {"plugin-serve", "health"}} {
		tests = append(tests, struct {
			args []string
			want
		}{args, want{exitUsage, "", "Usage: mesh " + args[0]}})
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runConfigMesh(t, bin, dir, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if tt.stdoutPrefix == "" && stdout != "" {
				t.Errorf("stdout not empty:\n%s", stdout)
			}
			if !strings.HasPrefix(stdout, tt.stdoutPrefix) {
				t.Errorf("stdout does not start with %q:\n%s", tt.stdoutPrefix, stdout)
			}
			if tt.stderrHas == "" && stderr != "" {
				t.Errorf("stderr not empty:\n%s", stderr)
			}
			if !strings.Contains(stderr, tt.stderrHas) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderrHas, stderr)
			}
		})
	}
}

// allCommands returns the name of every registered command, hidden or not.
func allCommands() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// flagLine is a flag with a value in PrintDefaults output: "  -name PLACEHOLDER".
var flagLine = regexp.MustCompile(`(?m)^  -(\S+) (.+)$`)

// placeholder is what a flag's value is called in help: an upper-case word
// such as FILE or TYPE=COMMAND, or Go's own "duration".
var placeholder = regexp.MustCompile(`^([A-Z][A-Z0-9_=|]*|duration)$`)

// TestFlagPlaceholders fails on help like "-key mesh keygen" or
// "-config string": every valued flag names what it takes.
func TestFlagPlaceholders(t *testing.T) {
	for _, name := range append(visibleCommands(), "provision encode", "provision decode") {
		t.Run(name, func(t *testing.T) {
			help := helpOf(t, strings.Fields(name)...)
			if !strings.HasPrefix(help, "Usage: mesh "+name) {
				t.Fatalf("help of %s:\n%s", name, help)
			}
			for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
				if !placeholder.MatchString(m[2]) {
					t.Errorf("-%s shows placeholder %q; name the value in backquotes in its usage", m[1], m[2])
				}
			}
		})
	}
}

// helpOf runs a command in-process with -h and returns its stdout.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut strings.Builder
	if code := realMain(append(args, "-h"), &out, &errOut); code != exitOK || errOut.Len() > 0 {
		t.Fatalf("mesh %v -h: exit %d, stderr %q", args, code, errOut.String())
	}
	return out.String()
}

func TestReadBuild(t *testing.T) {
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want buildFacts
	}{
		{"no build info", nil, buildFacts{module: "unknown", commit: "unknown", date: "unknown"}},
		{"devel, no vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			buildFacts{module: "unknown", commit: "unknown", date: "unknown"}},
		{"stamped", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}},
			buildFacts{module: "v1.2.3", commit: "0123456789abcdef", date: "2026-01-02T03:04:05Z", goVersion: "go1.26.0", modified: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readBuild(tt.bi)
			if tt.want.goVersion == "" {
				tt.want.goVersion = got.goVersion // the running toolchain's
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	var b strings.Builder
	writeVersion(&b, tests[2].want)
	for _, w := range []string{"mesh " + Version + "\n", "module:  v1.2.3\n", "commit:  0123456789abcdef (modified)\n", "date:    2026-01-02T03:04:05Z\n"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("version output lacks %q:\n%s", w, b.String())
		}
	}
}

// serveStatus serves st as GET /v1/status on a unix socket, the way a
// running mesh's control API does, and returns the -addr for it.
func serveStatus(t *testing.T, st any) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "control.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return "unix://" + sock
}

func sampleStatus() mesh.Status {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return mesh.Status{
		Started: t0, Nodes: []string{"n1"},
		Apps: []mesh.AppStatus{
			{Name: "billing", Digest: "sha256:1111", Min: 1, Desired: 1, Ready: 1},
			{Name: "echo", Digest: "sha256:2222", Min: 1, Desired: 1, Ready: 0, Degraded: true},
		},
		Instances: []mesh.InstanceStatus{
			{App: "billing", NodeID: "n1", Instance: "billing-n1-1", State: "ready", PID: 10, Port: 9001, Since: t0},
			{App: "echo", NodeID: "n1", Instance: "echo-n1-1", State: "failed", LastError: "exit status 3", Since: t0},
		},
		Edge: map[string]mesh.EdgeCounters{"billing": {Requests: 7}, "echo": {Requests: 9, Errors5xx: 9}},
	}
}

// TestStatusOfOneApp runs the real binary against a control socket.
func TestStatusOfOneApp(t *testing.T) {
	bin := buildConfigMesh(t)
	addr := serveStatus(t, sampleStatus())
	dir := t.TempDir()
	tests := []struct {
		args      []string
		code      int
		has, lack []string
	}{
		{[]string{"status", "-addr", addr}, exitOK, []string{"billing", "echo-n1-1", "exit status 3"}, nil},
		{[]string{"status", "-addr", addr, "billing"}, exitOK, []string{"billing-n1-1", "1/1"}, []string{"echo"}},
		{[]string{"status", "billing", "-addr", addr}, exitOK, []string{"billing-n1-1"}, []string{"echo"}},
		{[]string{"status", "-json", "-addr", addr, "echo"}, exitOK, []string{`"echo-n1-1"`}, []string{"billing"}},
		{[]string{"status", "-addr", addr, "nope"}, exitError, []string{`no app "nope" in the running mesh`}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			code, stdout, stderr := runConfigMesh(t, bin, dir, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			all := stdout + stderr
			for _, w := range tt.has {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			for _, w := range tt.lack {
				if strings.Contains(stdout, w) {
					t.Errorf("stdout has %q:\n%s", w, stdout)
				}
			}
		})
	}
}
