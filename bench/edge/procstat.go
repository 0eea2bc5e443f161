package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat and /proc/stat.
// Linux fixes it at 100 for user space on every architecture, whatever the
// kernel's internal tick rate.
const userHZ = 100

// procStat is what the bench reads from one /proc/<pid>/stat line.
type procStat struct {
	pid, ppid int
	comm      string
	// cpu is utime+stime+cutime+cstime in ticks: the process's own CPU
	// (all its threads) plus that of its children it has already reaped,
	// so a child that exits during a window still counts.
	cpu uint64
	// own is utime+stime alone: what the process itself ran.
	own uint64
}

// parseProcStat parses one /proc/<pid>/stat line. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseProcStat(line string) (procStat, error) {
	open := strings.IndexByte(line, '(')
	end := strings.LastIndexByte(line, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("stat line %q: no command name", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return procStat{}, fmt.Errorf("stat line %q: pid: %w", line, err)
	}
	// Fields after the name, numbered as in proc(5) from field 3 (state).
	f := strings.Fields(line[end+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat line %q: %d fields after the name, want at least 15", line, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat line %q: ppid: %w", line, err)
	}
	var cpu, own uint64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("stat line %q: field %d: %w", line, i+3, err)
		}
		if v > 0 {
			cpu += uint64(v)
			if i < 13 {
				own += uint64(v)
			}
		}
	}
	return procStat{pid: pid, ppid: ppid, comm: line[open+1 : end], cpu: cpu, own: own}, nil
}

// allProcs reads every process's stat line. Processes that exit while the
// directory is walked are left out.
func allProcs() ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	var out []procStat
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		st, err := parseProcStat(string(bytes.TrimSpace(b)))
		if err != nil {
			continue
		}
		out = append(out, st)
	}
	return out, nil
}

// tree is a process and all its descendants.
type tree struct {
	cpu   uint64   // summed ticks
	pids  []int    // every member, root first
	names []string // "comm" of each member, root first
}

// treeOf sums the CPU of root and every descendant in procs.
func treeOf(procs []procStat, root int) tree {
	children := map[int][]int{}
	byPID := map[int]procStat{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		byPID[p.pid] = p
	}
	var t tree
	var walk func(pid int)
	walk = func(pid int) {
		p, ok := byPID[pid]
		if !ok {
			return
		}
		t.cpu += p.cpu
		t.pids = append(t.pids, p.pid)
		t.names = append(t.names, p.comm)
		for _, c := range children[pid] {
			walk(c)
		}
	}
	walk(root)
	return t
}

// sysStat is the machine-wide CPU counters of /proc/stat's "cpu" line, in
// ticks summed over all CPUs.
type sysStat struct {
	busy  uint64 // user+nice+system+irq+softirq
	steal uint64 // time the hypervisor ran something else
	total uint64 // every field but guest times (already in user)
}

func parseSysStat(b []byte) (sysStat, error) {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return sysStat{}, fmt.Errorf("/proc/stat cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		return sysStat{
			busy:  user + nice + system + irq + softirq,
			steal: steal,
			total: user + nice + system + idle + iowait + irq + softirq + steal,
		}, nil
	}
	return sysStat{}, fmt.Errorf("/proc/stat: no cpu line")
}

func readSysStat() (sysStat, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return sysStat{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return parseSysStat(b)
}

// loadAvg1 is the one-minute load average.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// snapshot is the machine and the bench's own processes at one instant.
type snapshot struct {
	at    time.Time
	sys   sysStat
	procs []procStat
}

func takeSnapshot() (snapshot, error) {
	s := snapshot{at: time.Now()}
	var err error
	if s.sys, err = readSysStat(); err != nil {
		return s, err
	}
	if s.procs, err = allProcs(); err != nil {
		return s, err
	}
	return s, nil
}

// usage is how the machine's CPU was spent between two snapshots.
type usage struct {
	otherCores float64 // CPU of processes outside the bench's tree, in cores
	stealFrac  float64 // share of all CPU time stolen by the hypervisor
	load1      float64 // load average at the end
	top        string  // the busiest other processes, "name cores, ..."
}

// usageBetween measures the CPU used between a and b by everything outside
// the bench's own process tree (rooted at self: the generator, the
// workloads and the proxies are all its descendants): the machine's busy
// time from /proc/stat less the tree's from /proc/<pid>/stat. That also
// catches processes that started and ended between the snapshots, and
// kernel work done on anyone's behalf, which leans towards calling a round
// loaded rather than quiet. The busiest other processes are named from
// their own utime+stime. Steal is the share of all CPU time the hypervisor
// gave to someone else.
func usageBetween(a, b snapshot, self int) usage {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return usage{}
	}
	treeA, treeB := treeOf(a.procs, self), treeOf(b.procs, self)
	var ours uint64
	if treeB.cpu > treeA.cpu {
		ours = treeB.cpu - treeA.cpu
	}
	var busy uint64
	if b.sys.busy > a.sys.busy {
		busy = b.sys.busy - a.sys.busy
	}
	var other uint64
	if busy > ours {
		other = busy - ours
	}
	top, named := busiest(a, b, treeB.pids, secs)
	u := usage{otherCores: float64(other) / userHZ / secs, load1: loadAvg1(), top: top}
	if rest := u.otherCores - named; rest >= 0.05 {
		// Processes that began and ended between the snapshots, or that
		// this /proc does not show (another PID namespace).
		if u.top != "" {
			u.top += ", "
		}
		u.top += fmt.Sprintf("%.2f not seen in /proc", rest)
	}
	if tot := b.sys.total - a.sys.total; tot > 0 {
		u.stealFrac = float64(b.sys.steal-a.sys.steal) / float64(tot)
	}
	return u
}

// busiest names the three processes outside ours that ran the most between
// a and b, as "name cores, ...", and adds up the cores of all of them.
func busiest(a, b snapshot, ourPIDs []int, secs float64) (string, float64) {
	ours := map[int]bool{}
	for _, pid := range ourPIDs {
		ours[pid] = true
	}
	before := map[int]uint64{}
	for _, p := range a.procs {
		before[p.pid] = p.own
	}
	type busy struct {
		name  string
		ticks uint64
	}
	var others []busy
	var total uint64
	for _, p := range b.procs {
		if ours[p.pid] {
			continue
		}
		d := p.own
		if c, ok := before[p.pid]; ok {
			if c > d {
				continue // pid reused
			}
			d -= c
		}
		if d > 0 {
			others = append(others, busy{p.comm, d})
			total += d
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].ticks > others[j].ticks })
	var top []string
	for i := 0; i < len(others) && i < 3; i++ {
		top = append(top, fmt.Sprintf("%s %.2f", others[i].name, float64(others[i].ticks)/userHZ/secs))
	}
	return strings.Join(top, ", "), float64(total) / userHZ / secs
}
