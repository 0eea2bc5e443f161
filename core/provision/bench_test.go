package provision

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// nullBackend finds every site as described: the cost measured is reading,
// decoding, queueing, reconciling and reporting, not hosting.
type nullBackend struct{}

func (nullBackend) Observe(context.Context, Request) (State, error)            { return State{}, nil }
func (nullBackend) Plan(context.Context, Request, State) ([]Action, error)     { return nil, nil }
func (nullBackend) Apply(context.Context, Request, []Action) ([]Action, error) { return nil, nil }

func benchStream(b *testing.B, n int) []byte {
	b.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := 0; i < n; i++ {
		c := site(fmt.Sprintf("site-%d", i%1000), fmt.Sprintf("title %d", i), fmt.Sprintf("s%d.example.test", i%1000))
		m, err := Encode(c)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Write(m); err != nil {
			b.Fatal(err)
		}
	}
	return buf.Bytes()
}

// BenchmarkStream pipes N small messages through the whole ingestion path
// and reports messages per second and the heap retained along the way
// (flat: the same for 10,000 and 100,000 messages), beside the reference
// C++ tool decoding the same stream to text (`capnp decode --packed`).
func BenchmarkStream(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			// The stream is read from a file, as from a producer: the
			// heap measured is the provisioner's, not the input's.
			file := filepath.Join(b.TempDir(), "stream.bin")
			size := 0
			{
				stream := benchStream(b, n)
				size = len(stream)
				if err := os.WriteFile(file, stream, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			owners := &Owners{Dir: filepath.Join(b.TempDir(), "owned")}
			runtime.GC()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				e := NewEngine(EngineOptions{Backends: BackendMap{ProviderLocalStatic: {Name: "null", Backend: nullBackend{}}}, Owners: owners})
				in := &Ingestor{Engine: e, Reporter: NewReporter(io.Discard)}
				ctx := context.Background()
				f, err := os.Open(file)
				if err != nil {
					b.Fatal(err)
				}
				err = in.Stream(ctx, ctx, "bench", f, nil)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				if c := in.Reporter.Counts(); c[StatusUnchanged]+c[StatusSuperseded] != n {
					b.Fatalf("counts %v", c)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(retainedHeap(b, file, owners)/(1<<20), "retained-heap-MB")
			b.ReportMetric(float64(size)/float64(n), "bytes/msg")
			if ref := capnpDecodeRate(b, file, n); ref > 0 {
				b.ReportMetric(ref, "capnp-decode-msgs/s")
			}
		})
	}
}

// retainedHeap runs the stream once more, collecting garbage at ten points
// along it, and returns the largest heap still in use at those points:
// what the provisioner holds, flat in the stream's length.
func retainedHeap(b *testing.B, file string, owners *Owners) float64 {
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	cr := &checkpointReader{r: f, every: fi.Size() / 10}
	e := NewEngine(EngineOptions{Backends: BackendMap{ProviderLocalStatic: {Name: "null", Backend: nullBackend{}}}, Owners: owners})
	in := &Ingestor{Engine: e, Reporter: NewReporter(io.Discard)}
	ctx := context.Background()
	if err := in.Stream(ctx, ctx, "bench", cr, nil); err != nil {
		b.Fatal(err)
	}
	return float64(cr.peak)
}

type checkpointReader struct {
	r           io.Reader
	every, next int64
	read        int64
	peak        uint64
}

func (c *checkpointReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	if c.read >= c.next {
		c.next += c.every
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > c.peak {
			c.peak = ms.HeapAlloc
		}
	}
	return n, err
}

// capnpDecodeRate times the reference tool on the same stream, or returns 0
// when it is not installed (make proto-capnp-tools installs it).
func capnpDecodeRate(b *testing.B, file string, n int) float64 {
	tool, err := exec.LookPath("capnp")
	if err != nil {
		b.Logf("capnp not installed: no reference rate")
		return 0
	}
	schema, _ := filepath.Abs(filepath.Join("..", "..", "proto", "sporev1", "spore.capnp"))
	cmd := exec.Command(tool, "decode", "--packed", schema, "SporeConfig")
	in, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	cmd.Stdin = in
	cmd.Stdout = io.Discard
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Logf("capnp decode: %v", err)
		return 0
	}
	return float64(n) / time.Since(start).Seconds()
}
