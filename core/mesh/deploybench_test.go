package mesh

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/core/repo"
	"github.com/mycelium-mesh/mesh/core/spore"
)

// BenchmarkDeployServer measures the server's side of a deploy call for a
// digest already verified, in process and without the control socket:
// what StartRollout costs with the real repo, verification cache, fabric
// and rollout store on disk (every write synced). "new-digest" alternates
// two digests, so each call publishes a changed plan; "same-digest" deploys
// the digest the plan names. The bar is 1 ms per call.
func BenchmarkDeployServer(b *testing.B) {
	for _, alternate := range []bool{true, false} {
		name := "same-digest"
		if alternate {
			name = "new-digest"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			w := newWatcherRig(b, dir)
			digests := deployBenchSpores(b, w.m, dir)
			for _, d := range digests {
				w.setReady(d, 3)
			}
			if err := w.m.fabric.PublishPlan(fabric.Plan{AppName: "billing", Digest: digests[0], Min: 1, Max: 3}); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for _, d := range digests { // verified once, as a first deploy does
				if _, err := w.m.Deploy(ctx, "billing", d); err != nil {
					b.Fatal(err)
				}
			}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d := digests[0]
				if alternate && i%2 == 1 {
					d = digests[1]
				}
				t0 := time.Now()
				if _, err := w.m.Deploy(ctx, "billing", d); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
			}
			b.StopTimer()
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// deployBenchSpores packs two versions of a small binary, signed by a key
// m trusts, into a repo in dir that m uses, and returns their digests.
func deployBenchSpores(b *testing.B, m *Mesh, dir string) []string {
	b.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	m.trust = []ed25519.PublicKey{pub}
	if m.repo, err = repo.Open(filepath.Join(dir, "repo")); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	if err := os.WriteFile(bin, make([]byte, 1<<20), 0o755); err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, v := range []string{"1.0.0", "1.0.1"} {
		sp := filepath.Join(dir, v+".spore")
		man := spore.Manifest{Identity: spore.Identity{Name: "hello", Version: v}}
		if _, err := spore.PackFile(sp, bin, man, key); err != nil {
			b.Fatal(err)
		}
		d, err := m.repo.Put(sp)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
