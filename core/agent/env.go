package agent

import (
	"os"
	"sort"
	"strings"
)

// TokenEnv is the variable the control token travels in; no workload ever
// gets it.
const TokenEnv = "MESH_TOKEN"

// workloadEnv builds the environment of a workload: a few neutral variables
// of the mesh, then the manifest's env, then the mesh's own variables.
// TokenEnv and every variable whose value contains one of secrets (the
// control token) are left out, whatever their source.
func workloadEnv(manifest, mesh map[string]string, secrets []string) []string {
	vars := map[string]string{}
	for _, k := range []string{"PATH", "LANG", "TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			vars[k] = v
		}
	}
	for k, v := range manifest {
		vars[k] = v
	}
	for k, v := range mesh {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		if k == TokenEnv || containsSecret(v, secrets) {
			continue
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func containsSecret(v string, secrets []string) bool {
	for _, s := range secrets {
		if s != "" && strings.Contains(v, s) {
			return true
		}
	}
	return false
}
