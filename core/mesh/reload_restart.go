package mesh

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/mycelium-mesh/mesh/core/config"
)

// restartNotes lists the changes between old (the configuration in force,
// see runningConfig) and next (the file) that a reload does not apply to a
// running mesh, one per setting, naming the value in force and the file's.
// App blocks (plans, budgets, strip_prefix, and so health.path, which apps
// inherit) and trusted keys are applied live; everything named here needs
// `mesh run` to be restarted.
func restartNotes(old, next *config.Config, oldPlugins, nextPlugins string) []string {
	var notes []string
	note := func(what string, was, now any) {
		if fmt.Sprint(was) != fmt.Sprint(now) {
			notes = append(notes, fmt.Sprintf("%s %q -> %q: restart the mesh to apply", what, fmt.Sprint(was), fmt.Sprint(now)))
		}
	}
	secret := func(what, was, now string) {
		if was != now {
			notes = append(notes, what+" changed: restart the mesh to apply")
		}
	}
	note("data_dir", old.DataDir, next.DataDir)
	note("run_dir", old.RunDir, next.RunDir)
	note("warmup", old.Warmup, next.Warmup)
	note("grace", old.Grace, next.Grace)
	note("log_level", old.LogLevel, next.LogLevel)
	note("repo.dir", old.Repo.Dir, next.Repo.Dir)
	note("repo.backend", old.Repo.Backend, next.Repo.Backend)
	note("edge.listen", old.Edge.Listen, next.Edge.Listen)
	note("edge.admin", old.Edge.Admin, next.Edge.Admin)
	note("edge.log_interval", old.Edge.LogInterval, next.Edge.LogInterval)
	note("edge.balancer", old.Edge.Balancer, next.Edge.Balancer)
	note("edge.read_header_timeout", old.Edge.ReadHeaderTimeout, next.Edge.ReadHeaderTimeout)
	note("edge.idle_timeout", old.Edge.IdleTimeout, next.Edge.IdleTimeout)
	note("edge.upstream_timeout", old.Edge.UpstreamTimeout, next.Edge.UpstreamTimeout)
	note("edge.max_header_bytes", old.Edge.MaxHeaderBytes, next.Edge.MaxHeaderBytes)
	note("edge.request_body_timeout", old.Edge.RequestBodyTimeout, next.Edge.RequestBodyTimeout)
	note("edge.write_timeout", old.Edge.WriteTimeout, next.Edge.WriteTimeout)
	note("edge.stream_idle_timeout", old.Edge.StreamIdleTimeout, next.Edge.StreamIdleTimeout)
	note("edge.max_connections", old.Edge.MaxConnections, next.Edge.MaxConnections)
	note("edge.max_conns_per_endpoint", old.Edge.MaxConnsPerEndpoint, next.Edge.MaxConnsPerEndpoint)
	note("edge.trusted_proxies", fmt.Sprint(old.Edge.TrustedProxies), fmt.Sprint(next.Edge.TrustedProxies))
	note("control.socket", old.Control.Socket, next.Control.Socket)
	note("control.listen", old.Control.Listen, next.Control.Listen)
	secret("control.token", old.Control.Token, next.Control.Token)
	note("agents (node IDs)", strings.Join(old.Agents.NodeIDs, ","), strings.Join(next.Agents.NodeIDs, ","))
	note("agents.health_timeout", old.Agents.HealthTimeout, next.Agents.HealthTimeout)
	note("health.plugin", old.Health.Plugin, next.Health.Plugin)
	note("health.timeout", old.Health.Timeout, next.Health.Timeout)
	secret("plugins", oldPlugins, nextPlugins)
	note("cluster", clusterSummary(old.Cluster), clusterSummary(next.Cluster)) // cluster.go
	for _, a := range next.Apps {
		o, ok := old.App(a.Name)
		// The edge picks each app's balancer when it starts: a new app
		// gets the edge default it started with.
		was := old.Edge.Balancer
		if ok {
			was = o.Balancer
		}
		note(fmt.Sprintf("app %q: balancer", a.Name), was, a.Balancer)
	}
	return notes
}

// pluginsFingerprint hashes every plugin block: its labels, command, sha256
// and the source text of its config block, read from the file as it is now —
// so it is taken when a configuration is loaded and kept with it.
func pluginsFingerprint(cfg *config.Config) string {
	h := sha256.New()
	src := map[string][]byte{}
	for _, p := range cfg.Plugins {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", p.Kind, p.Name, p.Command, p.SHA256)
		body, ok := p.Config.(*hclsyntax.Body)
		if !ok {
			continue
		}
		r := body.SrcRange
		b, seen := src[r.Filename]
		if !seen {
			b, _ = os.ReadFile(r.Filename)
			src[r.Filename] = b
		}
		if r.Start.Byte >= 0 && r.End.Byte <= len(b) && r.Start.Byte <= r.End.Byte {
			h.Write(b[r.Start.Byte:r.End.Byte])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
