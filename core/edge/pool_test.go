package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func pipeConn(t *testing.T, idleFrom time.Time) *upConn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &upConn{c: a, idleFrom: idleFrom}
}

// The stack hands out the newest connection first, the reaper closes the
// oldest ones, and every connection holds a slot.
func TestConnPoolNewestFirstAndReap(t *testing.T) {
	p := newConnPool(10, 10)
	now := time.Now()
	var conns []*upConn
	for i := 0; i < 3; i++ {
		if _, ok, err := p.take(context.Background(), time.Second, false); !ok || err != nil {
			t.Fatalf("slot %d: %v", i, err)
		}
		conns = append(conns, pipeConn(t, now.Add(time.Duration(i)*time.Minute)))
	}
	for _, uc := range conns {
		if !p.put(uc) {
			t.Fatal("put refused")
		}
	}
	uc, _, _ := p.take(context.Background(), time.Second, false)
	if uc != conns[2] {
		t.Fatal("the newest connection was not reused first")
	}
	p.put(uc)
	p.reap(now.Add(90 * time.Second)) // conns[0] and conns[1] are older
	if n := p.idleCount(); n != 1 {
		t.Fatalf("%d idle after reaping, want 1", n)
	}
	if _, err := conns[0].c.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("reaped connection still open: %v", err)
	}
	if p.open != 1 {
		t.Errorf("%d slots held, want 1", p.open)
	}
	p.closeAll()
	if p.open != 0 || p.put(pipeConn(t, now)) {
		t.Errorf("after closeAll: %d slots held, or a connection pooled", p.open)
	}
}

// A request that finds every slot taken waits for a connection or a slot
// to be handed over, or gives up after its wait.
func TestConnPoolCap(t *testing.T) {
	p := newConnPool(1, 10)
	ctx := context.Background()
	if _, ok, _ := p.take(ctx, time.Second, false); !ok {
		t.Fatal("first slot refused")
	}
	if _, ok, err := p.take(ctx, 10*time.Millisecond, false); ok || !errors.Is(err, errPoolTimeout) {
		t.Fatalf("over the cap: ok %v, err %v; want a pool timeout", ok, err)
	}
	got := make(chan *upConn)
	go func() {
		uc, ok, err := p.take(ctx, 10*time.Second, false)
		if !ok || err != nil {
			t.Error(err)
		}
		got <- uc
	}()
	waitFor(t, 5*time.Second, "a waiter", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.waiters) == 1 })
	uc := pipeConn(t, time.Now())
	p.put(uc)
	if w := <-got; w != uc {
		t.Fatal("the waiter did not get the connection put back")
	}
	go func() {
		uc, ok, err := p.take(ctx, 10*time.Second, true)
		if !ok || err != nil || uc != nil {
			t.Errorf("waiter for a slot: %v %v %v", uc, ok, err)
		}
		got <- nil
	}()
	waitFor(t, 5*time.Second, "a waiter", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.waiters) == 1 })
	p.release() // the connection closed: its slot passes on
	<-got
	if p.open != 1 {
		t.Errorf("%d slots held, want 1", p.open)
	}
}

// With one connection allowed per endpoint, concurrent requests queue for
// it instead of opening more.
func TestMaxConnsPerEndpoint(t *testing.T) {
	var inside atomic.Int64
	var most atomic.Int64
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		if v := inside.Add(1); v > most.Load() {
			most.Store(v)
		}
		time.Sleep(5 * time.Millisecond)
		inside.Add(-1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	e := edgeTo(t, up.url(), Options{MaxConnsPerEndpoint: 1})
	c := testClient(t)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(edgeURL(e) + "/up/x")
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" {
				t.Errorf("%d %q", resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("endpoint accepted %d connections, want 1", n)
	}
}

// A request without a body that meets a pooled connection the endpoint
// has closed is sent on a new connection whatever its method: the probe
// saw the close before anything was written.
func TestBodylessRequestsAvoidClosedPooledConnection(t *testing.T) {
	closed := make(chan struct{}, 8)
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if req.URL.Path == "/prime" {
			c.Close() // the connection the edge pools
			closed <- struct{}{}
			return false
		}
		return true
	})
	e := edgeTo(t, up.url(), Options{})
	c := testClient(t)
	for _, method := range []string{"POST", "DELETE", "PUT"} {
		resp, err := c.Get(edgeURL(e) + "/up/prime")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		<-closed
		before := up.requests.Load()
		req, _ := http.NewRequest(method, edgeURL(e)+"/up/x", nil)
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Errorf("%s over a closed pooled connection: %d %q", method, resp.StatusCode, b)
		}
		if got := up.requests.Load() - before; got != 1 {
			t.Errorf("%s reached the endpoint %d times, want 1", method, got)
		}
	}
}

// A connection used moments ago is reused without a probe; one idle past
// the threshold is probed.
func TestRecentConnectionNotProbed(t *testing.T) {
	for _, tc := range []struct {
		name       string
		probeAfter time.Duration
		want       uint64
	}{
		{"used moments ago", 0, 0},
		{"probe always", -1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				return true
			})
			e := edgeTo(t, up.url(), Options{probeAfter: tc.probeAfter})
			c := testClient(t)
			for i := 0; i < 5; i++ {
				resp, err := c.Get(edgeURL(e) + "/up/x")
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if got := e.probes.Load(); got != tc.want {
				t.Errorf("%d probes, want %d", got, tc.want)
			}
			if n := up.accepted.Load(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

// Expect: 100-continue: the body follows the endpoint's 100 Continue, and
// is never sent when the endpoint answers first.
func TestExpectContinue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		accept bool
		want   int
		body   string
	}{
		{"accepted", true, 200, "got 6"},
		{"refused", false, 417, "no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listenLoopback(t)
			t.Cleanup(func() { ln.Close() })
			sawBody := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.Header.Get("Expect") != "100-continue" {
					sawBody <- "no Expect"
					return
				}
				if !tc.accept {
					io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 2\r\n\r\nno")
					c.SetReadDeadline(time.Now().Add(3 * time.Second))
					b, _ := io.ReadAll(br) // until the edge closes
					sawBody <- string(b)
					return
				}
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
				b, _ := io.ReadAll(req.Body)
				sawBody <- string(b)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ngot "+strconv.Itoa(len(b))[:1])
			}()
			e := edgeTo(t, "http://"+ln.Addr().String(), Options{})
			conn := dialEdge(t, e)
			// The client sends its body at once, as clients that do not
			// wait for 100 Continue do.
			io.WriteString(conn, "POST /up/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n")
			io.WriteString(conn, "abcdef")
			br := bufio.NewReader(conn)
			var resp *http.Response
			for {
				r, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if r.StatusCode != 100 {
					resp = r
					break
				}
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || string(b) != tc.body {
				t.Fatalf("answer %d %q, want %d %q", resp.StatusCode, b, tc.want, tc.body)
			}
			got := <-sawBody
			if tc.accept && got != "abcdef" || !tc.accept && strings.Contains(got, "abc") {
				t.Errorf("endpoint read %q", got)
			}
		})
	}
}

// An answer slower than the short first deadline of a request without a
// body is waited for, up to the upstream timeout, also when its header
// arrives in pieces on either side of that deadline.
func TestAnswerAfterHookDelay(t *testing.T) {
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		time.Sleep(hookDelay + hookDelay/2)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Part: ")
		time.Sleep(hookDelay + hookDelay/2)
		io.WriteString(c, "two\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	e := edgeTo(t, up.url(), Options{})
	resp, err := testClient(t).Get(edgeURL(e) + "/up/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" || resp.Header.Get("X-Part") != "two" {
		t.Fatalf("slow answer: %d %q %v", resp.StatusCode, b, resp.Header)
	}
}

// Requests with bodies, of known length or chunked with trailers, travel
// over the pool like the others: one connection carries them all, and the
// endpoint gets each body and trailer whole.
func TestBodiedRequestsOverThePool(t *testing.T) {
	type got struct {
		body, trailer string
		chunked       bool
	}
	seen := make(chan got, 16)
	ln := listenLoopback(t)
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(req.Body)
					seen <- got{string(b), req.Trailer.Get("X-Sum"), len(req.TransferEncoding) > 0}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	e := edgeTo(t, "http://"+ln.Addr().String(), Options{})
	c := testClient(t)
	for i := 0; i < 4; i++ {
		var req *http.Request
		if i%2 == 0 {
			req, _ = http.NewRequest("POST", edgeURL(e)+"/up/x", strings.NewReader("body "+strconv.Itoa(i)))
		} else {
			req, _ = http.NewRequest("PUT", edgeURL(e)+"/up/x", io.MultiReader(strings.NewReader("body "+strconv.Itoa(i))))
			req.Trailer = http.Header{"X-Sum": nil}
			req.Body = &trailerBody{r: req.Body, set: func() { req.Trailer.Set("X-Sum", "s"+strconv.Itoa(i)) }}
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		g := <-seen
		want := got{body: "body " + strconv.Itoa(i)}
		if i%2 == 1 {
			want.trailer, want.chunked = "s"+strconv.Itoa(i), true
		}
		if g != want {
			t.Errorf("request %d: endpoint got %+v, want %+v", i, g, want)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d endpoint connections for 4 requests, want 1", n)
	}
}

// trailerBody sets the request's trailer when its body ends, as a client
// computing a checksum would.
type trailerBody struct {
	r   io.ReadCloser
	set func()
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.set()
	}
	return n, err
}

func (b *trailerBody) Close() error { return b.r.Close() }

// Bytes an endpoint sends a moment after an answer that has no body by
// rule (HEAD, 204, 304) are caught before the connection carries another
// request, however recently it was used.
func TestLateBytesAfterBodilessAnswer(t *testing.T) {
	for _, tc := range []struct{ method, answer string }{
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"},
		{"GET", "HTTP/1.1 204 No Content\r\n\r\n"},
		{"GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 6\r\n\r\n"},
	} {
		t.Run(tc.method+" "+tc.answer[9:12], func(t *testing.T) {
			wrote := make(chan struct{}, 1)
			up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
				if req.URL.Path == "/next" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					return true
				}
				io.WriteString(c, tc.answer)
				time.Sleep(20 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON")
				wrote <- struct{}{}
				return true
			})
			e := edgeTo(t, up.url(), Options{})
			c := testClient(t)
			req, _ := http.NewRequest(tc.method, edgeURL(e)+"/up/first", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			<-wrote
			time.Sleep(10 * time.Millisecond) // the late bytes reach the edge's socket
			resp, err = c.Get(edgeURL(e) + "/up/next")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" {
				t.Fatalf("the next request got %d %q", resp.StatusCode, b)
			}
		})
	}
}

// Many clients, mixed methods and bodies, few connections: every request
// is answered whole and the cap holds.
func TestPoolUnderConcurrentMixedLoad(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", strconv.Itoa(len(b)))
		io.WriteString(w, r.Method+" "+r.URL.Path)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	e := edgeTo(t, srv.URL, Options{MaxConnsPerEndpoint: 2})
	c := testClient(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				method, body := "GET", ""
				switch (g + i) % 3 {
				case 1:
					method, body = "POST", strings.Repeat("b", i*100)
				case 2:
					method = "DELETE"
				}
				path := "/p" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				req, _ := http.NewRequest(method, edgeURL(e)+"/up"+path, strings.NewReader(body))
				if body == "" {
					req.Body, req.ContentLength = nil, 0
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != method+" "+path || resp.Header.Get("X-Len") != strconv.Itoa(len(body)) {
					t.Errorf("%s %s: %d %q len %s", method, path, resp.StatusCode, b, resp.Header.Get("X-Len"))
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n > 2 {
		t.Errorf("%d endpoint connections, cap 2", n)
	}
}

// A request that finds every connection of a busy endpoint taken for the
// whole upstream timeout gets a 504, and the endpoint is not ejected for
// being busy.
func TestSaturatedEndpointNotEjected(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	entered := make(chan struct{}, 1)
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		if req.URL.Path == "/hold" {
			// The answer starts at once and ends on release: the one
			// connection stays busy without the request timing out.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no")
			entered <- struct{}{}
			<-release
			io.WriteString(c, "k")
			return true
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	e := edgeTo(t, up.url(), Options{MaxConnsPerEndpoint: 1, UpstreamTimeout: 300 * time.Millisecond,
		Outlier: OutlierOptions{Consecutive5xx: 1, MaxEjectionPercent: 100}})
	c := testClient(t)
	held := make(chan int, 1)
	go func() {
		resp, err := c.Get(edgeURL(e) + "/up/hold")
		if err != nil {
			held <- 0
			return
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-entered
	for i := 0; i < 3; i++ {
		resp, err := c.Get(edgeURL(e) + "/up/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("request %d to a saturated endpoint: %d, want 504", i, resp.StatusCode)
		}
	}
	once.Do(func() { close(release) })
	if code := <-held; code != 200 {
		t.Errorf("held request: %d", code)
	}
	if c := e.Counters()["up"]; c.Ejected != 0 {
		t.Errorf("counters %+v: a busy endpoint was ejected", c)
	}
}
