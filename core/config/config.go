// Package config reads mesh.hcl, the single configuration file of Mycelium
// Mesh, decodes it with HCL and validates it.
//
// Every attribute is optional and has a default, so an empty file is a
// complete configuration (three agents, the edge on 127.0.0.1:8080, bundled
// plugins, no apps). Relative paths are resolved against the directory of the
// configuration file, not the working directory. Durations are strings such
// as "2s" or "250ms". The function env("NAME") reads an environment variable
// in any expression and yields "" when it is unset.
//
// Mistakes come back as hcl.Diagnostics whose Subject is the offending
// attribute, label or block, so WriteDiagnostics can print the file, line and
// source text of each one.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/mycelium-mesh/mesh/core/pluginreg"
)

// Restart policies of an app.
const (
	RestartNever     = "never"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Plugin kinds accepted as the first label of a plugin block.
const (
	KindRepo     = "repo"
	KindBalancer = "balancer"
	KindHealth   = "health"
	KindHosting  = "hosting"
)

// pluginKinds are the plugin kinds a plugin block may declare.
var pluginKinds = map[string]bool{KindRepo: true, KindBalancer: true, KindHealth: true, KindHosting: true}

// IsBundled reports whether name is a plugin of the given kind compiled
// into the binary (registered with core/pluginreg by its assembly).
func IsBundled(kind, name string) bool {
	_, ok := pluginreg.Lookup(kind, name)
	return ok
}

// bundledNames lists the bundled plugins of a kind, for messages.
func bundledNames(kind string) string {
	names := pluginreg.Names(kind)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Config is a decoded and validated mesh.hcl.
type Config struct {
	// File is the absolute path of the configuration file.
	File string

	DataDir     string        // fabric store (absolute)
	RunDir      string        // extracted spores and instance directories (absolute)
	Warmup      time.Duration // blue/green: how long the old instance drains once the new one is ready
	Grace       time.Duration // SIGTERM to SIGKILL
	TrustedKeys []string      // "ed25519:<base64>" key text, or absolute paths of .pub files
	LogLevel    string        // trace, debug, info, warn, error or off
	// ProgressDeadline is how long a rollout may take to get every desired
	// instance ready before it counts as failed (and is reverted); an app
	// block may set its own.
	ProgressDeadline time.Duration
	// MinHealthy is how long each instance of a rolled-out digest must stay
	// ready before the rollout succeeds; "0s" lets a rollout succeed at
	// the first ready instances. An app block may set its own.
	MinHealthy time.Duration

	Repo    RepoConfig
	Edge    EdgeConfig
	Control ControlConfig
	Agents  AgentsConfig
	Health  HealthConfig
	Plugins []PluginBlock
	Apps    []AppConfig
	// Provision is the provision block: how `mesh provision` maps hosting
	// providers to hosting plugins.
	Provision ProvisionConfig
	// Cluster is the cluster block, or nil when there is none: the
	// fabric is then embedded in this one process.
	Cluster *ClusterConfig
}

// RepoConfig is the repo block.
type RepoConfig struct {
	Dir     string // local content-addressed store (absolute)
	Backend string // name of a repo plugin; "" keeps blobs local only
}

// EdgeConfig is the edge block.
type EdgeConfig struct {
	Listen            string // host:port of the HTTP edge
	Admin             string // host:port of the admin listener (/metrics); "" disables it
	LogInterval       time.Duration
	Balancer          string // default balancer plugin for apps that name none
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	UpstreamTimeout   time.Duration
	MaxHeaderBytes    int

	RequestBodyTimeout time.Duration  // receiving a request body
	WriteTimeout       time.Duration  // relaying a non-streaming answer
	StreamIdleTimeout  time.Duration  // silence allowed on streams and upgraded connections
	MaxConnections     int            // client connections at once; 0: from the descriptor limit
	TrustedProxies     []netip.Prefix // peers whose forwarding headers are believed
	// MaxConnsPerEndpoint caps the edge's connections to one endpoint,
	// busy and idle; a request finding them all busy waits for one.
	MaxConnsPerEndpoint int
}

// ControlConfig is the control block: where the control API listens.
type ControlConfig struct {
	Socket string // unix socket path (absolute); "" disables the socket
	Listen string // optional TCP host:port; requires Token
	Token  string // bearer token for the TCP listener
}

// AgentsConfig is the agents block, with node IDs resolved.
type AgentsConfig struct {
	Count         int      // number of agents
	NodeIDs       []string // one per agent: from node blocks, or n1..nN from count
	HealthTimeout time.Duration
	// EnforceNutrients writes each instance's nutrients and MaxPids into
	// its cgroup (enforce_nutrients, default off).
	EnforceNutrients bool
	MaxPids          int // pids limit per instance with EnforceNutrients (max_pids); 0 = DefaultMaxPids
	// Adopt (adopt, default off) lets workloads outlive the mesh: a
	// stopping or crashed mesh leaves them serving, and the next start
	// adopts those that still match their record and plan.
	Adopt bool
}

// HealthConfig is the health block: how agents check instances.
type HealthConfig struct {
	Plugin  string // health plugin name
	Path    string // default health path of apps
	Timeout time.Duration
}

// PluginBlock is one plugin "<kind>" "<name>" block.
type PluginBlock struct {
	Kind    string // repo, balancer or health
	Name    string
	Command string // absolute path of an external plugin; "" for a bundled one
	SHA256  string // expected sha256 of Command as 64 lowercase hex, or ""
	// Config is the raw nested config block, or nil when there is none. It is
	// decoded against the schema the plugin declares once the plugin runs.
	Config    hcl.Body
	DeclRange hcl.Range
}

// AppConfig is one app "<name>" block, with defaults applied.
type AppConfig struct {
	Name        string
	Digest      string // "sha256:<hex>", or "" when Spore is set
	Spore       string // absolute path of a spore to publish at start, or ""
	Min         int
	Max         int
	Port        int
	Restart     string // never, on-failure or always
	StripPrefix bool
	Balancer    string // effective balancer (the edge default when the block names none)
	HealthPath  string // effective health path (the health block's when the block names none)
	Budget      *BudgetConfig
	// ProgressDeadline is the app's rollout deadline (the top-level one when
	// the block sets none). It is not part of Hash: changing it applies to
	// later rollouts and republishes nothing.
	ProgressDeadline time.Duration
	// MinHealthy is the app's min_healthy (the top-level one when the block
	// sets none); like ProgressDeadline, not part of Hash.
	MinHealthy time.Duration
	// Logs is the logs block with defaults applied. It is not part of
	// Hash: it applies to the next instance started, without a new plan.
	Logs      LogsConfig
	DeclRange hcl.Range
	// Hash is a stable hash of the values above (not of DeclRange): two loads
	// of an unchanged block give the same Hash. For a Spore app it covers
	// the path, not the file's bytes; compare published digests for that.
	Hash string
}

// BudgetConfig is an app's budget block. Zero means unlimited.
type BudgetConfig struct {
	MaxInstances int
	CPUMilli     int
	MemoryMB     int
}

// App returns the app block with the given name.
func (c *Config) App(name string) (AppConfig, bool) {
	for _, a := range c.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return AppConfig{}, false
}

// Plugin returns the plugin block of the given kind and name.
func (c *Config) Plugin(kind, name string) (PluginBlock, bool) {
	for _, p := range c.Plugins {
		if p.Kind == kind && p.Name == name {
			return p, true
		}
	}
	return PluginBlock{}, false
}

// hashApp computes AppConfig.Hash.
func hashApp(a AppConfig) string {
	type hashed struct {
		Name, Digest, Spore  string
		Min, Max, Port       int
		Restart              string
		StripPrefix          bool
		Balancer, HealthPath string
		Budget               *BudgetConfig
	}
	b, err := json.Marshal(hashed{
		Name: a.Name, Digest: a.Digest, Spore: a.Spore,
		Min: a.Min, Max: a.Max, Port: a.Port, Restart: a.Restart,
		StripPrefix: a.StripPrefix, Balancer: a.Balancer, HealthPath: a.HealthPath,
		Budget: a.Budget,
	})
	if err != nil {
		panic("config: hashing app block: " + err.Error()) // plain data, cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
