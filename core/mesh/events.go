package mesh

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mycelium-mesh/mesh/core/events"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

// The mesh's event stream: one events.Bus per mesh, fed by the agents, the
// edge and the plugin host through their Events sinks, by the plan writes
// of the fabric (eventFabric below), by the rollout watcher and by reloads.
// GET /v1/events serves it as JSON lines (or server-sent events to a
// browser), `mesh events` prints it, and the console follows it.

// Event is one line of GET /v1/events: events.Event with its JSON keys.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	App      string    `json:"app,omitempty"`
	Node     string    `json:"node,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Digest   string    `json:"digest,omitempty"`
	Rollout  string    `json:"rollout,omitempty"`
	State    string    `json:"state,omitempty"`
	Plugin   string    `json:"plugin,omitempty"`
	PID      int       `json:"pid,omitempty"`
	URL      string    `json:"url,omitempty"`
	Ready    int       `json:"ready,omitempty"`
	Desired  int       `json:"desired,omitempty"`
	Count    int       `json:"count,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// EventLine is what each line of GET /v1/events holds.
type EventLine struct {
	SchemaVersion int `json:"schema_version"`
	Event
}

func eventLine(e events.Event) EventLine {
	return EventLine{SchemaVersion: SchemaVersion, Event: Event{
		Seq: e.Seq, Time: e.Time, Type: string(e.Type), App: e.App, Node: e.Node, Instance: e.Instance,
		Digest: e.Digest, Rollout: e.Rollout, State: e.State, Plugin: e.Plugin, PID: e.PID, URL: e.URL,
		Ready: e.Ready, Desired: e.Desired, Count: e.Count, Detail: e.Detail,
	}}
}

// Events returns the mesh's event bus.
func (m *Mesh) Events() *events.Bus { return m.events }

// emit publishes e on the mesh's bus.
func (m *Mesh) emit(e events.Event) { m.events.Publish(e) }

// eventFabric is the mesh's fabric with every plan write reported as an
// event, whoever writes it (deploys, reloads, reverts, sites).
type eventFabric struct {
	fabric.Store
	emit events.Sink
}

func (f eventFabric) PublishPlan(p fabric.Plan) error {
	if err := f.Store.PublishPlan(p); err != nil {
		return err
	}
	f.published(p)
	return nil
}

func (f eventFabric) SwapPlan(old *fabric.Plan, p fabric.Plan) error {
	if err := f.Store.SwapPlan(old, p); err != nil {
		return err
	}
	f.published(p)
	return nil
}

func (f eventFabric) DeletePlan(app string) error {
	if err := f.Store.DeletePlan(app); err != nil {
		return err
	}
	f.emit.Emit(events.Event{Type: events.PlanPublished, App: app, State: "withdrawn", Detail: "app withdrawn"})
	return nil
}

func (f eventFabric) published(p fabric.Plan) {
	f.emit.Emit(events.Event{Type: events.PlanPublished, App: p.AppName, Digest: p.Digest,
		Detail: fmt.Sprintf("min %d, max %d, restart %s", p.Min, p.Max, p.Restart)})
}

// rolloutEvent is an event about rollout r.
func rolloutEvent(t events.Type, r *rollout.Rollout) events.Event {
	return events.Event{Type: t, App: r.App, Digest: r.Digest, Rollout: r.ID, State: string(r.State),
		Ready: r.Progress.Ready, Desired: r.Progress.Desired, Detail: r.Detail}
}

// emitStep reports what one step of the watcher changed in r (before is r
// as it was): progress, a revert, its end.
func (rs *rollouts) emitStep(before rollout.Rollout, r *rollout.Rollout, reverted bool) {
	// A step that also moved the rollout to another state says so by that
	// state's event; progress alone is reported within a state.
	if r.Progress != before.Progress && r.State == before.State {
		rs.m.emit(rolloutEvent(events.RolloutProgressed, r))
	}
	if reverted {
		e := rolloutEvent(events.RolloutReverted, r)
		e.Digest = r.LastGood
		e.Detail = "reverting to " + r.LastGood + ": " + r.Detail
		rs.m.emit(e)
	}
	if r.State.Terminal() && !before.State.Terminal() {
		rs.m.emit(rolloutEvent(events.RolloutCompleted, r))
	}
}

// handleEvents serves GET /v1/events?app=&follow=&tail=: the kept history
// (the last tail events when tail is set), then with follow=1 every new
// event until the client goes. Each event is a JSON line (EventLine); a
// client sending Accept: text/event-stream gets server-sent events instead,
// one `data:` line each, as a browser's EventSource expects, with an id
// (RUN.SEQ): an EventSource that reconnects sends back the last one it got
// (Last-Event-ID) and receives only the events after it, not the history
// again.
func (m *Mesh) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := events.Filter{App: q.Get("app")}
	follow := q.Get("follow") == "1" || q.Get("follow") == "true"
	tail := -1
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("tail %q: want a number >= 0", v)})
			return
		}
		tail = n
	}
	sse := r.Header.Get("Accept") == "text/event-stream"
	var hist []events.Event
	var sub *events.Subscription
	if follow {
		hist, sub = m.events.Subscribe(f)
		defer sub.Close()
	} else {
		hist = m.events.Recent(f)
	}
	run := m.eventRun()
	if after, ok := resumeAfter(r.Header.Get("Last-Event-ID"), run); sse && ok {
		// A browser reconnecting: only what it has not seen yet, whatever
		// the tail it asked for the first time.
		hist = since(hist, after)
	} else if tail >= 0 && len(hist) > tail {
		hist = hist[len(hist)-tail:]
	}
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	write := func(e events.Event) error {
		if sse {
			if e.Seq != 0 { // events.lost has none: the last id stays
				if _, err := fmt.Fprintf(bw, "id: %s.%d\n", run, e.Seq); err != nil {
					return err
				}
			}
			if _, err := bw.WriteString("data: "); err != nil {
				return err
			}
		}
		if err := enc.Encode(eventLine(e)); err != nil { // ends the line
			return err
		}
		if sse {
			if err := bw.WriteByte('\n'); err != nil {
				return err
			}
		}
		return nil
	}
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		return http.NewResponseController(w).Flush()
	}
	for _, e := range hist {
		if write(e) != nil {
			return
		}
	}
	if flush() != nil || !follow {
		return
	}
	// A comment line now and then keeps proxies and idle timeouts from
	// closing a quiet stream, and finds a client that went away.
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-m.quit: // nil, never ready, in a Mesh that New did not make
			return
		case e, ok := <-sub.C():
			if !ok || write(e) != nil {
				return
			}
			// Write what else is queued before flushing once.
			for n := len(sub.C()); n > 0; n-- {
				if write(<-sub.C()) != nil {
					return
				}
			}
			if flush() != nil {
				return
			}
		case <-keep.C:
			if sse {
				if _, err := bw.WriteString(": keep-alive\n\n"); err != nil {
					return
				}
			} else if _, err := bw.WriteString("\n"); err != nil {
				return
			}
			if flush() != nil {
				return
			}
		}
	}
}

// eventRun names this run of the mesh in the ids of server-sent events
// ("RUN.SEQ"): seq starts again at 1 when the mesh restarts, so an id of an
// earlier run says nothing about what a browser has seen of this one.
func (m *Mesh) eventRun() string {
	if m.started.IsZero() {
		return "0"
	}
	return strconv.FormatInt(m.started.UnixNano(), 36)
}

// resumeAfter reads the Last-Event-ID a reconnecting EventSource sends:
// the seq of the last event it received, when that id is of this run.
func resumeAfter(id, run string) (uint64, bool) {
	r, seq, ok := strings.Cut(id, ".")
	if !ok || r != run {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}

// since returns the events of hist after seq.
func since(hist []events.Event, seq uint64) []events.Event {
	for i, e := range hist {
		if e.Seq > seq {
			return hist[i:]
		}
	}
	return nil
}

// EventsQuery selects the events Client.Events streams.
type EventsQuery struct {
	App    string
	Follow bool
	Tail   int // only the last Tail events of the history; 0: all kept
}

// Events streams the mesh's events to fn, oldest first, until the history
// is sent (or, with Follow, until ctx ends). Blank keep-alive lines are
// skipped.
func (c *Client) Events(ctx context.Context, q EventsQuery, fn func(EventLine) error) error {
	v := url.Values{}
	if q.App != "" {
		v.Set("app", q.App)
	}
	if q.Follow {
		v.Set("follow", "1")
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	resp, err := c.stream(ctx, "/v1/events", v)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var e EventLine
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("events: decode %q: %w", line, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("events stream: %w", err)
	}
	return nil
}

// stream sends GET path?v and returns the response of a 200 answer, whose
// body the caller reads and closes; another status is returned as the
// error the API gave.
func (c *Client) stream(ctx context.Context, path string, v url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+v.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("control request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e apiError
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s", e.Error)
		}
		return nil, fmt.Errorf("control API: %s", resp.Status)
	}
	return resp, nil
}
