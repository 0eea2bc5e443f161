//go:build linux

package agent

import (
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestWaitExitedPolled starts a child that exits on a signal and waits for
// it through its pidfd: the exit is seen, and the child is left unreaped
// (cmd.Wait still reaps it and reads its status).
func TestWaitExitedPolled(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	got := make(chan [2]bool, 1)
	go func() {
		exited, done := waitExitedPolled(pid)
		got <- [2]bool{exited, done}
	}()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if !r[1] {
		t.Skip("no non-blocking pidfd on this kernel")
	}
	if !r[0] {
		t.Fatal("exit not seen")
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("reaped status: %v, want killed by SIGTERM", err)
	}
}

// TestWaitingHoldsNoThread has many children waited on at once: the waits
// park in the netpoller, so the process does not gain a thread per child
// (a blocking waitid would hold one each).
func TestWaitingHoldsNoThread(t *testing.T) {
	const n = 30
	before := selfThreads(t)
	var cmds []*exec.Cmd
	var wg sync.WaitGroup
	for k := 0; k < n; k++ {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, done := waitExitedPolled(cmd.Process.Pid); !done {
				waitExited(cmd.Process.Pid)
			}
		}()
	}
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
		wg.Wait()
		for _, c := range cmds {
			_ = c.Wait()
		}
	}()
	// Each wait is parked once its child shows in the poller; a thread
	// blocked in waitid would show as one more thread per child.
	waitFor(t, 10*time.Second, "every wait parked", func() bool { return polledWaits.Load() >= n })
	if grew := selfThreads(t) - before; grew >= n/2 {
		t.Fatalf("threads grew by %d while waiting on %d children", grew, n)
	}
}
