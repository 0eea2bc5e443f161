// Package pluginreg is the registry of the plugins compiled into the mesh
// binary ("bundled" plugins): kind and name to constructor.
//
// The engine never imports a plugin. Whoever assembles a binary fills the
// registry instead (cmd/mesh imports plugins/bundled, whose init registers
// every bundled plugin), and the engine reads it: core/config to accept a
// bundled plugin's name without a command, core/pluginhost to describe
// and serve one. So the dependency arrows point one way, from the binary
// down to the plugins and to the engine.
//
// Register is called from init functions; the other calls read a registry
// that no longer changes, and are safe from any goroutine.
package pluginreg

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/mycelium-mesh/mesh/sdk"
)

var (
	mu      sync.RWMutex
	plugins = map[string]map[string]func() sdk.Plugin{}
)

// Register adds the plugin each constructor builds, under the kind and
// name its Info declares. It panics on a name registered twice, a mistake
// of the binary's assembly.
func Register(constructors ...func() sdk.Plugin) {
	mu.Lock()
	defer mu.Unlock()
	for _, mk := range constructors {
		info := mk().Info()
		if plugins[info.Kind] == nil {
			plugins[info.Kind] = map[string]func() sdk.Plugin{}
		}
		if _, dup := plugins[info.Kind][info.Name]; dup {
			panic(fmt.Sprintf("pluginreg: %s plugin %q registered twice", info.Kind, info.Name))
		}
		plugins[info.Kind][info.Name] = mk
	}
}

// Lookup returns the constructor of the bundled plugin kind/name.
func Lookup(kind, name string) (func() sdk.Plugin, bool) {
	mu.RLock()
	defer mu.RUnlock()
	mk, ok := plugins[kind][name]
	return mk, ok
}

// Names lists the bundled plugins of a kind, sorted.
func Names(kind string) []string {
	mu.RLock()
	defer mu.RUnlock()
	var out []string
	for name := range plugins[kind] {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Infos describes every bundled plugin, sorted by kind then name.
func Infos() []sdk.Info {
	mu.RLock()
	defer mu.RUnlock()
	var out []sdk.Info
	for _, byName := range plugins {
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
