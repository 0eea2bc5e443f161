package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// rawUpstream is an HTTP/1.1 endpoint on loopback that writes exactly the
// bytes a test gives it, to reach answers a well-behaved server never sends.
type rawUpstream struct {
	ln       net.Listener
	accepted atomic.Int64
	requests atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

// startRaw serves each request with serve, which writes the answer and
// tells whether to keep reading requests on the connection; n is the
// request's index on its connection, from 0.
func startRaw(t *testing.T, serve func(c net.Conn, req *http.Request, n int) bool) *rawUpstream {
	t.Helper()
	u := &rawUpstream{ln: listenLoopback(t)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		u.ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := u.ln.Accept()
			if err != nil {
				return
			}
			u.accepted.Add(1)
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					u.requests.Add(1)
					if !serve(c, req, n) {
						return
					}
				}
			}()
		}
	}()
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.ln.Addr().String() }

// edgeTo starts an edge routing app "up" to one endpoint.
func edgeTo(t testing.TB, endpoint string, opts Options) *Edge {
	t.Helper()
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "up", URL: endpoint, NodeID: "n1"})
	opts.Source = f
	e := startEdge(t, opts)
	waitEndpoints(t, e, "up", 1)
	return e
}

// testClient does not share connections with other tests and gives up
// rather than hang.
func testClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestUpstreamResponseFraming sends three requests in a row for each kind
// of answer and checks what the client gets and whether the edge kept the
// endpoint connection for the next request.
func TestUpstreamResponseFraming(t *testing.T) {
	bigValue := strings.Repeat("v", 256<<10)
	cases := []struct {
		name    string
		method  string
		answer  string // bytes the endpoint writes per request
		late    string // written 20ms after the answer
		probe   bool   // probe every reused connection
		close   bool   // endpoint closes after answering
		status  int
		body    string
		header  map[string]string // "" means must be absent
		trailer map[string]string
		conns   int64 // connections the endpoint sees for 3 requests
	}{
		{name: "content length", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Multi: a\r\nX-Multi: b\r\n\r\nhello",
			status: 200, body: "hello", header: map[string]string{"X-Multi": "a"}, conns: 1},
		{name: "chunked with trailers", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\nX-Late: z\r\n\r\n",
			status: 200, body: "hello world", trailer: map[string]string{"X-Sum": "abc", "X-Late": "z"}, conns: 1},
		{name: "no length, read to close", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", close: true,
			status: 200, body: "until the end", header: map[string]string{"Connection": ""}, conns: 3},
		{name: "HTTP/1.0 without keep-alive", method: "GET",
			answer: "HTTP/1.0 200 OK\r\n\r\nold", close: true, status: 200, body: "old", conns: 3},
		{name: "HEAD keeps Content-Length, sends no body", method: "HEAD",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
			status: 200, header: map[string]string{"Content-Length": "1234"}, conns: 1},
		{name: "204 has no body", method: "GET",
			answer: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, conns: 1},
		{name: "304 has no body", method: "GET",
			answer: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n",
			status: 304, header: map[string]string{"Etag": `"x"`}, conns: 1},
		{name: "informational answers first", method: "GET",
			answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" +
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", header: map[string]string{"Link": ""}, conns: 1},
		{name: "Connection: close on a connection left open", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
			status: 200, body: "ok", conns: 3},
		{name: "hop-by-hop answer headers dropped", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Hop, keep-alive\r\nX-Hop: secret\r\n" +
				"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Keep: yes\r\n\r\nok",
			status: 200, body: "ok", conns: 1,
			header: map[string]string{"X-Hop": "", "Keep-Alive": "", "Proxy-Connection": "", "X-Keep": "yes"}},
		{name: "bytes after the body", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON",
			status: 200, body: "ok", conns: 3},
		{name: "body on a HEAD answer", method: "HEAD",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON",
			status: 200, header: map[string]string{"Content-Length": "6"}, conns: 3},
		{name: "bytes after the body, late", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			late:   "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON", probe: true,
			status: 200, body: "ok", conns: 3},
		{name: "chunked wins over Content-Length", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			status: 200, body: "hello", conns: 1},
		{name: "conflicting Content-Length", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
			status: 502, conns: 3},
		{name: "very large header", method: "GET",
			answer: "HTTP/1.1 200 OK\r\nX-Big: " + bigValue + "\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", header: map[string]string{"X-Big": bigValue}, conns: 1},
		{name: "header over the limit", method: "GET",
			answer: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Big: "+strings.Repeat("v", 1000)+"\r\n", 1100) + "Content-Length: 2\r\n\r\nok",
			status: 502, conns: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
				io.WriteString(c, tc.answer)
				if tc.late != "" {
					time.Sleep(20 * time.Millisecond)
					io.WriteString(c, tc.late)
				}
				return !tc.close
			})
			opts := Options{}
			if tc.probe {
				// Late bytes are seen by the probe of a connection idle
				// past the probe threshold; within it they would be taken
				// for the next answer (see upstream.go).
				opts.probeAfter = -1
			}
			e := edgeTo(t, up.url(), opts)
			c := testClient(t)
			for i := 0; i < 3; i++ {
				req, _ := http.NewRequest(tc.method, edgeURL(e)+"/up/x", nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("request %d: body: %v", i, err)
				}
				if resp.StatusCode != tc.status || (tc.status < 500 && string(b) != tc.body) {
					t.Fatalf("request %d: %d %.60q, want %d %q", i, resp.StatusCode, b, tc.status, tc.body)
				}
				for k, want := range tc.header {
					if got := resp.Header.Get(k); got != want {
						t.Errorf("request %d: header %s = %.40q, want %.40q", i, k, got, want)
					}
				}
				for k, want := range tc.trailer {
					if got := resp.Trailer.Get(k); got != want {
						t.Errorf("request %d: trailer %s = %q, want %q (trailers %v)", i, k, got, want, resp.Trailer)
					}
				}
				if tc.late != "" {
					time.Sleep(60 * time.Millisecond) // the late bytes arrive on the pooled connection
				}
			}
			if got := up.accepted.Load(); got != tc.conns {
				t.Errorf("endpoint accepted %d connections, want %d", got, tc.conns)
			}
		})
	}
}

// TestUpstreamAbortMidBody: an endpoint that dies mid-body must give the
// client a broken response, never a complete-looking short one, and its
// connection must not be pooled.
func TestUpstreamAbortMidBody(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nonly ten..\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
				if req.URL.Path == "/ok" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					return true
				}
				io.WriteString(c, tc.answer)
				return false
			})
			e := edgeTo(t, up.url(), Options{})
			c := testClient(t)
			resp, err := c.Get(edgeURL(e) + "/up/ok")
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			// The edge may abort before or after the header reached the
			// client: either way the client must see an error.
			// A fresh client connection, so the client does not retry.
			once := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			resp, err = once.Get(edgeURL(e) + "/up/broken")
			if err == nil {
				var b []byte
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Fatalf("%d %q read without error: the truncation is invisible", resp.StatusCode, b)
				}
			}
			if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Timeout") {
				t.Fatalf("client hung: %v", err)
			}
			resp, err = c.Get(edgeURL(e) + "/up/ok")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok" {
				t.Fatalf("after the abort: %d %q", resp.StatusCode, b)
			}
			if got := up.accepted.Load(); got != 2 {
				t.Errorf("endpoint accepted %d connections, want 2 (one pooled, one after the abort)", got)
			}
			waitFor(t, 5*time.Second, "counters", func() bool { return e.Counters()["up"].Requests == 3 })
			if got := e.Counters()["up"]; got.Errors5xx != 1 || got.ClientClosed != 0 {
				t.Errorf("counters %+v, want one 5xx", got)
			}
		})
	}
}

// TestKeepAliveReuse counts the connections the endpoint accepts.
func TestKeepAliveReuse(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	e := edgeTo(t, srv.URL, Options{})
	c := testClient(t)
	get := func() {
		resp, err := c.Get(edgeURL(e) + "/up/x")
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Errorf("body %q", b)
		}
	}
	for i := 0; i < 50; i++ {
		get()
	}
	if got := conns.Load(); got != 1 {
		t.Fatalf("50 sequential requests used %d endpoint connections, want 1", got)
	}
	const workers = 4
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				get()
			}
		}()
	}
	wg.Wait()
	if got := conns.Load(); got > workers {
		t.Fatalf("%d concurrent clients used %d endpoint connections, want at most %d", workers, got, workers)
	}
}

// TestStaleConnectionRetriedOnFreshOne: pooled connections that the endpoint
// drops just as a request arrives. A GET is retried once, on a new
// connection, even when the pool holds more dropped ones; a POST is not
// replayed.
func TestStaleConnectionRetriedOnFreshOne(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(3)
	release := make(chan struct{})
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		if n > 0 {
			return false // closes the connection without an answer
		}
		if req.URL.Path == "/hold" {
			arrived.Done()
			<-release
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	e := edgeTo(t, up.url(), Options{})
	c := testClient(t)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(edgeURL(e) + "/up/hold")
			if err != nil {
				t.Error(err)
				return
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}()
	}
	arrived.Wait()
	close(release)
	wg.Wait()
	if up.accepted.Load() != 3 {
		t.Fatalf("setup: %d connections, want 3 pooled", up.accepted.Load())
	}
	resp, err := c.Get(edgeURL(e) + "/up/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("GET over dropped pooled connections: %d %q", resp.StatusCode, b)
	}
	if got := up.accepted.Load(); got != 4 {
		t.Errorf("endpoint accepted %d connections, want 4: one try on a pooled one, one on a fresh one", got)
	}
	before := up.requests.Load()
	resp, err = c.Post(edgeURL(e)+"/up/x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("POST over a dropped connection: %d, want 502", resp.StatusCode)
	}
	if got := up.requests.Load() - before; got != 1 {
		t.Errorf("endpoint saw the POST %d times, want 1", got)
	}
}

// TestRequestForwarding checks the request an endpoint receives, from the
// exact bytes a client sends.
func TestRequestForwarding(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "hop")
		w.Header().Set("Upgrade", "nope")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	e := edgeTo(t, srv.URL, Options{})
	const target = "/up/a|b/%2F%41{x}/?q=%41&x=a+b&&y"
	conn, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: edge.example:8080\r\nx-multi: one\r\nX-Multi: two\r\n"+
		"Connection: keep-alive, X-Hop, x-other-hop\r\nX-Hop: 1\r\nX-Other-Hop: 2\r\nKeep-Alive: 300\r\n"+
		"Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nTe: deflate, trailers\r\nUpgrade: h2c\r\n"+
		"X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Host: spoofed\r\nX-Forwarded-Proto: https\r\nX-Mycelium-Edge: spoofed\r\n"+
		"User-Agent: tester/1\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	var r *http.Request
	select {
	case r = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("endpoint got no request")
	}
	if r.RequestURI != "/a|b/%2F%41{x}/?q=%41&x=a+b&&y" {
		t.Errorf("request target %q, not byte for byte", r.RequestURI)
	}
	if r.Host != strings.TrimPrefix(srv.URL, "http://") {
		t.Errorf("Host %q, want the endpoint's %q", r.Host, srv.URL)
	}
	want := map[string][]string{
		"X-Multi":             {"one", "two"},
		"X-Hop":               nil,
		"X-Other-Hop":         nil,
		"Keep-Alive":          nil,
		"Proxy-Connection":    nil,
		"Proxy-Authorization": nil,
		"Upgrade":             nil,
		"Te":                  {"trailers"},
		"X-Forwarded-For":     {"127.0.0.1"}, // not from a trusted proxy: replaced
		"X-Forwarded-Host":    {"edge.example:8080"},
		"X-Forwarded-Proto":   {"http"},
		"User-Agent":          {"tester/1"},
	}
	for k, v := range want {
		if g := r.Header[k]; strings.Join(g, "|") != strings.Join(v, "|") {
			t.Errorf("endpoint header %s = %q, want %q", k, g, v)
		}
	}
	if c := r.Header.Get("Connection"); c != "" && !strings.EqualFold(c, "keep-alive") {
		t.Errorf("Connection %q reached the endpoint", c)
	}
	if ts, err := time.Parse(time.RFC3339, r.Header.Get(HeaderEdge)); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("%s = %q, want the edge's time (%v)", HeaderEdge, r.Header.Get(HeaderEdge), err)
	}
	for _, k := range []string{"X-Secret", "Upgrade"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("answer header %s = %q reached the client", k, v)
		}
	}
	if g := resp.Header["Set-Cookie"]; len(g) != 2 {
		t.Errorf("Set-Cookie %q, want both values", g)
	}
}

// TestUpstreamTimeoutClosesConnection: on the pooled path an endpoint that
// never answers gets a 504 within the timeout, and its connection is closed.
func TestUpstreamTimeoutClosesConnection(t *testing.T) {
	closed := make(chan struct{})
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
			close(closed)
		}
		return false
	})
	e := edgeTo(t, up.url(), Options{UpstreamTimeout: 150 * time.Millisecond})
	resp, err := testClient(t).Get(edgeURL(e) + "/up/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", resp.StatusCode)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the edge kept the timed-out connection open")
	}
}

// TestClientCancelMidResponse: a client leaving mid-body counts as 499, and
// the endpoint connection is closed rather than pooled.
func TestClientCancelMidResponse(t *testing.T) {
	closed := make(chan struct{})
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		if req.URL.Path == "/ok" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return true
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
			close(closed)
		}
		return false
	})
	e := edgeTo(t, up.url(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", edgeURL(e)+"/up/stream", nil)
	c := testClient(t)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first chunk %q: %v", buf, err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the endpoint connection stayed open after the client left")
	}
	waitFor(t, 5*time.Second, "client-closed count", func() bool { return e.Counters()["up"].ClientClosed == 1 })
	if got := e.Counters()["up"]; got.Errors5xx != 0 || got.Requests != 1 {
		t.Errorf("counters %+v, want 1 request, no 5xx", got)
	}
	resp, err = c.Get(edgeURL(e) + "/up/ok")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" || up.accepted.Load() != 2 {
		t.Errorf("next request: %q over %d connections, want ok over 2", b, up.accepted.Load())
	}
}

// BenchmarkForwardGET measures small GETs through the pooled path against
// a loopback endpoint, relative to the same client calling the endpoint
// directly.
func BenchmarkForwardGET(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	b.Cleanup(srv.Close)
	e := edgeTo(b, srv.URL, Options{})
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	run := func(b *testing.B, u string) float64 {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := c.Get(u)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		rps := float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rps, "req/s")
		return rps
	}
	var direct float64
	b.Run("direct", func(b *testing.B) { direct = run(b, srv.URL+"/x") })
	b.Run("edge", func(b *testing.B) {
		rps := run(b, edgeURL(e)+"/up/x")
		if direct > 0 {
			b.ReportMetric(rps/direct, "x-direct")
		}
	})
}

// 103 Early Hints (and other informational answers but 100 Continue) reach
// the client before the final answer, whose headers they do not leak into.
func TestInformationalRelayed(t *testing.T) {
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"+
			"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	e := edgeTo(t, up.url(), Options{})
	var got []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, code)
		if code == http.StatusEarlyHints {
			link = h.Get("Link")
		}
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, edgeURL(e)+"/up/x", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("final answer %d %q", resp.StatusCode, b)
	}
	if len(got) != 1 || got[0] != http.StatusEarlyHints || link != "</s.css>; rel=preload" {
		t.Fatalf("informational answers seen %v, Link %q; want [103] with the preload link", got, link)
	}
	if resp.Header.Get("Link") != "" || resp.Header.Get(HeaderEdge) == "" {
		t.Fatalf("final headers wrong: %v", resp.Header)
	}
}
