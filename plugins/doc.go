// Package plugins is the home of the plugins bundled with mesh, one package
// each. They import only the sdk, exactly like a third-party plugin, and
// run out of process: the mesh binary serves them in its hidden
// `plugin-serve` mode.
package plugins
