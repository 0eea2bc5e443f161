package pluginhost_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/pluginhost"
	"github.com/mycelium-mesh/mesh/sdk"
)

// TestRestartEvent: a plugin killed and restarted is reported to the
// host's Events sink with its kind, name and new pid.
func TestRestartEvent(t *testing.T) {
	bus := events.New(0, 0)
	_, sub := bus.Subscribe(events.Filter{})
	defer sub.Close()
	h, logs := newHost(t, func(o *pluginhost.Options) { o.Events = bus.Sink() })
	p, err := h.Load(ctxT(t), pluginhost.Spec{Kind: sdk.KindHealth, Name: "http"})
	if err != nil {
		t.Fatal(err)
	}
	old := p.Status().PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-sub.C():
		if ev.Type != events.PluginRestarted || ev.Plugin != sdk.KindHealth+"/http" || ev.PID == old || ev.PID != p.Status().PID {
			t.Fatalf("got %+v, want plugin.restarted of health/http with pid %d", ev, p.Status().PID)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no restart event\n%s", logs)
	}
}
