package config

import "github.com/mycelium-mesh/mesh/core/config/defaults"

// Defaults applied when an attribute is absent. The values live in the
// defaults package, the one table the edge and the agents use too.
const (
	DefaultDataDir           = defaults.DataDir
	DefaultRunDir            = defaults.RunDir
	DefaultWarmup            = defaults.Warmup
	DefaultGrace             = defaults.Grace
	DefaultLogLevel          = defaults.LogLevel
	DefaultRepoDir           = defaults.RepoDir
	DefaultRepoBackend       = defaults.RepoBackend
	DefaultEdgeListen        = defaults.EdgeListen
	DefaultEdgeAdmin         = defaults.EdgeAdmin
	DefaultLogInterval       = defaults.LogInterval
	DefaultBalancer          = defaults.Balancer
	DefaultReadHeaderTimeout = defaults.ReadHeaderTimeout
	DefaultIdleTimeout       = defaults.IdleTimeout
	DefaultUpstreamTimeout   = defaults.UpstreamTimeout
	DefaultMaxHeaderBytes    = defaults.MaxHeaderBytes
	DefaultControlSocket     = defaults.ControlSocket
	DefaultAgentCount        = defaults.AgentCount
	DefaultHealthTimeout     = defaults.HealthTimeout
	DefaultProgressDeadline  = defaults.ProgressDeadline
	DefaultMinHealthy        = defaults.MinHealthy
	DefaultHealthPlugin      = defaults.HealthPlugin
	DefaultHealthPath        = defaults.HealthPath
	DefaultCheckTimeout      = defaults.CheckTimeout
	DefaultAppMin            = defaults.AppMin
	DefaultRestart           = defaults.Restart
	DefaultStripPrefix       = defaults.StripPrefix

	DefaultRequestBodyTimeout  = defaults.RequestBodyTimeout
	DefaultWriteTimeout        = defaults.WriteTimeout
	DefaultStreamIdleTimeout   = defaults.StreamIdleTimeout
	DefaultMaxConnections      = defaults.MaxConnections
	DefaultMaxConnsPerEndpoint = defaults.MaxConnsPerEndpoint
)
