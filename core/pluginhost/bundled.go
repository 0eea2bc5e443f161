package pluginhost

import (
	"fmt"

	"github.com/mycelium-mesh/mesh/core/pluginreg"
	"github.com/mycelium-mesh/mesh/sdk"
)

// ServeArg is the hidden subcommand under which the mesh binary serves a
// bundled plugin: `mesh plugin-serve KIND NAME`.
const ServeArg = "plugin-serve"

// The bundled plugins are those the binary registered with core/pluginreg
// (cmd/mesh imports plugins/bundled); this package imports none of them.

// IsBundled reports whether kind/name is compiled into mesh.
func IsBundled(kind, name string) bool {
	_, ok := pluginreg.Lookup(kind, name)
	return ok
}

// Bundled lists the bundled plugins, sorted by kind then name.
func Bundled() []sdk.Info { return pluginreg.Infos() }

// BundledSchema returns the config schema of a bundled plugin without
// launching it, so `mesh validate` can check plugin blocks.
func BundledSchema(kind, name string) (sdk.Schema, bool) {
	mk, ok := pluginreg.Lookup(kind, name)
	if !ok {
		return sdk.Schema{}, false
	}
	return mk().Schema(), true
}

// BundledInfo returns the Info of a bundled plugin without launching it.
func BundledInfo(kind, name string) (sdk.Info, bool) {
	mk, ok := pluginreg.Lookup(kind, name)
	if !ok {
		return sdk.Info{}, false
	}
	return mk().Info(), true
}

// ServeBundled serves the bundled plugin kind/name on this process's
// stdio, the way the host expects after re-executing its own binary. It
// returns when the host stops the plugin.
func ServeBundled(kind, name string) error {
	mk, ok := pluginreg.Lookup(kind, name)
	if !ok {
		return fmt.Errorf("%w: %s %q", ErrUnknownBundled, kind, name)
	}
	sdk.Serve(mk())
	return nil
}
