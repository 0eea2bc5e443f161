package pluginhost

import (
	"fmt"
	"sort"

	"github.com/mycelium-mesh/mesh/plugins/healthhttp"
	"github.com/mycelium-mesh/mesh/plugins/healthtcp"
	"github.com/mycelium-mesh/mesh/plugins/hostingapp"
	"github.com/mycelium-mesh/mesh/plugins/hostingcfpages"
	"github.com/mycelium-mesh/mesh/plugins/hostinglocal"
	"github.com/mycelium-mesh/mesh/plugins/hostings3"
	"github.com/mycelium-mesh/mesh/plugins/leastloaded"
	"github.com/mycelium-mesh/mesh/plugins/repofs"
	"github.com/mycelium-mesh/mesh/plugins/repohttp"
	"github.com/mycelium-mesh/mesh/plugins/roundrobin"
	"github.com/mycelium-mesh/mesh/sdk"
)

// ServeArg is the hidden subcommand under which the mesh binary serves a
// bundled plugin: `mesh plugin-serve KIND NAME`.
const ServeArg = "plugin-serve"

// bundled maps kind and name to the constructor of each plugin compiled
// into mesh.
var bundled = map[string]map[string]func() sdk.Plugin{
	sdk.KindRepo: {
		repofs.Name:   func() sdk.Plugin { return repofs.New() },
		repohttp.Name: func() sdk.Plugin { return repohttp.New() },
	},
	sdk.KindBalancer: {
		roundrobin.Name:  func() sdk.Plugin { return roundrobin.New() },
		leastloaded.Name: func() sdk.Plugin { return leastloaded.New() },
	},
	sdk.KindHealth: {
		healthhttp.Name: func() sdk.Plugin { return healthhttp.New() },
		healthtcp.Name:  func() sdk.Plugin { return healthtcp.New() },
	},
	sdk.KindHosting: {
		hostinglocal.Name:   func() sdk.Plugin { return hostinglocal.New() },
		hostingapp.Name:     func() sdk.Plugin { return hostingapp.New() },
		hostings3.Name:      func() sdk.Plugin { return hostings3.New() },
		hostingcfpages.Name: func() sdk.Plugin { return hostingcfpages.New() },
	},
}

// IsBundled reports whether kind/name is compiled into mesh.
func IsBundled(kind, name string) bool {
	_, ok := bundled[kind][name]
	return ok
}

// Bundled lists the bundled plugins, sorted by kind then name.
func Bundled() []sdk.Info {
	var out []sdk.Info
	for _, byName := range bundled {
		for _, mk := range byName {
			out = append(out, mk().Info())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// BundledSchema returns the config schema of a bundled plugin without
// launching it, so `mesh validate` can check plugin blocks.
func BundledSchema(kind, name string) (sdk.Schema, bool) {
	mk, ok := bundled[kind][name]
	if !ok {
		return sdk.Schema{}, false
	}
	return mk().Schema(), true
}

// BundledInfo returns the Info of a bundled plugin without launching it.
func BundledInfo(kind, name string) (sdk.Info, bool) {
	mk, ok := bundled[kind][name]
	if !ok {
		return sdk.Info{}, false
	}
	return mk().Info(), true
}

// ServeBundled serves the bundled plugin kind/name on this process's
// stdio, the way the host expects after re-executing its own binary. It
// returns when the host stops the plugin.
func ServeBundled(kind, name string) error {
	mk, ok := bundled[kind][name]
	if !ok {
		return fmt.Errorf("%w: %s %q", ErrUnknownBundled, kind, name)
	}
	sdk.Serve(mk())
	return nil
}
