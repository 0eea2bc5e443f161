package main

// The bundled plugins, served in plugin-serve mode.
import _ "github.com/mycelium-mesh/mesh/plugins/bundled"
