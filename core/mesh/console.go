package mesh

import (
	"net/http"
	"strings"
	"time"

	"github.com/mycelium-mesh/mesh/core/config"
	"github.com/mycelium-mesh/mesh/core/console"
	"github.com/mycelium-mesh/mesh/core/edge"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

// The web console (package console) is served on the edge's admin
// listener, beside /metrics. The mesh hands it a snapshot of its state,
// the event stream and a sampler of the edge's per-app totals.

// consoleHistory is how many past rollouts of each app the console shows.
const consoleHistory = 5

// ConsoleSnapshot is what the console renders: GET /console/api/snapshot.
type ConsoleSnapshot struct {
	SchemaVersion int `json:"schema_version"`
	// Roles are the parts of the mesh the process serving the console
	// runs ("control,agents,edge" for `mesh run`): in a cluster, an edge
	// alone sees no rollouts and no instances but through their endpoints.
	Roles   []string                     `json:"roles"`
	Status  Status                       `json:"status"`
	History map[string][]rollout.Rollout `json:"history"`
	Sites   []SiteView                   `json:"sites"`
}

func (m *Mesh) consoleSnapshot() any {
	doc := ConsoleSnapshot{SchemaVersion: SchemaVersion, Roles: strings.Split(m.roles().String(), ","),
		Status: m.Status(), History: map[string][]rollout.Rollout{}, Sites: []SiteView{}}
	for _, a := range doc.Status.Apps {
		if h, err := m.History(a.Name, consoleHistory); err == nil {
			doc.History[a.Name] = h
		}
	}
	if s, err := m.siteStore(); err == nil {
		s.mu.Lock()
		for _, site := range s.listLocked() {
			doc.Sites = append(doc.Sites, SiteView(site))
		}
		s.mu.Unlock()
	}
	return doc
}

// consoleHandler returns the console for the admin listener of cfg; Run
// starts its sampler (m.samples).
func (m *Mesh) consoleHandler(cfg *config.Config) http.Handler {
	m.samples = console.NewSampler(m.edgeTotals, 0, 0)
	return console.New(console.Options{
		Snapshot: m.consoleSnapshot,
		Events:   http.HandlerFunc(m.handleEvents),
		Samples:  m.samples,
		Loopback: isLoopback(cfg.Edge.Admin),
		Token:    cfg.Control.Token,
	})
}

// edgeTotals are the edge's per-app totals, none before it runs.
func (m *Mesh) edgeTotals() map[string]edge.AppTotals {
	m.mu.Lock()
	e := m.edge
	m.mu.Unlock()
	if e == nil {
		return nil
	}
	return e.Totals()
}

// SiteView is one site served, in the console's snapshot: siteapi.Site
// (GET /v1/sites, whose keys the site API fixes) with the snake_case keys
// of the mesh's other documents.
type SiteView struct {
	ID       string    `json:"id"`
	Domains  []string  `json:"domains"`
	Snapshot string    `json:"snapshot,omitempty"`
	NotFound string    `json:"not_found,omitempty"`
	App      string    `json:"app,omitempty"`
	Content  string    `json:"content,omitempty"`
	Updated  time.Time `json:"updated"`
}
