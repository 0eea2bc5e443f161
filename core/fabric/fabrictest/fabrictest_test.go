package fabrictest_test

import (
	"testing"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/fabric/fabrictest"
)

// TestEmbedded runs the suite against the embedded store, in memory and
// persisted to a data directory. Every handle is the one *Fabric, as every
// agent of a single-machine mesh shares it.
func TestEmbedded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		persist bool
	}{{"memory", false}, {"bbolt", true}} {
		t.Run(tc.name, func(t *testing.T) {
			fabrictest.Run(t, func(t *testing.T) func() fabric.Store {
				opts := fabric.Options{}
				if tc.persist {
					opts.DataDir = t.TempDir()
				}
				f, err := fabric.New(opts)
				if err != nil {
					t.Fatalf("new fabric: %v", err)
				}
				t.Cleanup(func() { f.Close() })
				return func() fabric.Store { return f }
			})
		})
	}
}
