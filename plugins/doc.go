// Package plugins is the home of the plugins bundled with mesh, one package
// each. They import only the sdk, exactly like a third-party plugin, and
// run out of process: the mesh binary serves them in its hidden
// `plugin-serve` mode.
//
// A plugin is bundled by one line in plugins/bundled, which registers its
// constructor with core/pluginreg; the engine (core/config, core/pluginhost)
// reads that registry and imports no plugin.
package plugins
