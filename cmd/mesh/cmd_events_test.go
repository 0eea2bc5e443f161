package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/mesh"
)

func TestEventText(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.Local)
	tests := []struct {
		name string
		e    mesh.Event
		want string
	}{
		{"instance", mesh.Event{Time: at, Type: "instance.exited", App: "billing", Node: "n1", Instance: "billing-1a", State: "failed", PID: 42,
			Digest: "sha256:0123456789abcdef0123", Detail: "signal: killed"},
			"03:04:05.006 instance.exited     app=billing node=n1 instance=billing-1a digest=sha256:0123456789ab state=failed pid=42 (signal: killed)"},
		{"rollout progress", mesh.Event{Time: at, Type: "rollout.progressed", App: "billing", Rollout: "billing-3", Ready: 2, Desired: 3},
			"03:04:05.006 rollout.progressed  app=billing rollout=billing-3 ready=2/3"},
		{"plugin", mesh.Event{Time: at, Type: "plugin.restarted", Plugin: "health/http", PID: 7},
			"03:04:05.006 plugin.restarted    plugin=health/http pid=7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventText(tt.e); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestEventsUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runEvents([]string{"billing"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr.String(), "use -app APP") || stdout.Len() != 0 {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}
