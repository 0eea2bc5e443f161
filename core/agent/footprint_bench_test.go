package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// BenchmarkInstanceFootprint runs the hello workload on several agents of
// one process (one instance per node) and reports what each instance costs
// the machine: its private memory (Private_Clean + Private_Dirty of
// /proc/PID/smaps_rollup; code pages of a binary file mapped by several
// processes are shared, not private) and the OS threads the agents' process
// gained per instance. Load-independent: nothing here is timed.
func BenchmarkInstanceFootprint(b *testing.B) {
	for _, nodes := range []int{3, 9} {
		b.Run(fmt.Sprintf("agents=%d", nodes), func(b *testing.B) {
			var privKB, dirtyKB, threads float64
			for range b.N {
				e := newEnv(b)
				d := e.spore("v1", nil)
				before := selfThreads(b)
				var agents []*running
				for k := range nodes {
					agents = append(agents, e.startAgent(fmt.Sprintf("n%d", k), nil))
				}
				e.publish(fabric.Plan{Digest: d})
				var pids []int
				for _, a := range agents {
					pids = append(pids, a.readyWith(b, "billing", d, 20*time.Second).PID)
				}
				var sum, dirty float64
				for _, pid := range pids {
					clean, d := privateKB(b, pid)
					sum += float64(clean + d)
					dirty += float64(d)
				}
				privKB += sum / float64(len(pids))
				dirtyKB += dirty / float64(len(pids))
				threads += float64(selfThreads(b)-before) / float64(nodes)
				for _, a := range agents {
					a.stop(b)
				}
			}
			b.ReportMetric(privKB/float64(b.N)/1024, "private-MiB/instance")
			b.ReportMetric(dirtyKB/float64(b.N)/1024, "private-dirty-MiB/instance")
			b.ReportMetric(threads/float64(b.N), "threads/instance")
		})
	}
}

// privateKB is the private memory of pid in KiB: clean (file pages only
// this process maps) and dirty (its own writes: heap, stacks, data).
func privateKB(b *testing.B, pid int) (clean, dirty int) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "Private_") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			b.Fatalf("smaps_rollup line %q: %v", line, err)
		}
		if strings.HasPrefix(line, "Private_Clean:") {
			clean += n
		} else {
			dirty += n
		}
	}
	return clean, dirty
}

// selfThreads is the number of OS threads of this process.
func selfThreads(b testing.TB) int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no Threads line in /proc/self/status")
	return 0
}
