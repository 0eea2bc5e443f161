package main

import (
	"math"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Fields after the name: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime ...
	rest := " S 41 42 42 0 -1 4194304 10 0 0 0 150 50 7 3 20 0 2 0 100 1000 10"
	for _, tc := range []struct {
		name, line string
		want       procStat
		err        bool
	}{
		{"plain", "42 (nginx)" + rest, procStat{pid: 42, ppid: 41, comm: "nginx", cpu: 210, own: 200}, false},
		{"spaces and parens in the name", "42 (a) b (c))" + rest, procStat{pid: 42, ppid: 41, comm: "a) b (c)", cpu: 210, own: 200}, false},
		{"negative cutime of a reaped child", "42 (x) S 41 42 42 0 -1 0 0 0 0 0 5 5 -1 0 20", procStat{pid: 42, ppid: 41, comm: "x", cpu: 10, own: 10}, false},
		{"truncated", "42 (x) S 41 42", procStat{}, true},
		{"no name", "42 x S 41", procStat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat(tc.line)
			if tc.err {
				if err == nil {
					t.Fatalf("no error for %q", tc.line)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseSysStat(t *testing.T) {
	in := "cpu  100 5 50 1000 20 3 2 10 7 0\ncpu0 50 2 25 500 10 1 1 5 3 0\nintr 1\n"
	got, err := parseSysStat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := sysStat{busy: 160, steal: 10, total: 1190}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := parseSysStat([]byte("intr 1\n")); err == nil {
		t.Fatal("no error without a cpu line")
	}
	if _, err := readSysStat(); err != nil {
		t.Fatal(err)
	}
}

func TestUsageBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ps := func(v ...procStat) []procStat { return v }
	a := snapshot{at: t0, sys: sysStat{busy: 500, total: 1000, steal: 10}, procs: ps(
		procStat{pid: 100, ppid: 1, comm: "bench", cpu: 10, own: 10},
		procStat{pid: 101, ppid: 100, comm: "proxy", cpu: 0},
		procStat{pid: 200, ppid: 1, comm: "compile", cpu: 0},
		procStat{pid: 500, ppid: 1, comm: "old", cpu: 100, own: 100},
	)}
	// Over 2 s the machine was busy for 260 ticks; the bench's tree ran
	// 140 of them (its reaped wrk counted through cutime), so others ran
	// 120 ticks: 0.6 cores.
	b := snapshot{at: t0.Add(2 * time.Second), sys: sysStat{busy: 760, total: 1400, steal: 14}, procs: ps(
		procStat{pid: 100, ppid: 1, comm: "bench", cpu: 100, own: 20},   // reaped wrk: 80 ticks
		procStat{pid: 101, ppid: 100, comm: "proxy", cpu: 40, own: 40},  // ours
		procStat{pid: 102, ppid: 101, comm: "plugin", cpu: 10, own: 10}, // ours, new
		procStat{pid: 200, ppid: 1, comm: "compile", cpu: 60, own: 60},  // other
		procStat{pid: 400, ppid: 1, comm: "go", cpu: 20, own: 20},       // other, new
		procStat{pid: 500, ppid: 1, comm: "new", cpu: 5, own: 5},        // pid reused
		procStat{pid: 600, ppid: 1, comm: "make", cpu: 9000, own: 0},    // reaped a long child: not named
	)}
	u := usageBetween(a, b, 100)
	if math.Abs(u.otherCores-0.6) > 1e-9 {
		t.Fatalf("other cores %v, want 0.6", u.otherCores)
	}
	if math.Abs(u.stealFrac-0.01) > 1e-9 {
		t.Fatalf("steal %v, want 0.01", u.stealFrac)
	}
	// 0.6 cores used, 0.4 by processes in /proc: 0.2 by unseen ones.
	if u.top != "compile 0.30, go 0.10, 0.20 not seen in /proc" {
		t.Fatalf("top %q", u.top)
	}
	c := config{maxOther: 0.5, maxSteal: 0.02}
	if !c.isLoaded(u) {
		t.Fatal("0.6 other cores over a 0.5 limit is not LOADED")
	}
	c.maxOther = 1
	if c.isLoaded(u) {
		t.Fatal("0.6 other cores under a 1.0 limit is LOADED")
	}
	c.maxSteal = 0.005
	if !c.isLoaded(u) {
		t.Fatal("1% steal over a 0.5% limit is not LOADED")
	}
}

// TestTreeCountsReapedChildren runs a shell whose child burns CPU and exits
// while the shell lives on (as sleep): the tree's CPU must still hold the
// child's, through the shell's cutime, and this test's own tree must hold
// the shell.
func TestTreeCountsReapedChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'; echo done; exec sleep 60`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "done\n" {
		t.Fatalf("read %q: %v", buf, err)
	}
	procs, err := allProcs()
	if err != nil {
		t.Fatal(err)
	}
	tr := treeOf(procs, cmd.Process.Pid)
	if tr.cpu == 0 {
		t.Fatalf("tree %v used no CPU, though its reaped child looped", tr.names)
	}
	self := treeOf(procs, os.Getpid())
	if !slices.Contains(self.pids, cmd.Process.Pid) {
		t.Fatalf("this test's tree %v (%v) does not hold its shell %d", self.pids, self.names, cmd.Process.Pid)
	}
}
