package pluginhost

import (
	"math"

	"github.com/hashicorp/go-hclog"
)

// pluginLogger is the logger go-plugin writes a plugin's log lines to.
//
// A plugin logs JSON lines to its stderr and go-plugin decodes their fields
// with encoding/json, which makes every number a float64: an integer field
// such as bytes=8900000 would print as bytes=8.9e+06. JSON does not tell
// 2 from 2.0, so a float64 without a fraction, within the range where
// float64 holds integers exactly, is turned back into an int64 before the
// line reaches the host's log.
//
// It also keeps every line under the plugin's own name: go-plugin would
// otherwise name them after the executable, which is "mesh" for every
// bundled plugin.
type pluginLogger struct{ hclog.Logger }

func (l pluginLogger) Named(string) hclog.Logger { return l }

func (l pluginLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, msg, integers(args)...)
}
func (l pluginLogger) Trace(msg string, args ...any) { l.Logger.Trace(msg, integers(args)...) }
func (l pluginLogger) Debug(msg string, args ...any) { l.Logger.Debug(msg, integers(args)...) }
func (l pluginLogger) Info(msg string, args ...any)  { l.Logger.Info(msg, integers(args)...) }
func (l pluginLogger) Warn(msg string, args ...any)  { l.Logger.Warn(msg, integers(args)...) }
func (l pluginLogger) Error(msg string, args ...any) { l.Logger.Error(msg, integers(args)...) }

// maxExact is 2^53: every integer up to it has an exact float64.
const maxExact = 1 << 53

// integers returns args with each whole float64 value (not key) as int64.
func integers(args []any) []any {
	for i := 1; i < len(args); i += 2 {
		if f, ok := args[i].(float64); ok && f == math.Trunc(f) && math.Abs(f) <= maxExact {
			args[i] = int64(f)
		}
	}
	return args
}
