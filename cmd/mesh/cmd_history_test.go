package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

func TestParseWithApp(t *testing.T) {
	tests := []struct {
		args    []string
		app     string
		code    int
		asJSON  bool
		errText string
	}{
		{[]string{"billing"}, "billing", -1, false, ""},
		{[]string{"-json", "billing"}, "billing", -1, true, ""},
		{[]string{"billing", "-json"}, "billing", -1, true, ""}, // flags after APP too
		{[]string{}, "", exitUsage, false, "Usage"},
		{[]string{"billing", "echo"}, "", exitUsage, false, "unexpected arguments"},
		{[]string{"-nope", "billing"}, "", exitUsage, false, "not defined"},
		{[]string{"-h"}, "", exitOK, false, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			fs := newFlagSet("history", "history [-json] APP", &stderr)
			asJSON := fs.Bool("json", false, "")
			app, code := parseWithApp(fs, tt.args)
			if app != tt.app || code != tt.code || *asJSON != tt.asJSON {
				t.Fatalf("got %q %d json=%v, want %q %d json=%v", app, code, *asJSON, tt.app, tt.code, tt.asJSON)
			}
			if !strings.Contains(stderr.String(), tt.errText) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tt.errText)
			}
		})
	}
}

func TestWriteHistory(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := []rollout.Rollout{
		{ID: "billing-2", State: rollout.Reverted, Digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222",
			Version: "9.0.0", Trigger: rollout.ByDeploy, Who: "ops (uid 1000)", Started: t0, Ended: t0.Add(6 * time.Second),
			Detail: "1 node(s) failed: n1: unhealthy; reverted to sha256:11"},
		{ID: "billing-1", State: rollout.Progressing, Digest: "sha256:11", Trigger: rollout.ByConfig, Who: "config", Started: t0},
	}
	var b bytes.Buffer
	writeHistory(&b, h, t0.Add(time.Minute))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("table:\n%s", b.String())
	}
	for _, want := range []string{"billing-2", "reverted", "sha256:222222222222 ", "9.0.0", "ops (uid 1000)", "6s", "reverted to sha256:11"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	// An active rollout's duration runs to now; missing fields print "-".
	if !strings.Contains(lines[2], "1m0s") || !strings.Contains(lines[2], " - ") {
		t.Errorf("row %q", lines[2])
	}
}

// TestWriteActiveRolloutsProving: instances still proving themselves are
// shown beside the ready count, which leaves them out.
func TestWriteActiveRolloutsProving(t *testing.T) {
	for _, tc := range []struct {
		p    rollout.Progress
		want string
	}{
		{rollout.Progress{Desired: 3, Ready: 1, Healthy: 3, Proving: 2}, "1/3 (2 proving)"},
		{rollout.Progress{Desired: 3, Ready: 3, Healthy: 3}, "3/3\t"},
	} {
		var buf bytes.Buffer
		r := &rollout.Rollout{ID: "billing-2", App: "billing", State: rollout.Progressing, Digest: "sha256:22", Progress: tc.p}
		writeActiveRollouts(&buf, []mesh.AppStatus{{Rollout: r}})
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("status lacks %q:\n%s", tc.want, buf.String())
		}
	}
}
