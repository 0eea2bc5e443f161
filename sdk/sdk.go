// Package sdk is what plugin authors import to write Mycelium Mesh plugins.
//
// A plugin is a separate executable that serves one plugin kind (repo backend,
// balancer or health checker) over gRPC through hashicorp/go-plugin. The mesh
// host launches it, negotiates the API version, hands it its configuration and
// then calls it. The sdk never imports the mesh engine: building a plugin pulls
// in only this package, its protobuf definitions and go-plugin.
package sdk

import (
	"context"
	"io"
	"time"
)

// Plugin kinds known to the host.
const (
	KindRepo     = "repo"
	KindBalancer = "balancer"
	KindHealth   = "health"
)

// APIVersion is the plugin API version this sdk speaks. The host and a plugin
// must share at least one version.
const APIVersion = 1

// Info describes a plugin.
type Info struct {
	Kind        string   // one of the Kind* constants
	Name        string   // e.g. "round-robin"
	Version     string   // the plugin's own version, free form
	APIVersions []uint32 // plugin API versions the plugin supports
}

// AttrType is the type of one configuration attribute.
type AttrType string

// Attribute types a plugin may declare in its schema.
const (
	TypeString     AttrType = "string"
	TypeNumber     AttrType = "number"
	TypeBool       AttrType = "bool"
	TypeDuration   AttrType = "duration" // written as a string such as "250ms"
	TypeStringList AttrType = "list(string)"
	// TypePath is a string naming a file or directory. It always arrives
	// absolute: a relative path written in mesh.hcl is resolved against the
	// directory of that file (a relative default as if it were written
	// there), so the plugin receives the path the operator meant whatever
	// its own working directory.
	TypePath AttrType = "path"
)

// Attribute is one attribute of a plugin's `config { ... }` block.
type Attribute struct {
	Name        string
	Type        AttrType
	Required    bool
	Default     any // used when the attribute is absent; nil means none
	Description string
}

// Schema declares the attributes a plugin accepts in its config block. The
// host decodes the operator's block against it and reports mistakes with the
// file and line of mesh.hcl before the plugin is configured.
type Schema struct {
	Attributes []Attribute
}

// Config is a decoded plugin configuration: attribute name to value. Values
// are string, float64, bool or []string; durations arrive as strings and are
// read with Duration.
type Config map[string]any

// Plugin is what every plugin kind implements.
type Plugin interface {
	Info() Info
	Schema() Schema
	// Configure is called once after launch (and again after a restart) with
	// the decoded configuration, before any other call.
	Configure(ctx context.Context, cfg Config) error
}

// HealthCheck asks a health checker about one workload instance.
type HealthCheck struct {
	URL     string        // base URL of the instance, e.g. http://127.0.0.1:41234
	Path    string        // e.g. /health
	Timeout time.Duration // deadline for this one check
}

// HealthResult is a health checker's answer.
type HealthResult struct {
	Healthy bool
	Reason  string // why not healthy, or a short note
}

// HealthChecker checks one instance per call. Calls are not on the request path.
type HealthChecker interface {
	Plugin
	Check(ctx context.Context, c HealthCheck) (HealthResult, error)
}

// RepoBackend stores and fetches spore blobs by digest ("sha256:<hex>").
// Blobs are streamed; the host re-hashes everything it receives and refuses a
// mismatch, so a backend is not trusted with integrity.
type RepoBackend interface {
	Plugin
	Put(ctx context.Context, digest string, r io.Reader) error
	// Get returns the blob; found is false when the backend does not have it.
	Get(ctx context.Context, digest string) (rc io.ReadCloser, found bool, err error)
	Has(ctx context.Context, digest string) (bool, error)
}

// Endpoint is one routable instance of an app.
type Endpoint struct {
	ID     string // stable identifier, unique within the app (the node ID)
	URL    string
	NodeID string
}

// EndpointLoad is a batched load report for one endpoint over the last
// reporting interval.
type EndpointLoad struct {
	ID          string
	InFlight    uint32  // requests in flight at report time
	Requests    uint64  // requests completed in the interval
	Failures    uint64  // connection errors and 5xx in the interval
	LatencyEWMA float64 // exponentially weighted latency, microseconds
}

// AppState is what the host streams to a balancer: the endpoint set of one app
// and, when available, load reports for it.
type AppState struct {
	App       string
	Endpoints []Endpoint
	Loads     []EndpointLoad
}

// PickMode names a picking algorithm the edge executes in-process.
type PickMode string

// Pick modes the edge executes without any call to the plugin.
const (
	// ModeRoundRobin is smooth weighted round-robin; equal weights give an
	// exact rotation.
	ModeRoundRobin PickMode = "round_robin"
	// ModeP2C is power of two choices on in-flight requests, each endpoint's
	// in-flight count divided by its weight.
	ModeP2C PickMode = "p2c"
)

// Policy is a balancer's answer for one app. The edge applies it to every
// request until the next policy arrives.
type Policy struct {
	App  string
	Mode PickMode
	// Weights by endpoint ID. A missing endpoint gets weight 1; weight 0
	// takes the endpoint out of picks.
	Weights map[string]uint32
}

// Balancer turns endpoint sets and load reports into picking policies. It is
// never called per request.
type Balancer interface {
	Plugin
	Balance(ctx context.Context, s AppState) (Policy, error)
}
