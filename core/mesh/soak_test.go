package mesh_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSoak alternates blue/green rollouts with SIGKILLs of workloads and of
// the balancer plugin under continuous load, for MESH_SOAK_DURATION (e.g.
// "10m"; `make soak`), while hostile clients half-close their connections to
// billing, send broken and slow bodies to a second app that is left alone
// (a POST whose endpoint is killed under it may fail for that reason), and
// flood the edge with idle connections. Not one well-behaved request may
// fail, every hostile one must get the answer meant for it, and the steady
// app must count no 5xx and no ejection: client mistakes are never held
// against an endpoint. Skipped when unset.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("MESH_SOAK_DURATION"))
	if err != nil || d <= 0 {
		t.Skip("set MESH_SOAK_DURATION (e.g. 10m) to run the soak test")
	}
	e := newEnv(t)
	e.warmup = "200ms"
	e.restart = "always"
	e.edgeExtra = "  request_body_timeout = \"500ms\"\n"
	e.extraApp = "app \"steady\" {\n  spore = \"billing-v1.spore\"\n  max = 2\n}\n"
	e.writeConfig()
	e.start()
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	c := e.client()
	d1 := e.status().Apps[0].Digest
	d2, err := c.PublishSpore(ctx, e.v2)
	if err != nil {
		t.Fatal(err)
	}
	l := startLoad(e.edgeURL+"/billing/hello", 8)
	h := startHostile(strings.TrimPrefix(e.edgeURL, "http://"))
	end := time.Now().Add(d)
	rounds, kills, pluginKills := 0, 0, 0
	for time.Now().Before(end) {
		rounds++
		digest := d2
		if rounds%2 == 0 {
			digest = d1
		}
		if _, err := c.Deploy(ctx, "billing", digest); err != nil {
			t.Fatal(err)
		}
		if rs, err := c.WaitRollout(ctx, "billing", digest, nil); err != nil || rs.State != "ready" {
			t.Fatalf("round %d: rollout %+v %v\n%s", rounds, rs, err, e.logs.String())
		}
		time.Sleep(400 * time.Millisecond) // old instances drain and stop
		st := e.status()
		if rounds%3 == 0 {
			if ready := pids(st, "ready"); len(ready) > 1 {
				_ = syscall.Kill(ready[rounds%len(ready)], syscall.SIGKILL)
				kills++
				waitFor(t, 15*time.Second, "respawn", func() bool { return len(pids(e.status(), "ready")) == len(ready) })
			}
		}
		if rounds%5 == 0 {
			for _, p := range st.Plugins {
				if p.Kind == "balancer" && p.PID > 0 {
					_ = syscall.Kill(p.PID, syscall.SIGKILL)
					pluginKills++
				}
			}
		}
	}
	h.finish()
	l.finish()
	t.Logf("soak %s: %d rollouts, %d workload kills, %d plugin kills, %d requests, %d failed",
		d, rounds, kills, pluginKills, l.ok.Load(), l.failed.Load())
	t.Logf("hostile: %d broken bodies, %d slow bodies, %d half-closes, %d flood connections; %d wrong answers",
		h.badBody.Load(), h.slowBody.Load(), h.halfClose.Load(), h.flooded.Load(), h.wrong.Load())
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during the soak (first: %v)", n, l.firstErr.Load())
	}
	if n := h.wrong.Load(); n != 0 {
		t.Fatalf("%d hostile requests got a wrong answer (first: %v)", n, h.firstWrong.Load())
	}
	if c := e.status().Edge["steady"]; c.Errors5xx != 0 || c.Ejected != 0 || c.Requests == 0 {
		t.Fatalf("steady app under hostile bodies: %+v, want requests, no 5xx, no ejection", c)
	}
}

// hostile runs misbehaving clients against the edge until finish, checking
// that each gets the answer meant for it.
type hostile struct {
	addr                                  string
	badBody, slowBody, halfClose, flooded atomic.Int64
	wrong                                 atomic.Int64
	firstWrong                            atomic.Value
	stop                                  chan struct{}
	wg                                    sync.WaitGroup
}

func startHostile(addr string) *hostile {
	h := &hostile{addr: addr, stop: make(chan struct{})}
	run := func(fn func()) {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				select {
				case <-h.stop:
					return
				default:
				}
				fn()
			}
		}()
	}
	// An invalid chunk size: 400.
	run(func() {
		h.expect(&h.badBody, "POST /steady/hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400)
	})
	// A body that never finishes arriving: 408 after request_body_timeout.
	run(func() {
		h.expect(&h.slowBody, "POST /steady/hello HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab", 408)
	})
	// A request and at once a half-close: the real answer if the endpoint
	// beat the edge to it, otherwise nothing; never an empty 200.
	run(func() {
		c, err := h.dial()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "GET /billing/hello HTTP/1.1\r\nHost: a\r\n\r\n")
		c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(c)
		h.halfClose.Add(1)
		if len(got) == 0 {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
		if err != nil {
			h.fail(fmt.Sprintf("half-close: unparsable answer %q", got))
			return
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(b) == 0 {
			h.fail(fmt.Sprintf("half-close: %s with %d body bytes", resp.Status, len(b)))
		}
	})
	// Bursts of idle connections.
	run(func() {
		var conns []net.Conn
		for i := 0; i < 200; i++ {
			if c, err := h.dial(); err == nil {
				conns = append(conns, c)
			}
		}
		h.flooded.Add(int64(len(conns)))
		select {
		case <-h.stop:
		case <-time.After(time.Second):
		}
		for _, c := range conns {
			c.Close()
		}
	})
	return h
}

func (h *hostile) dial() (net.Conn, error) {
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, nil
}

// expect sends raw and checks the status of the answer.
func (h *hostile) expect(n *atomic.Int64, raw string, status int) {
	c, err := h.dial()
	if err != nil {
		return
	}
	defer c.Close()
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	n.Add(1)
	if err != nil {
		h.fail(fmt.Sprintf("want %d, got no answer: %v", status, err))
		return
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		h.fail(fmt.Sprintf("want %d, got %s", status, resp.Status))
	}
}

func (h *hostile) fail(msg string) {
	h.wrong.Add(1)
	h.firstWrong.CompareAndSwap(nil, msg)
}

func (h *hostile) finish() {
	close(h.stop)
	h.wg.Wait()
}
