package mesh

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
)

// withEvents gives the rig's mesh an event bus and reports its plan writes,
// as New does.
func (w *watcherRig) withEvents() *events.Bus {
	bus := events.New(0, 0)
	w.m.events = bus
	w.m.fabric = eventFabric{Store: w.m.fabric, emit: bus.Sink()}
	return bus
}

// TestRolloutEvents: the watcher reports a rollout's start, progress and
// success, and a failed one's revert and end, in order, with the plan
// writes between them.
func TestRolloutEvents(t *testing.T) {
	w := newWatcherRig(t, t.TempDir())
	bus := w.withEvents()
	good := w.begin(dGood)
	w.setReady(dGood, 1)
	w.m.rollouts.step(time.Now())
	w.setReady(dGood, 3)
	w.m.rollouts.step(time.Now())
	bad := w.begin(dBroken)
	w.m.rollouts.step(bad.Deadline.Add(time.Second)) // missed its deadline: revert
	w.m.rollouts.step(time.Now())                    // the good digest serves: reverted

	type want struct {
		typ     events.Type
		rollout string
		digest  string
		state   string
		ready   int
	}
	wants := []want{
		{events.PlanPublished, "", dGood, "", 0},
		{events.RolloutStarted, good.ID, dGood, "progressing", 0},
		{events.RolloutProgressed, good.ID, dGood, "progressing", 1},
		{events.RolloutCompleted, good.ID, dGood, "succeeded", 3},
		{events.PlanPublished, "", dBroken, "", 0},
		{events.RolloutStarted, bad.ID, dBroken, "progressing", 0},
		{events.RolloutReverted, bad.ID, dGood, "reverting", 0},
		{events.PlanPublished, "", dGood, "", 0},
		{events.RolloutCompleted, bad.ID, dBroken, "reverted", 3}, // the good digest's instances
	}
	got := bus.Recent(events.Filter{App: "billing"})
	if len(got) != len(wants) {
		var b strings.Builder
		for _, e := range got {
			b.WriteString(string(e.Type) + " " + e.Rollout + " " + e.State + "\n")
		}
		t.Fatalf("%d events, want %d:\n%s", len(got), len(wants), b.String())
	}
	for i, w := range wants {
		e := got[i]
		if e.Type != w.typ || e.Rollout != w.rollout || e.Digest != w.digest || e.State != w.state || e.Ready != w.ready {
			t.Errorf("event %d: %s rollout=%s digest=%.14s state=%s ready=%d; want %s rollout=%s digest=%.14s state=%s ready=%d",
				i, e.Type, e.Rollout, e.Digest, e.State, e.Ready, w.typ, w.rollout, w.digest, w.state, w.ready)
		}
	}
}

// TestFailedPlanWriteIsNoEvent: only plan writes that happened are events.
func TestFailedPlanWriteIsNoEvent(t *testing.T) {
	w := newWatcherRig(t, t.TempDir())
	bus := w.withEvents()
	p := fabric.Plan{AppName: "billing", Digest: dGood, Min: 1, Max: 3}
	stale := fabric.Plan{AppName: "billing", Digest: dBroken}
	if err := w.m.fabric.SwapPlan(&stale, p); err == nil {
		t.Fatal("swap over a plan that is not there succeeded")
	}
	if err := w.m.fabric.DeletePlan("nothing"); err == nil {
		t.Fatal("deleting a plan that is not there succeeded")
	}
	if got := bus.Recent(events.Filter{}); len(got) != 0 {
		t.Fatalf("events of failed writes: %+v", got)
	}
	if err := w.m.fabric.SwapPlan(nil, p); err != nil {
		t.Fatal(err)
	}
	if err := w.m.fabric.DeletePlan("billing"); err != nil {
		t.Fatal(err)
	}
	got := bus.Recent(events.Filter{})
	if len(got) != 2 || got[0].Digest != dGood || got[1].State != "withdrawn" {
		t.Fatalf("events %+v, want the swap then the withdrawal", got)
	}
}

// TestEventsHandler: the history as JSON lines, filtered and cut to its
// tail; server-sent events for a browser; following until the client goes.
func TestEventsHandler(t *testing.T) {
	m := &Mesh{events: events.New(0, 0)}
	for _, app := range []string{"a", "b", "a", "a"} {
		m.events.Publish(events.Event{Type: events.PlanPublished, App: app})
	}
	srv := httptest.NewServer(http.HandlerFunc(m.handleEvents))
	defer srv.Close()
	tests := []struct {
		name   string
		query  string
		accept string
		lastID string // Last-Event-ID: an EventSource reconnecting
		code   int
		seqs   []uint64
		sse    bool
	}{
		{"all", "", "", "", 200, []uint64{1, 2, 3, 4}, false},
		{"one app", "?app=a", "", "", 200, []uint64{1, 3, 4}, false},
		{"tail", "?app=a&tail=2", "", "", 200, []uint64{3, 4}, false},
		{"tail zero", "?tail=0", "", "", 200, nil, false},
		{"bad tail", "?tail=-1", "", "", 400, nil, false},
		{"sse", "?app=b", "text/event-stream", "", 200, []uint64{2}, true},
		{"sse resumed", "?tail=1", "text/event-stream", "0.2", 200, []uint64{3, 4}, true},
		{"sse resumed, one app", "?app=a&tail=1", "text/event-stream", "0.1", 200, []uint64{3, 4}, true},
		{"sse resumed, all seen", "?tail=3", "text/event-stream", "0.4", 200, nil, true},
		{"sse, id of an earlier run", "?tail=1", "text/event-stream", "kq3v.2", 200, []uint64{4}, true},
		{"sse, id not ours", "?tail=1", "text/event-stream", "2", 200, []uint64{4}, true},
		{"json lines ignore the id", "?tail=1", "", "0.2", 200, []uint64{4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+tt.query, nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			if tt.lastID != "" {
				req.Header.Set("Last-Event-ID", tt.lastID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if tt.code != 200 {
				return
			}
			var seqs []uint64
			var id string
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				if tt.sse {
					if line == "" {
						continue
					}
					if v, ok := strings.CutPrefix(line, "id: "); ok {
						id = v
						continue
					}
					var ok bool
					if line, ok = strings.CutPrefix(line, "data: "); !ok {
						t.Fatalf("server-sent line %q", line)
					}
				}
				var e EventLine
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if e.SchemaVersion != SchemaVersion || e.Type != string(events.PlanPublished) {
					t.Fatalf("line %q", line)
				}
				if want := fmt.Sprintf("0.%d", e.Seq); tt.sse && id != want {
					t.Fatalf("event %d has id %q, want %q", e.Seq, id, want)
				}
				seqs = append(seqs, e.Seq)
			}
			if len(seqs) != len(tt.seqs) {
				t.Fatalf("seqs %v, want %v", seqs, tt.seqs)
			}
			for i := range seqs {
				if seqs[i] != tt.seqs[i] {
					t.Fatalf("seqs %v, want %v", seqs, tt.seqs)
				}
			}
		})
	}

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"?follow=1&tail=0", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		m.events.Publish(events.Event{Type: events.ReloadApplied})
		sc := bufio.NewScanner(resp.Body)
		if !sc.Scan() {
			t.Fatalf("no followed event: %v", sc.Err())
		}
		var e EventLine
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Type != string(events.ReloadApplied) || e.Seq != 5 {
			t.Fatalf("followed %q (%v), want the reload, seq 5", sc.Text(), err)
		}
		cancel() // the client goes: the handler ends and unsubscribes
	})
}
