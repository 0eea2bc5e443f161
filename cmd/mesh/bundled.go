package main

// The plugins compiled into mesh: plugins/bundled registers each with
// core/pluginreg, which the engine reads.
import _ "github.com/mycelium-mesh/mesh/plugins/bundled"
