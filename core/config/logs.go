package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/mycelium-mesh/mesh/core/config/defaults"
)

// Workload log rotation defaults and the pids limit of an instance when
// nutrients are enforced, from the one table of defaults.
const (
	DefaultLogMaxSize  = defaults.LogMaxSize
	DefaultLogMaxFiles = defaults.LogMaxFiles
	DefaultMaxPids     = defaults.MaxPids
)

// LogsConfig is an app's logs block: each of stdout and stderr of an
// instance is rotated at MaxSize bytes, and MaxFiles files are kept.
type LogsConfig struct {
	MaxSize  int64
	MaxFiles int
}

var logsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "max_size"}, {Name: "max_files"}}}

// appLogs decodes the logs block of an app, if any, into app.Logs.
func (d *decoder) appLogs(blocks hcl.Blocks, app *AppConfig) {
	app.Logs = LogsConfig{MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles}
	var seen *hcl.Block
	for _, b := range blocks {
		if b.Type != "logs" {
			continue
		}
		if seen != nil {
			d.errorf(b.DefRange, "Duplicate logs block", "Only one logs block is allowed; another one was declared at %s.", at(seen.DefRange))
			continue
		}
		seen = b
		c := d.content(b.Body, logsSchema)
		if c == nil {
			continue
		}
		var size string
		if rng, ok := d.str(c.Attributes, "max_size", &size); ok {
			n, err := parseSize(size)
			switch {
			case err != nil:
				d.errorf(rng, "Invalid size", "max_size %q: %s; write a size such as \"10MB\" (B, KB, MB, GB; powers of 1024).", size, err)
			case n < 4096:
				d.errorf(rng, "Log size too small", "max_size must be at least 4KB; got %q.", size)
			default:
				app.Logs.MaxSize = n
			}
		}
		if rng, ok := d.integer(c.Attributes, "max_files", &app.Logs.MaxFiles); ok && (app.Logs.MaxFiles < 1 || app.Logs.MaxFiles > 1000) {
			d.errorf(rng, "Invalid max_files", "max_files must be between 1 and 1000 (the current file included); got %d.", app.Logs.MaxFiles)
			app.Logs.MaxFiles = DefaultLogMaxFiles
		}
	}
}

// agentsLimits decodes enforce_nutrients, max_pids and adopt of the agents
// block.
func (d *decoder) agentsLimits(attrs hcl.Attributes, cfg *Config) {
	d.boolean(attrs, "enforce_nutrients", &cfg.Agents.EnforceNutrients)
	d.boolean(attrs, "adopt", &cfg.Agents.Adopt)
	if rng, ok := d.integer(attrs, "max_pids", &cfg.Agents.MaxPids); ok && cfg.Agents.MaxPids < 1 {
		d.errorf(rng, "Invalid max_pids", "max_pids must be at least 1; got %d.", cfg.Agents.MaxPids)
		cfg.Agents.MaxPids = 0
	}
}

// parseSize reads "512", "64KB", "10MB" or "1GB" (powers of 1024; KiB, MiB
// and GiB are accepted too) as bytes.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a whole number of bytes, KB, MB or GB")
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}
