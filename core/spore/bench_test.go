package spore

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

const benchSize = 64 << 20

var (
	benchOnce sync.Once
	benchDir  string
	benchBin  string
	benchErr  error
)

// benchFile returns a 64 MiB file of random bytes shared by the benchmarks.
func benchFile(b *testing.B) string {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "spore-bench-")
		if benchErr != nil {
			return
		}
		benchBin = filepath.Join(benchDir, "bin")
		f, err := os.Create(benchBin)
		if err != nil {
			benchErr = err
			return
		}
		_, benchErr = io.CopyN(f, rand.Reader, benchSize)
		f.Close()
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// hashFile hashes path with sha256sum when it is installed, else with
// crypto/sha256 streaming. It returns which hasher ran and the CPU time it
// used.
func hashFile(path string) (name string, cpu time.Duration, err error) {
	if p, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(p, path)
		if err := cmd.Run(); err != nil {
			return "", 0, err
		}
		return "sha256sum", cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
	c0 := cpuTime()
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	_, err = io.CopyBuffer(h, readerOnly{f}, make([]byte, copyBufSize))
	return "crypto/sha256", cpuTime() - c0, err
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ratioMeter times an operation and, interleaved with it in the same run,
// the reference hasher on the same file, so that machine noise hits both.
type ratioMeter struct {
	bin             string
	name            string
	opWall, opCPU   time.Duration
	refWall, refCPU time.Duration
	cpuBeg          time.Duration
	t0              time.Time
}

func (r *ratioMeter) start() { r.t0, r.cpuBeg = time.Now(), cpuTime() }

func (r *ratioMeter) stop(b *testing.B) {
	r.opWall += time.Since(r.t0)
	r.opCPU += cpuTime() - r.cpuBeg
	b.StopTimer()
	t0 := time.Now()
	name, cpu, err := hashFile(r.bin)
	if err != nil {
		b.Fatal(err)
	}
	r.refWall += time.Since(t0)
	r.refCPU += cpu
	r.name = name
	b.StartTimer()
}

// report adds throughput ratios: >1 means faster than the reference hasher.
func (r *ratioMeter) report(b *testing.B) {
	if r.opWall > 0 && r.opCPU > 0 {
		b.ReportMetric(float64(r.refWall)/float64(r.opWall), "x_"+r.name+"_wall")
		b.ReportMetric(float64(r.refCPU)/float64(r.opCPU), "x_"+r.name+"_cpu")
	}
}

func BenchmarkSHA256Sum(b *testing.B) {
	bin := benchFile(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name, _, err := hashFile(bin)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.Logf("hasher: %s", name)
		}
	}
}

func BenchmarkPack(b *testing.B) {
	bin := benchFile(b)
	key := seedKey(1)
	m := baseManifest()
	b.SetBytes(benchSize)
	r := &ratioMeter{bin: bin}
	s := startHeapSampler(5 * time.Millisecond)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.start()
		if _, err := Pack(io.Discard, bin, m, key); err != nil {
			b.Fatal(err)
		}
		r.stop(b)
	}
	b.StopTimer()
	b.ReportMetric(float64(s.Stop())/(1<<20), "peak-heap-MiB")
	r.report(b)
}

func BenchmarkVerify(b *testing.B) {
	bin := benchFile(b)
	key := seedKey(1)
	out := filepath.Join(benchDir, "bench.spore")
	if _, err := PackFile(out, bin, baseManifest(), key); err != nil {
		b.Fatal(err)
	}
	trusted := []ed25519.PublicKey{pubOf(key)}
	b.SetBytes(benchSize)
	r := &ratioMeter{bin: bin}
	s := startHeapSampler(5 * time.Millisecond)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.start()
		if _, err := Verify(out, trusted); err != nil {
			b.Fatal(err)
		}
		r.stop(b)
	}
	b.StopTimer()
	b.ReportMetric(float64(s.Stop())/(1<<20), "peak-heap-MiB")
	r.report(b)
}

// BenchmarkVerifyCached checks an already-verified spore through a
// VerifyCache, as a deploy of a known digest does: a stat, no hashing.
func BenchmarkVerifyCached(b *testing.B) {
	bin := benchFile(b)
	key := seedKey(1)
	out := filepath.Join(benchDir, "bench-cached.spore")
	if _, err := PackFile(out, bin, baseManifest(), key); err != nil {
		b.Fatal(err)
	}
	trusted := []ed25519.PublicKey{pubOf(key)}
	var c VerifyCache
	if _, err := c.Verify("d", out, trusted); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Verify("d", out, trusted); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s := c.Stats(); s.Misses != 1 {
		b.Fatalf("verifications = %d, want 1", s.Misses)
	}
}
