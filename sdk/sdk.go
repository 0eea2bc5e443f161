// Package sdk is what plugin authors import to write Mycelium Mesh plugins.
//
// A plugin is a separate executable that serves one plugin kind (repo backend,
// balancer, health checker or hosting backend) over gRPC through
// hashicorp/go-plugin. The mesh host launches it, negotiates the API version,
// hands it its configuration and then calls it. The sdk is a Go module of
// its own (github.com/mycelium-mesh/mesh/sdk) that never imports the mesh
// engine: building a plugin pulls in only this module (its protobuf
// definitions included), go-plugin, gRPC and HCL.
//
// # Life of a plugin
//
// The host starts the executable with the mesh's working directory and an
// environment without the control token. When mesh.hcl gives the plugin a
// sha256, the host hashes the file while copying it into a private directory
// and runs that copy, which is removed once the process has started: a plugin
// must not look for files beside its own executable (os.Executable) then.
// The host calls Info and Schema, decodes the operator's config block against
// the Schema (types, unknown and missing attributes are the host's errors,
// with file and line) and calls Configure once, before any call of the
// kind. A process that exits is restarted with backoff and configured again
// with the same configuration; meanwhile calls fail fast and the host keeps
// the last good state (the edge its last policy), so a plugin may crash
// without costing a request. `mesh validate` and `mesh plugins` start the
// plugin too, but call only Info, Schema and ValidateConfig (see
// ConfigValidator), never Configure or a kind's methods, and stop it again.
//
// Return AttrErrorf from Configure or ValidateConfig for a bad value: the host
// reports it at that attribute's line. Plugins log with Logger (hclog, to
// stderr); lines appear in the mesh's log under the plugin's kind and name.
// Nothing may be written to stdout, which carries the handshake.
//
// # Attribute values
//
// Config holds string, float64, int64 (TypeInt), bool, list and map
// values, and nested blocks as Config, within the Min, Max and OneOf the
// Schema declares; Config.Decode stores them into a struct by its
// `mesh:"name"` tags. A TypeDuration arrives as a string the host checked
// with time.ParseDuration. A TypePath arrives absolute, resolved against
// the directory of the mesh.hcl that set it. Absent attributes carry their
// Default, in nested blocks too.
//
// # Balancers
//
// Balance is never called per request. The edge calls it for one app when
// the app's endpoint set changes and every load report interval (500ms,
// not configurable today) while the app serves, on one stream per plugin;
// Loads cover the interval since the previous call. An app that served
// nothing since its last report is not reported again until a request
// ends or its endpoints change, so an idle app costs no calls. Endpoint.URL is the instance's base URL,
// "http://HOST:PORT" (scheme, host and port, no path nor trailing slash),
// HOST being 127.0.0.1 on one machine and the agent's advertise address
// in a cluster (an IPv6 one in brackets); Endpoint.ID and
// NodeID are the node the instance runs on. The edge applies the returned
// Policy to the app it asked about, whatever Policy.App says. An endpoint
// missing from Weights gets weight 1, weight 0 takes it out of picks, and a
// policy whose weights are all zero is served as if every weight were 1, so
// that a balancer cannot switch an app off. An unknown Mode is taken as
// ModeRoundRobin. An error (or no answer within the host's deadline) keeps
// the previous policy in force.
//
// # Health checkers
//
// Check gates a new instance: the agent polls it, fast at first and then
// backing off, until it answers Healthy:true or the health timeout passes.
// Checks stop once the instance is healthy; they are not a liveness probe.
// Healthy:false with a Reason means "the instance is not ready" and is
// retried; an error means the checker could not check (a bad URL, its own
// failure) and is retried as well, its text becoming the reason reported if
// the instance never gets healthy. HealthCheck.URL has the form of
// Endpoint.URL and Timeout is the deadline of that one check.
//
// # Repo backends
//
// The mesh keeps its own content-addressed store on disk; the backend is a
// second home for blobs. When a blob is published the host calls Has and,
// when that says false, Put with the whole blob. When a node needs a blob it
// does not have locally, the host calls Get; found=false means the backend
// does not have it either. Every blob Get returns is re-hashed by the host
// and refused when it does not match its digest: a backend is not trusted
// with integrity. Digests are "sha256:" and 64 lowercase hex digits.
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
	TypeInt        AttrType = "int" // a whole number; arrives as int64
	TypeBool       AttrType = "bool"
	TypeDuration   AttrType = "duration" // written as a string such as "250ms"
	TypeStringList AttrType = "list(string)"
	TypeIntList    AttrType = "list(int)"    // arrives as []int64
	TypeNumberList AttrType = "list(number)" // arrives as []float64
	TypeBoolList   AttrType = "list(bool)"   // arrives as []bool
	// Maps are written as HCL objects, weights = { "node-1" = 5 }, and
	// arrive as map[string]string, map[string]int64, map[string]float64
	// or map[string]bool.
	TypeStringMap AttrType = "map(string)"
	TypeIntMap    AttrType = "map(int)"
	TypeNumberMap AttrType = "map(number)"
	TypeBoolMap   AttrType = "map(bool)"
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
	// Min and Max bound a number or int attribute, inclusive; nil means
	// no bound (write Min: new(0.0)). On a list or map of numbers or ints
	// they bound every element. The host refuses a value outside them at
	// its line in mesh.hcl, so the plugin never sees one.
	Min, Max *float64
	// OneOf lists the values a string attribute (or every element of a
	// list or map of strings) may take; empty: any.
	OneOf []string
}

// Block is a nested block of a config block, with a schema of its own:
//
//	config {
//	  backend "a" { ... }   // no labels: write backend { ... }
//	}
//
// A block without Repeated may appear at most once and arrives as a
// Config (absent: no key); a Repeated one arrives as a []Config in the
// order written (absent: no key). Required asks for at least one.
// Blocks take no labels: name things with an attribute inside.
type Block struct {
	Name        string
	Description string
	Repeated    bool
	Required    bool
	Schema      Schema
}

// Schema declares the attributes and nested blocks a plugin accepts in its
// config block. The host decodes the operator's block against it and
// reports mistakes with the file and line of mesh.hcl before the plugin is
// configured.
type Schema struct {
	Attributes []Attribute
	Blocks     []Block
}

// Config is a decoded plugin configuration: attribute or block name to
// value. Values have the Go type their AttrType documents (string,
// float64, int64, bool, []string, []int64, map[string]int64, ...);
// durations arrive as strings and are read with Duration; a nested block
// is a Config, a repeated one a []Config. Config.Decode stores it all into
// a Go struct at once.
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
	URL     string        // base URL of the instance, as Endpoint.URL: http://127.0.0.1:41234
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
	URL    string // base URL of the instance, "http://HOST:PORT", no path (see the package doc)
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
