package mesh

import (
	"time"

	"github.com/mycelium-mesh/mesh/core/agent"
	"github.com/mycelium-mesh/mesh/core/edge"
	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/rollout"
)

// SchemaVersion is the version of the JSON the control API answers with,
// which is also what every `mesh ... -json` prints. Every document carries
// it as its top-level "schema_version". Keys are snake_case throughout;
// schema_test.go holds the full list of keys, and the version goes up when
// a key is renamed or removed (adding one keeps it).
const SchemaVersion = 1

// The control API does not encode the types of other packages directly:
// their Go field names would leak into the JSON (and fabric.Endpoint is also
// stored, under its own keys, in a fabric backend). Each view below has the
// same fields as the type it shows, so a plain conversion fills it, and a
// field added there fails to compile here until it is given its key.

// InstanceStatus is one workload instance in Status: agent.InstanceStatus
// with its JSON keys.
type InstanceStatus struct {
	App         string    `json:"app"`
	NodeID      string    `json:"node_id"`
	Instance    string    `json:"instance"`
	Digest      string    `json:"digest"`
	State       string    `json:"state"` // starting, ready, draining, stopped or failed
	PID         int       `json:"pid"`
	Port        int       `json:"port"`
	URL         string    `json:"url"`
	Restarts    int       `json:"restarts"`
	LastError   string    `json:"last_error"`
	Since       time.Time `json:"since"`
	Containment string    `json:"containment"`
	Limits      string    `json:"limits"`
	StderrTail  []string  `json:"stderr_tail"`
	Dir         string    `json:"dir"`
}

// Endpoint is one registered endpoint of an app: fabric.Endpoint with its
// JSON keys.
type Endpoint struct {
	AppName string `json:"app"`
	URL     string `json:"url"`
	NodeID  string `json:"node_id"`
	Digest  string `json:"digest,omitempty"` // the spore the instance runs
}

// EdgeCounters are the edge's counters of one app: edge.AppCounters with
// its JSON keys.
type EdgeCounters struct {
	Requests     uint64 `json:"requests"`
	Errors5xx    uint64 `json:"errors_5xx"`
	ClientClosed uint64 `json:"client_closed"`
	InFlight     int64  `json:"in_flight"`
	Endpoints    int    `json:"endpoints"`
	Ejected      int    `json:"ejected"`
}

// HistoryResponse is the answer of GET /v1/apps/{app}/history, and what
// `mesh history -json` prints.
type HistoryResponse struct {
	SchemaVersion int               `json:"schema_version"`
	Rollouts      []rollout.Rollout `json:"rollouts"` // newest first
}

func instanceViews(in []agent.InstanceStatus) []InstanceStatus {
	out := make([]InstanceStatus, len(in))
	for i, s := range in {
		out[i] = InstanceStatus(s)
	}
	return out
}

func endpointViews(in []fabric.Endpoint) []Endpoint {
	out := make([]Endpoint, len(in))
	for i, e := range in {
		out[i] = Endpoint(e)
	}
	return out
}

func edgeViews(in map[string]edge.AppCounters) map[string]EdgeCounters {
	if in == nil {
		return nil
	}
	out := make(map[string]EdgeCounters, len(in))
	for app, c := range in {
		out[app] = EdgeCounters(c)
	}
	return out
}
