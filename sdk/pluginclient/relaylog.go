package pluginclient

import (
	"math"
	"sort"

	"github.com/hashicorp/go-hclog"
)

// RelayLogger returns the logger to give go-plugin's ClientConfig.Logger
// for a plugin whose lines should appear under l: the mesh host's log and
// plugintest's t.Log both use it.
//
// A plugin logs JSON lines to its stderr and go-plugin decodes their fields
// with encoding/json, which makes every number a float64: an integer field
// such as bytes=8900000 would print as bytes=8.9e+06. JSON does not tell
// 2 from 2.0, so a float64 without a fraction, within the range where
// float64 holds integers exactly, is turned back into an int64 before the
// line reaches the host's log.
//
// A relayed line also loses what only repeats the host's own line:
// go-plugin appends the plugin's timestamp as a last "timestamp" field
// and hclog names the plugin in "@module", while the host's line has its
// own time and the plugin's name. go-plugin takes the fields out of a Go
// map, so their order changes from line to line; they are sorted by key
// to keep lines of one kind alike.
//
// It also keeps every line under the plugin's own name: go-plugin would
// otherwise name them after the executable, which is "mesh" for every
// bundled plugin.
func RelayLogger(l hclog.Logger) hclog.Logger { return relayLogger{l} }

type relayLogger struct{ hclog.Logger }

func (l relayLogger) Named(string) hclog.Logger { return l }

func (l relayLogger) Log(level hclog.Level, msg string, args ...any) {
	l.Logger.Log(level, msg, relayed(args)...)
}
func (l relayLogger) Trace(msg string, args ...any) { l.Logger.Trace(msg, relayed(args)...) }
func (l relayLogger) Debug(msg string, args ...any) { l.Logger.Debug(msg, relayed(args)...) }
func (l relayLogger) Info(msg string, args ...any)  { l.Logger.Info(msg, relayed(args)...) }
func (l relayLogger) Warn(msg string, args ...any)  { l.Logger.Warn(msg, relayed(args)...) }
func (l relayLogger) Error(msg string, args ...any) { l.Logger.Error(msg, relayed(args)...) }

// relayed tidies the fields of a line: integers back to integers and, for
// a line relayed from the plugin's stderr (the one go-plugin ends with
// its "timestamp"), without timestamp and @module and sorted by key.
func relayed(args []any) []any {
	args = integers(args)
	n := len(args)
	if n < 2 || n%2 != 0 || args[n-2] != "timestamp" {
		return args
	}
	type kv struct {
		k string
		v any
	}
	pairs := make([]kv, 0, n/2-1)
	for i := 0; i < n-2; i += 2 {
		k, ok := args[i].(string)
		if !ok {
			return args // not go-plugin's flattened fields after all
		}
		if k != "@module" {
			pairs = append(pairs, kv{k, args[i+1]})
		}
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
	out := make([]any, 0, 2*len(pairs))
	for _, p := range pairs {
		out = append(out, p.k, p.v)
	}
	return out
}

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
