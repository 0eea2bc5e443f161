package agent

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// BenchmarkInstanceFootprint runs the hello workload on several agents of
// one process (one instance per node), has each instance answer a few
// requests, and reports what each costs the machine, from
// /proc/PID/smaps_rollup:
//
//   - private-MiB: Private_Clean + Private_Dirty, the pages only this
//     process maps (its heap, stacks, data, relocated pages); the bar is
//     1.5 MB with three agents;
//   - pss-MiB: Pss, its private pages plus its share of the pages it
//     maps with others (the binary's code, mapped from one shared copy);
//   - processes: the processes of the instance's process group (1: the
//     workload itself, no shim or helper left beside it);
//   - binary-copies: how many distinct files the instances run (1: every
//     node maps the same inode, so its code pages are in the page cache
//     once);
//   - threads: the OS threads the agents' process gained per instance.
//
// Both containment paths run: the default one and, where the kernel has
// them, v1 cgroups joined through the shim. Load-independent: nothing here
// is timed.
func BenchmarkInstanceFootprint(b *testing.B) {
	for _, nodes := range []int{3, 9} {
		for _, mode := range containModes {
			name := fmt.Sprintf("agents=%d/contain=%s", nodes, strings.ReplaceAll(mode.name, " ", "-"))
			b.Run(name, func(b *testing.B) { benchFootprint(b, nodes, mode.tweak) })
		}
	}
}

func benchFootprint(b *testing.B, nodes int, tweak func(*Options)) {
	var priv, dirty, pss, procs, copies, threads float64
	for range b.N {
		e := newEnv(b)
		d := e.spore("v1", nil)
		before := selfThreads(b)
		var agents []*running
		for k := range nodes {
			agents = append(agents, e.startAgent(fmt.Sprintf("n%d", k), tweak))
		}
		e.publish(fabric.Plan{Digest: d})
		var insts []InstanceStatus
		for _, a := range agents {
			insts = append(insts, a.readyWith(b, "billing", d, 20*time.Second))
		}
		if tweak != nil && insts[0].Containment != ContainCgroup {
			for _, a := range agents {
				a.stop(b)
			}
			b.Skipf("no cgroups on this path here: instances are contained by %s", insts[0].Containment)
		}
		inodes := map[uint64]bool{}
		for _, st := range insts {
			warm(b, st.URL)
			m := smapsRollup(b, st.PID)
			priv += float64(m["Private_Clean"] + m["Private_Dirty"])
			dirty += float64(m["Private_Dirty"])
			pss += float64(m["Pss"])
			procs += float64(len(groupMembers(st.PID, 0)))
			var fi syscall.Stat_t
			if err := syscall.Stat(fmt.Sprintf("/proc/%d/exe", st.PID), &fi); err != nil {
				b.Fatal(err)
			}
			inodes[fi.Ino] = true
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", st.PID)); err != nil || filepath.Base(exe) != "binary" {
				b.Fatalf("instance %s runs %q (%v), not the spore's binary", st.Instance, exe, err)
			}
		}
		n := float64(len(insts))
		copies += float64(len(inodes))
		threads += float64(selfThreads(b)-before) / n
		for _, a := range agents {
			a.stop(b)
		}
	}
	per := float64(b.N) * float64(nodes)
	b.ReportMetric(priv/per/1024, "private-MiB/instance")
	b.ReportMetric(dirty/per/1024, "private-dirty-MiB/instance")
	b.ReportMetric(pss/per/1024, "pss-MiB/instance")
	b.ReportMetric(procs/per, "processes/instance")
	b.ReportMetric(copies/float64(b.N), "binary-copies")
	b.ReportMetric(threads/float64(b.N), "threads/instance")
}

// warm has the instance at url answer a few requests, so that what is
// measured is a serving instance, not one that only passed its health gate.
func warm(b *testing.B, url string) {
	for range 20 {
		resp, err := http.Get(strings.TrimSuffix(url, "/") + "/hello")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// smapsRollup returns the kB fields of /proc/PID/smaps_rollup by name.
func smapsRollup(b *testing.B, pid int) map[string]int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			b.Fatalf("smaps_rollup line %q: %v", line, err)
		}
		out[strings.TrimSuffix(f[0], ":")] = n
	}
	if _, ok := out["Pss"]; !ok {
		b.Fatalf("no Pss in /proc/%d/smaps_rollup", pid)
	}
	return out
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
