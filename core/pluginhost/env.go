package pluginhost

import (
	"os"
	"strings"
)

// TokenEnv carries the control token in the mesh's environment; no plugin
// process gets it.
const TokenEnv = "MESH_TOKEN"

// pluginEnv is the environment of a plugin process: the host's own, less
// TokenEnv and every variable whose value contains one of secrets.
// go-plugin adds its handshake variables after these.
func pluginEnv(secrets []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == TokenEnv || holdsSecret(v, secrets) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func holdsSecret(v string, secrets []string) bool {
	for _, s := range secrets {
		if s != "" && strings.Contains(v, s) {
			return true
		}
	}
	return false
}
