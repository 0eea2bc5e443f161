package hostings3

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/provision"
)

// benchFiles is the size of the benchmark site.
const benchFiles = 2000

// heapPeak samples the heap in use until stopped and returns its peak.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkSync2000 syncs a 2,000-file site (1–8 KiB each) to a local
// versitygw: "first" into an empty bucket (every file put), "unchanged"
// again (list and compare only). It reports files/s and the peak heap in
// use during the syncs.
func BenchmarkSync2000(b *testing.B) {
	h := newHarness(b, nil)
	files := map[string]string{"index.html": "<h1>bench</h1>"}
	for i := 1; i < benchFiles; i++ {
		body := make([]byte, 1024*(1+i%8))
		for j := range body {
			body[j] = byte('a' + (i+j)%26)
		}
		files[fmt.Sprintf("p/%03d/%04d.html", i/100, i)] = string(body)
	}
	seq := 0 // bucket names stay fresh across -count runs
	b.Run("first", func(b *testing.B) {
		runtime.GC()
		stop := heapPeak()
		n := 0
		for b.Loop() {
			id := fmt.Sprintf("bench-%d", seq)
			n++
			seq++
			b.StopTimer()
			h.write(id, files)
			b.StartTimer()
			if res := h.run(siteConfig(id)); res.Status != provision.StatusApplied {
				b.Fatalf("sync: %s %s", res.Status, res.Error)
			}
		}
		b.ReportMetric(float64(benchFiles*n)/b.Elapsed().Seconds(), "files/s")
		b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
	})
	b.Run("unchanged", func(b *testing.B) {
		h.write("bench-same", files)
		if res := h.run(siteConfig("bench-same")); res.Status == provision.StatusFailed {
			b.Fatalf("sync: %s %s", res.Status, res.Error)
		}
		runtime.GC()
		stop := heapPeak()
		n := 0
		for b.Loop() {
			n++
			if res := h.run(siteConfig("bench-same")); res.Status != provision.StatusUnchanged {
				b.Fatalf("second sync: %s %s", res.Status, res.Error)
			}
		}
		b.ReportMetric(float64(benchFiles*n)/b.Elapsed().Seconds(), "files/s")
		b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MiB")
	})
}
