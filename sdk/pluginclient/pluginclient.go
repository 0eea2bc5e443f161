// Package pluginclient is the host side of the Mycelium Mesh plugin
// protocol: the go-plugin handshake and client set a host launches plugins
// with, and the typed clients it dispenses. The mesh host uses it, and so
// does sdk/plugintest, so that a plugin's tests talk to it exactly as the
// mesh does. Plugin authors do not need it: they implement the interfaces
// of package sdk and call sdk.Serve.
//
//	client := plugin.NewClient(&plugin.ClientConfig{
//		HandshakeConfig:  pluginclient.Handshake,
//		VersionedPlugins: pluginclient.VersionedPlugins(pluginclient.APIVersions),
//		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
//		AutoMTLS:         true,
//		Cmd:              exec.Command(path),
//	})
//	rpc, _ := client.Client()
//	raw, _ := rpc.Dispense(sdk.KindHealth)
//	hc := raw.(pluginclient.Health)
package pluginclient

import (
	"context"

	"github.com/hashicorp/go-plugin"

	"github.com/mycelium-mesh/mesh/sdk"
	"github.com/mycelium-mesh/mesh/sdk/internal/hostapi"
)

// Handshake is the go-plugin handshake every plugin answers.
var Handshake = hostapi.Handshake

// APIVersions lists the plugin API versions this module implements, the
// default set a host offers.
var APIVersions = append([]uint32(nil), hostapi.APIVersions...)

// ErrStreamClosed is returned by a Balancer's Balance when the stream to
// the plugin broke while the call waited for its policy, and after Close.
var ErrStreamClosed = hostapi.ErrStreamClosed

// ErrNotValidated is returned (wrapped) by ValidateConfig when the plugin
// cannot check a configuration without applying it: it does not implement
// sdk.ConfigValidator, or it was built with an sdk that predates the call.
var ErrNotValidated = hostapi.ErrNotValidated

// Remote is implemented by every client dispensed from PluginSet. It
// offers the base calls with a context and an error, which sdk.Plugin's
// Info and Schema cannot.
type Remote interface {
	sdk.Plugin
	GetInfo(ctx context.Context) (sdk.Info, error)
	GetSchema(ctx context.Context) (sdk.Schema, error)
	// ValidateConfig asks whether the plugin would accept cfg, without
	// applying it (see sdk.ConfigValidator).
	ValidateConfig(ctx context.Context, cfg sdk.Config) error
}

// Balancer is the client of a balancer plugin. All Balance calls share
// one long-lived stream, opened on first use and reopened after it
// breaks, so concurrent calls are safe. Close ends it.
type Balancer interface {
	Remote
	sdk.Balancer
	Close() error
}

// Health is the client of a health checker plugin.
type Health interface {
	Remote
	sdk.HealthChecker
}

// Repo is the client of a repo backend plugin. Blobs travel in chunks of
// at most sdk.ChunkSize.
type Repo interface {
	Remote
	sdk.RepoBackend
}

// Hosting is the client of a hosting backend plugin.
type Hosting interface {
	Remote
	sdk.HostingBackend
}

// PluginSet is the go-plugin set a host dispenses from: one entry per
// plugin kind, keyed by sdk's Kind constants. Each dispenses a Balancer,
// Health, Repo or Hosting.
func PluginSet() plugin.PluginSet { return hostapi.ClientPluginSet() }

// VersionedPlugins maps each API version to PluginSet, for
// plugin.ClientConfig.VersionedPlugins.
func VersionedPlugins(versions []uint32) map[int]plugin.PluginSet {
	out := make(map[int]plugin.PluginSet, len(versions))
	for _, v := range versions {
		out[int(v)] = PluginSet()
	}
	return out
}
