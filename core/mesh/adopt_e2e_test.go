package mesh_test

import (
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/internal/testutil"
)

// phasedLoad is a load on the edge that counts failures by phase: before
// the mesh went down, while it was down (a request in flight when it went
// down included), or after the new mesh's edge answered a first request
// (counted only for requests started after that answer).
type phasedLoad struct {
	phase    atomic.Int32 // phaseUp, phaseDown or phaseBack
	relaunch atomic.Bool  // the old mesh is gone: an answer now comes from the new one
	ok       atomic.Int64
	failed   [3]atomic.Int64
	firstErr [3]atomic.Value
	stop     chan struct{}
	wg       sync.WaitGroup
}

const (
	phaseUp = iota
	phaseDown
	phaseBack
)

func startPhasedLoad(url string, clients int) *phasedLoad {
	l := &phasedLoad{stop: make(chan struct{})}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				ph := l.phase.Load()
				resp, err := hc.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = &statusErr{resp.Status}
					}
				}
				if err != nil {
					if ph == phaseUp && l.phase.Load() != phaseUp {
						ph = phaseDown // in flight when the mesh went down
					}
					l.failed[ph].Add(1)
					l.firstErr[ph].CompareAndSwap(nil, err.Error())
					time.Sleep(2 * time.Millisecond) // the edge is down: do not spin
					continue
				}
				l.ok.Add(1)
				if ph == phaseDown && l.relaunch.Load() {
					l.phase.CompareAndSwap(phaseDown, phaseBack)
				}
			}
		}()
	}
	return l
}

type statusErr struct{ s string }

func (e *statusErr) Error() string { return e.s }

func (l *phasedLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// waitOK waits until n more requests succeeded.
func (l *phasedLoad) waitOK(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	waitFor(t, 30*time.Second, "requests through the edge", func() bool { return l.ok.Load() >= want })
}

// readyByNode maps each node to its ready billing instance.
func (e *env) readyByNode() map[string]struct {
	instance string
	pid      int
} {
	out := map[string]struct {
		instance string
		pid      int
	}{}
	for _, in := range e.status().Instances {
		if in.App == "billing" && in.State == "ready" {
			out[in.NodeID] = struct {
				instance string
				pid      int
			}{in.Instance, in.PID}
		}
	}
	return out
}

// With agents { adopt = true }, a mesh stopped by SIGTERM or killed by
// SIGKILL leaves its workloads serving; the next `mesh run` adopts the same
// processes, and once its edge answers again no request fails. An adopted
// workload killed afterwards is restarted.
func TestAdoptAcrossMeshRestart(t *testing.T) {
	e := newEnv(t)
	e.agentsExtra = "  adopt = true\n"
	e.restart = "always"
	e.writeConfig()
	var seen []int
	t.Cleanup(func() {
		// Workloads outlive a stopped mesh on purpose: stop them here.
		for _, p := range testutil.WaitGone(seen, 0) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	e.start()

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		before := e.readyByNode()
		if len(before) != 3 {
			t.Fatalf("want a ready instance on each of 3 nodes, got %v", before)
		}
		for _, in := range before {
			seen = append(seen, in.pid)
		}
		l := startPhasedLoad(e.edgeURL+"/billing/hello", 4)
		l.waitOK(t, 100)
		l.phase.Store(phaseDown)
		downAt := time.Now()
		if err := e.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		<-e.exited
		e.cmd = nil
		l.relaunch.Store(true)
		for node, in := range before {
			if !testutil.Alive(in.pid) {
				t.Fatalf("%s: workload %d on %s did not survive the mesh", sig, in.pid, node)
			}
		}
		e.launch()
		e.waitReady(30 * time.Second)
		if l.phase.Load() != phaseBack {
			l.waitOK(t, 1)
		}
		backAfter := time.Since(downAt)
		l.waitOK(t, 300)
		l.finish()

		after := e.readyByNode()
		for node, in := range before {
			if after[node] != in {
				t.Errorf("%s: %s ran %v before the restart and %v after: not adopted", sig, node, in, after[node])
			}
		}
		t.Logf("%s of the mesh: %d requests failed while it was down (the edge is in the mesh process), edge back within %s; %d failed after",
			sig, l.failed[phaseDown].Load(), backAfter.Round(time.Millisecond), l.failed[phaseBack].Load())
		if n := l.failed[phaseUp].Load(); n > 0 {
			t.Errorf("%s: %d requests failed before the mesh went down: %v", sig, n, l.firstErr[phaseUp].Load())
		}
		if n := l.failed[phaseBack].Load(); n > 0 {
			t.Errorf("%s: %d requests failed after the edge was back: %v", sig, n, l.firstErr[phaseBack].Load())
		}
	}

	// The adopted workloads are supervised: one killed is started again.
	before := e.readyByNode()
	victim := before["n1"]
	if err := syscall.Kill(victim.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the killed adopted workload restarted", func() bool {
		now := e.readyByNode()["n1"]
		return now.pid > 0 && now.pid != victim.pid
	})
	for _, in := range e.readyByNode() {
		seen = append(seen, in.pid)
	}
	e.stop()
	if alive := testutil.WaitGone(seen, 0); len(alive) == 0 {
		t.Error("workloads did not outlive a mesh stopped with adopt = true")
	}
	if _, err := os.Stat(e.cfgPath); err != nil {
		t.Fatal(err)
	}
}
