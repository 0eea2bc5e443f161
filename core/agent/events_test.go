package agent

import (
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
)

// nextOfTypes reads sub until an event of one of the wanted types arrives
// (other types are skipped) and fails after timeout.
func nextOfTypes(t *testing.T, sub *events.Subscription, timeout time.Duration, want ...events.Type) events.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-sub.C():
			for _, w := range want {
				if e.Type == w {
					return e
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within %s", want, timeout)
		}
	}
}

// TestEventsOfLaunchAndKill: an agent with an Events sink reports, in
// order, the launch, health gate and registration of an instance, then
// its endpoint withdrawn, its exit and the restart after a SIGKILL, then
// the new instance's launch, health and registration.
func TestEventsOfLaunchAndKill(t *testing.T) {
	e := newEnv(t)
	d := e.spore("v1", nil)
	bus := events.New(0, 0)
	_, sub := bus.Subscribe(events.Filter{App: "billing"})
	defer sub.Close()
	a := e.startAgent("n1", func(o *Options) { o.Events = bus.Sink() })
	e.publish(fabric.Plan{Digest: d, Restart: fabric.RestartAlways})
	first := a.readyWith(t, "billing", d, 10*time.Second)

	order := []events.Type{events.InstanceLaunched, events.InstanceHealthy, events.EndpointRegistered}
	all := []events.Type{events.InstanceLaunched, events.InstanceHealthy, events.EndpointRegistered,
		events.EndpointRemoved, events.InstanceExited, events.InstanceRestarted, events.InstanceUnhealthy}
	for _, want := range order {
		ev := nextOfTypes(t, sub, 10*time.Second, all...)
		if ev.Type != want || ev.Instance != first.Instance || ev.Node != "n1" || ev.Digest != d {
			t.Fatalf("got %+v, want %s of %s", ev, want, first.Instance)
		}
		if ev.PID != first.PID {
			t.Errorf("%s: pid %d, want %d", ev.Type, ev.PID, first.PID)
		}
	}
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ      events.Type
		instance string // "" for the new instance
		state    string
	}{
		{events.EndpointRemoved, first.Instance, ""},
		{events.InstanceExited, first.Instance, StateFailed},
		{events.InstanceRestarted, "", ""},
		{events.InstanceLaunched, "new", StateStarting},
		{events.InstanceHealthy, "new", ""},
		{events.EndpointRegistered, "new", StateReady},
	}
	for _, tt := range tests {
		ev := nextOfTypes(t, sub, 10*time.Second, all...)
		if ev.Type != tt.typ {
			t.Fatalf("got %s (%+v), want %s", ev.Type, ev, tt.typ)
		}
		switch tt.instance {
		case "new":
			if ev.Instance == first.Instance || ev.Instance == "" {
				t.Errorf("%s of instance %q, want the new one", ev.Type, ev.Instance)
			}
		case "":
		default:
			if ev.Instance != tt.instance {
				t.Errorf("%s of instance %q, want %q", ev.Type, ev.Instance, tt.instance)
			}
		}
		if tt.state != "" && ev.State != tt.state {
			t.Errorf("%s: state %q, want %q", ev.Type, ev.State, tt.state)
		}
	}
}
