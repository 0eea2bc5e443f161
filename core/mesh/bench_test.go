package mesh_test

import (
	"context"
	"sort"
	"testing"
	"time"
)

// BenchmarkBlueGreen20 runs 20 consecutive blue/green updates of a
// three-node app under continuous load (8 clients) and reports failed
// requests (the bar is 0) and the rollout time per update.
func BenchmarkBlueGreen20(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newEnv(b)
		e.warmup = "200ms"
		e.writeConfig()
		e.start()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		c := e.client()
		d1 := e.status().Apps[0].Digest
		d2, err := c.PublishSpore(ctx, e.v2)
		if err != nil {
			b.Fatal(err)
		}
		l := startLoad(e.edgeURL+"/billing/hello", 8)
		var took []float64
		for u := 0; u < 20; u++ {
			d := d2
			if u%2 == 1 {
				d = d1
			}
			t0 := time.Now()
			if _, err := c.Deploy(ctx, "billing", d); err != nil {
				b.Fatal(err)
			}
			rs, err := c.WaitRollout(ctx, "billing", d, nil)
			if err != nil || rs.State != "ready" {
				b.Fatalf("update %d: %+v %v", u, rs, err)
			}
			took = append(took, float64(time.Since(t0).Microseconds())/1000)
			time.Sleep(250 * time.Millisecond) // let the old version drain
		}
		l.finish()
		cancel()
		e.stop()
		sort.Float64s(took)
		b.ReportMetric(float64(l.failed.Load()), "failed-requests")
		b.ReportMetric(float64(l.ok.Load()), "requests")
		b.ReportMetric(took[len(took)/2], "rollout-p50-ms")
		b.ReportMetric(took[len(took)-1], "rollout-max-ms")
	}
}
