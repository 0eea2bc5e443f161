package mesh

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/mycelium-mesh/mesh/core/config"
)

// restartNotes lists the changes between old and next that a reload does not
// apply to a running mesh. App blocks (plans, budgets, strip_prefix) and
// trusted keys are applied live; everything named here needs `mesh run` to be
// restarted.
func restartNotes(old, next *config.Config, oldPlugins, nextPlugins string) []string {
	var notes []string
	note := func(changed bool, what string) {
		if changed {
			notes = append(notes, what+" changed: restart the mesh to apply")
		}
	}
	note(fmt.Sprint(old.Agents) != fmt.Sprint(next.Agents), "agents")
	note(fmt.Sprint(old.Edge) != fmt.Sprint(next.Edge), "edge")
	note(old.Control != next.Control, "control")
	note(old.Health != next.Health, "health")
	note(old.Repo != next.Repo, "repo")
	note(old.DataDir != next.DataDir || old.RunDir != next.RunDir, "data_dir/run_dir")
	note(old.Warmup != next.Warmup || old.Grace != next.Grace, "warmup/grace")
	note(old.LogLevel != next.LogLevel, "log_level")
	note(oldPlugins != nextPlugins, "plugins")
	for _, a := range next.Apps {
		o, ok := old.App(a.Name)
		if (ok && o.Balancer != a.Balancer) || (!ok && a.Balancer != next.Edge.Balancer) {
			notes = append(notes, fmt.Sprintf("app %q: balancer %q: restart the mesh to apply", a.Name, a.Balancer))
		}
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
