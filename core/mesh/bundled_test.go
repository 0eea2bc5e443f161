package mesh

// The tests use the plugins the mesh binary bundles.
import _ "github.com/mycelium-mesh/mesh/plugins/bundled"
