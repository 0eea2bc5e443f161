package pluginhost_test

// The tests use the plugins the mesh binary bundles.
import _ "github.com/mycelium-mesh/mesh/plugins/bundled"
