// Package defaults is the one table of default values of Mycelium Mesh.
//
// Every value an operator may leave out of mesh.hcl, and every tunable the
// components (edge, agents) fall back to when their options leave it zero,
// is defined here once. The config package fills absent attributes from this
// table and the components default their zero options from it, so what the
// documentation says, what `mesh validate` assumes and what runs are the same
// value. The package has no dependencies: any part of the mesh may import it.
package defaults

import "time"

// The mesh: files and the blue/green lifecycle.
const (
	DataDir       = "./.mesh/data"         // fabric.db and applied.json
	RunDir        = "./.mesh/run"          // extracted spores and instance directories
	RepoDir       = "./.mesh/repo"         // the local content-addressed store
	RepoBackend   = ""                     // no repo plugin: blobs stay local
	ControlSocket = "./.mesh/control.sock" // the control API's unix socket
	LogLevel      = "info"
	Warmup        = 2 * time.Second // how long a replaced instance drains
	Grace         = 5 * time.Second // SIGTERM to SIGKILL
)

// Agents and health checking.
const (
	AgentCount    = 3
	HealthTimeout = 6 * time.Second // how long a new instance may take to turn healthy
	// ProgressDeadline is how long a rollout may take before the mesh
	// reverts it to the last good digest.
	ProgressDeadline = 5 * time.Minute
	// MinHealthy is how long every instance of a rolled-out digest must
	// stay ready before the rollout succeeds: one that fails (crashes) in
	// that time fails the rollout.
	MinHealthy   = 10 * time.Second
	HealthPlugin = "http"
	HealthPath   = "/health"
	CheckTimeout = time.Second // one health check (health.timeout)
)

// Workload containment and logs.
const (
	LogMaxSize  = 10 << 20 // bytes per stream (stdout, stderr) of an instance before it rotates
	LogMaxFiles = 3        // files kept per stream, the current one included
	MaxPids     = 4096     // pids limit of an instance when nutrients are enforced
)

// Apps.
const (
	AppMin      = 1
	Restart     = "on-failure"
	StripPrefix = true
)

// The edge: listeners and client-side timeouts.
const (
	EdgeListen        = "127.0.0.1:8080"
	EdgeAdmin         = "127.0.0.1:9090" // /metrics
	LogInterval       = 10 * time.Second // the edge's counters log line
	Balancer          = "round-robin"
	ReadHeaderTimeout = 5 * time.Second  // a client sending its request header
	IdleTimeout       = 90 * time.Second // a client's idle keep-alive connection
	MaxHeaderBytes    = 64 << 10         // larger request headers get 431

	RequestBodyTimeout = 60 * time.Second // a client sending its request body
	WriteTimeout       = 60 * time.Second // a non-streaming answer, upstream read and client write
	StreamIdleTimeout  = 5 * time.Minute  // a streaming answer or upgraded connection with no traffic
	MaxConnections     = 0                // 0: sized from the open file limit at start

	AdminReadHeaderTimeout = 5 * time.Second  // the admin (/metrics) listener
	AdminIdleTimeout       = 60 * time.Second // the admin (/metrics) listener
)

// The edge: upstream connections and balancing.
const (
	UpstreamTimeout     = 30 * time.Second // sending a request and awaiting the response header
	DialTimeout         = 3 * time.Second  // connecting to an endpoint
	UpstreamIdle        = 30 * time.Second // a pooled endpoint connection unused this long is closed
	MaxIdleConnsPerHost = 1024
	MaxConnsPerEndpoint = 1024                   // busy and idle; requests beyond wait for one
	ReportInterval      = 500 * time.Millisecond // load reports to the balancer plugin
	BalanceTimeout      = 2 * time.Second        // one Balance call to the balancer plugin
)

// The edge: retries and passive health checking (outlier ejection).
const (
	RetryBudgetRatio        = 0.2 // share of requests that may be replayed...
	RetryBudgetMinPerSec    = 3   // ...on top of this many replays per second
	ConsecutiveConnFailures = 3
	Consecutive5xx          = 5
	BaseEjection            = 10 * time.Second // grows with each ejection
	MaxEjection             = 5 * time.Minute
	MaxEjectionPercent      = 50               // share of an app's endpoints
	SlowStart               = 10 * time.Second // weight ramps from 10% to 100%
)

// A cluster: the fabric on etcd, this host's identity.
const (
	// Advertise is the address this host's workloads listen on and its
	// endpoints carry; loopback suits a cluster on one machine only.
	Advertise       = "127.0.0.1"
	EtcdPrefix      = "/mesh/"         // the fabric's key space in etcd
	EtcdLeaseTTL    = 5 * time.Second  // a dead host's endpoints and claims expire after this
	EtcdDialTimeout = 10 * time.Second // each etcd request, and each connection attempt
	// ClusterAgentCount is the agents a host runs in a cluster: one, named
	// after the host, so an app's instances spread one per host.
	ClusterAgentCount = 1
)
