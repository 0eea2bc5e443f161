package edge

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"
)

// fakeConn is served until its release channel closes.
type fakeConn struct {
	started, release, ended chan struct{}
}

func newFakeConn() *fakeConn {
	return &fakeConn{started: make(chan struct{}), release: make(chan struct{}), ended: make(chan struct{})}
}

func (c *fakeConn) serve() {
	close(c.started)
	<-c.release
	close(c.ended)
}

// waitIdle waits until n goroutines wait for a connection.
func waitIdle(t *testing.T, w *workers, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.idle.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("idle = %d, want %d", w.idle.Load(), n)
		}
		runtime.Gosched()
	}
}

func TestWorkersReuseGoroutines(t *testing.T) {
	w := newWorkers()
	// One connection after another: one goroutine serves them all.
	for i := 0; i < 5; i++ {
		c := newFakeConn()
		w.run(c)
		<-c.started
		close(c.release)
		<-c.ended
		waitIdle(t, w, 1)
	}
	if n := w.started.Load(); n != 1 {
		t.Errorf("%d goroutines started for 5 connections in turn, want 1", n)
	}

	// Connections at once get a goroutine each; no more than
	// maxIdleWorkers of them stay waiting once all ended.
	var cs []*fakeConn
	for i := 0; i < maxIdleWorkers+3; i++ {
		c := newFakeConn()
		w.run(c)
		<-c.started
		cs = append(cs, c)
	}
	if n := w.started.Load(); n != maxIdleWorkers+3 {
		t.Errorf("%d goroutines started, want %d (one reused, the rest new)", n, maxIdleWorkers+3)
	}
	for _, c := range cs {
		close(c.release)
		<-c.ended
	}
	waitIdle(t, w, maxIdleWorkers)

	// Once stopped, the waiting goroutines end.
	w.stop()
	ended := make(chan struct{})
	go func() { w.wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("waiting goroutines did not end after stop")
	}
	if n := w.idle.Load(); n != 0 {
		t.Errorf("idle = %d after stop, want 0", n)
	}
}

// The edge serves connections opened one after another on goroutines it
// reuses, and lets them end when it shuts down.
func TestEdgeReusesConnectionGoroutines(t *testing.T) {
	up := rawServer(t, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	e := edgeTo(t, "http://"+up, Options{})
	for i := 0; i < 5; i++ {
		if st := getClose(t, e.Addr().String(), "/up/x"); st != 200 {
			t.Fatalf("status %d", st)
		}
		waitIdle(t, e.front.workers, 1)
	}
	if n := e.front.workers.started.Load(); n != 1 {
		t.Errorf("%d goroutines started for 5 connections in turn, want 1", n)
	}
}

// getClose sends one request with Connection: close on a new connection
// and returns the answer's status.
func getClose(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	st, err := readAnswer(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
