package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of CPU times in /proc (fixed at 100 for user space).
const userHZ = 100

// cpuMark is the machine's CPU counters and the bench's own process tree's
// at one instant: the difference of two marks says how much CPU everything
// outside the bench used in between, and how much the hypervisor stole.
type cpuMark struct {
	at                 time.Time
	busy, steal, total uint64 // /proc/stat "cpu" line, ticks over all CPUs
	ours               uint64 // utime+stime+cutime+cstime of the bench's tree
}

func markCPU() cpuMark {
	m := cpuMark{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) >= 9 && f[0] == "cpu" {
			var v [8]uint64
			for i := range v {
				v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
			}
			m.busy = v[0] + v[1] + v[2] + v[5] + v[6]
			m.steal = v[7]
			m.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]
		}
	}
	m.ours = treeCPU(os.Getpid())
	return m
}

// procEntry is what /proc/PID/stat says of one process: its parent and
// the CPU ticks it and its reaped children used.
type procEntry struct {
	ppid int
	cpu  uint64
}

// procTable reads every process's entry from /proc.
func procTable() map[int]procEntry {
	all := map[int]procEntry{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		end := bytes.LastIndexByte(b, ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var cpu uint64
		for _, i := range []int{11, 12, 13, 14} {
			if v, err := strconv.ParseInt(f[i], 10, 64); err == nil && v > 0 {
				cpu += uint64(v)
			}
		}
		all[pid] = procEntry{ppid, cpu}
	}
	return all
}

// subtree lists root and every process below it in all, root first.
func subtree(all map[int]procEntry, root int) []int {
	children := map[int][]int{}
	for pid, s := range all {
		children[s.ppid] = append(children[s.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// treeCPU sums the CPU ticks of root and its descendants, reaped children
// included.
func treeCPU(root int) uint64 {
	all := procTable()
	var sum uint64
	for _, pid := range subtree(all, root) {
		sum += all[pid].cpu
	}
	return sum
}

// usage is how the machine was used between two marks.
type usage struct {
	secs       float64
	oursCores  float64 // the bench, etcd and every mesh process and workload
	otherCores float64 // everything else
	stealFrac  float64
}

func between(a, b cpuMark) usage {
	u := usage{secs: b.at.Sub(a.at).Seconds()}
	if u.secs <= 0 {
		return u
	}
	var busy, ours uint64
	if b.busy > a.busy {
		busy = b.busy - a.busy
	}
	if b.ours > a.ours {
		ours = b.ours - a.ours
	}
	u.oursCores = float64(ours) / userHZ / u.secs
	if busy > ours {
		u.otherCores = float64(busy-ours) / userHZ / u.secs
	}
	if t := b.total - a.total; t > 0 {
		u.stealFrac = float64(b.steal-a.steal) / float64(t)
	}
	return u
}

// verdict gathers the usage of every measurement of a scenario.
type verdict struct {
	n, loaded       int
	worst, maxSteal float64
}

func (v *verdict) add(u usage, c config) {
	v.n++
	if u.otherCores > c.maxOther || u.stealFrac > c.maxSteal {
		v.loaded++
	}
	v.worst = max(v.worst, u.otherCores)
	v.maxSteal = max(v.maxSteal, u.stealFrac)
}

func (v verdict) line(c config) string {
	if v.n == 0 {
		return "no measurement"
	}
	if v.loaded == 0 {
		return fmt.Sprintf("quiet: other processes stayed at or under %.2f cores and steal at or under %.0f%% in all %d measurements (worst %.2f cores, steal %.1f%%)",
			c.maxOther, 100*c.maxSteal, v.n, v.worst, 100*v.maxSteal)
	}
	return fmt.Sprintf("LOADED: numbers unreliable: in %d of %d measurements other processes used more than %.2f cores or steal passed %.0f%%; worst %.2f cores, steal up to %.1f%%",
		v.loaded, v.n, c.maxOther, 100*c.maxSteal, v.worst, 100*v.maxSteal)
}

// ownCPU is the utime+stime ticks of one process, its children left out;
// 0 when it is gone.
func ownCPU(pid int) uint64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return 0
	}
	var sum uint64
	for _, i := range []int{11, 12} {
		if v, err := strconv.ParseUint(f[i], 10, 64); err == nil {
			sum += v
		}
	}
	return sum
}

// cpuOf sums ownCPU over pids.
func cpuOf(pids []int) uint64 {
	var sum uint64
	for _, p := range pids {
		sum += ownCPU(p)
	}
	return sum
}
