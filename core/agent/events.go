package agent

import "github.com/mycelium-mesh/mesh/core/events"

// emit publishes an event about instance i to Options.Events, with the
// instance's identity, pid, endpoint URL and state as they are now.
func (i *instance) emit(t events.Type, detail string) {
	if i.a.opts.Events == nil {
		return
	}
	i.mu.Lock()
	e := events.Event{
		Type: t, App: i.app, Node: i.a.opts.NodeID, Instance: i.id, Digest: i.digest,
		PID: i.pid, URL: i.url, State: i.state, Detail: detail,
	}
	i.mu.Unlock()
	i.a.opts.Events(e)
}

// emitEndpoint publishes an endpoint event of i for url.
func (i *instance) emitEndpoint(t events.Type, url string) {
	if i.a.opts.Events == nil {
		return
	}
	i.mu.Lock()
	e := events.Event{Type: t, App: i.app, Node: i.a.opts.NodeID, Instance: i.id, Digest: i.digest, PID: i.pid, URL: url, State: i.state}
	i.mu.Unlock()
	i.a.opts.Events(e)
}
