package edge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// dialEdge opens a raw connection to the edge that the test closes.
func dialEdge(t *testing.T, e *Edge) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // fail rather than hang
	return c.(*net.TCPConn)
}

// A client that half-closes its connection after its request is taken for
// gone: the response is aborted, and nothing the endpoint never said (the
// empty 200 net/http writes for a handler that returns without writing)
// reaches the connection.
func TestHalfClosedClientGetsNoFabricatedAnswer(t *testing.T) {
	entered := make(chan struct{}, 4)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		entered <- struct{}{}
		<-r.Context().Done() // until the edge hangs up
	}))
	t.Cleanup(hang.Close)
	e := edgeTo(t, hang.URL, Options{})
	for _, tc := range []struct{ name, req string }{
		{"GET, pooled path", "GET /up/x HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"POST with a body", "POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Counters()["up"]
			c := dialEdge(t, e)
			io.WriteString(c, tc.req)
			<-entered
			c.CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil && !isReset(err) {
				t.Fatalf("read: %v", err)
			}
			if len(got) != 0 {
				t.Fatalf("half-closed client got %q, want the connection closed with nothing written", got)
			}
			waitFor(t, 5*time.Second, "client-closed count", func() bool {
				return e.Counters()["up"].ClientClosed == before.ClientClosed+1
			})
			if c := e.Counters()["up"]; c.Errors5xx != before.Errors5xx {
				t.Errorf("counters %+v: a client gone is no 5xx", c)
			}
		})
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// A client's broken request body is answered 400 (408 when it does not
// arrive in time) and is never held against the endpoint: many of them in a
// row leave a healthy endpoint in the routing table.
func TestClientBodyErrorsSpareTheEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	e := edgeTo(t, srv.URL, Options{
		RequestBodyTimeout: 300 * time.Millisecond,
		Outlier:            OutlierOptions{MaxEjectionPercent: 100},
	})
	cases := []struct {
		name string
		req  string
		want int
	}{
		{"invalid chunk size", "POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk longer than its size", "POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", 400},
		{"body slower than the timeout", "POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab", 408},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// More than Consecutive5xx (5) in a row.
			for i := 0; i < 8; i++ {
				c := dialEdge(t, e)
				io.WriteString(c, tc.req)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, tc.want)
				}
				c.Close()
			}
		})
	}
	cs := e.Counters()["up"]
	if cs.Errors5xx != 0 || cs.Ejected != 0 || cs.Endpoints != 1 {
		t.Fatalf("counters %+v: client mistakes were held against the endpoint", cs)
	}
	resp, err := testClient(t).Get(edgeURL(e) + "/up/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("well-behaved request after the bad ones: %d", resp.StatusCode)
	}
}

// Headers that an answer names in Connection are hop-by-hop even when
// Connection also says close (which http.ReadResponse deletes the field
// for).
func TestConnectionCloseHopByHopStripped(t *testing.T) {
	cases := []struct{ name, head string }{
		{"close first", "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: hop\r\nContent-Length: 2\r\n\r\n"},
		{"close last, lower case", "HTTP/1.1 200 OK\r\nX-Secret: hop\r\nconnection: x-secret, close\r\nContent-Length: 2\r\n\r\n"},
		{"two fields", "HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: X-Secret\r\nX-Secret: hop\r\nContent-Length: 2\r\n\r\n"},
		{"bare LF lines", "HTTP/1.1 200 OK\nConnection: close, X-Secret\nX-Secret: hop\nContent-Length: 2\n\n"},
		{"after 103", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: hop\r\nContent-Length: 2\r\n\r\n"},
	}
	for _, tc := range cases {
		for _, method := range []string{"GET", "POST"} {
			t.Run(tc.name+", "+method, func(t *testing.T) {
				testConnectionCloseHopByHop(t, tc.head, method)
			})
		}
	}
}

func testConnectionCloseHopByHop(t *testing.T, head, method string) {
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		io.WriteString(c, head+"ok")
		return false
	})
	e := edgeTo(t, up.url(), Options{})
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("a body")
	}
	req, _ := http.NewRequest(method, edgeURL(e)+"/up/x", body)
	resp, err := testClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("answer %d %q", resp.StatusCode, b)
	}
	if v, ok := resp.Header["X-Secret"]; ok {
		t.Fatalf("hop-by-hop X-Secret = %q reached the client", v)
	}
}

// peekConnection reads a header block without consuming it.
func TestPeekConnection(t *testing.T) {
	cases := []struct {
		in   string
		want string // values joined by "|"; "" for nil
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", ""},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", ""},
		{"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-A\r\n\r\n", "keep-alive, X-A"},
		{"HTTP/1.1 200 OK\r\nConnection: close, X-A\r\n\r\nConnection: X-Body", "close, X-A"},
		{"HTTP/1.1 200 OK\nConnection: close, X-A\n\nConnection: X-Body\r\n\r\n", "close, X-A"},
		{"HTTP/1.1 200 OK\r\nCONNECTION: X-A\r\nconnection: close\r\n\r\n", "X-A|close"},
		{"HTTP/1.1 200 OK\r\nX-Note: the connection was fine\r\n\r\n", ""},
	}
	for _, tc := range cases {
		br := bufio.NewReaderSize(strings.NewReader(tc.in), 64)
		got := strings.Join(peekConnection(br), "|")
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
		if rest, _ := io.ReadAll(br); string(rest) != tc.in {
			t.Errorf("%q: consumed bytes, %q left", tc.in, rest)
		}
	}
	// Larger than the buffer: nothing, and nothing consumed.
	big := "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("a", 100) + "\r\nConnection: close, X-A\r\n\r\n"
	br := bufio.NewReaderSize(strings.NewReader(big), 32)
	if got := peekConnection(br); got != nil {
		t.Errorf("oversized header: %q", got)
	}
}

// Informational answers are not sent to HTTP/1.0 clients, which would take
// them for the final answer.
func TestInformationalNotRelayedToHTTP10(t *testing.T) {
	up := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	e := edgeTo(t, up.url(), Options{})
	c := dialEdge(t, e)
	io.WriteString(c, "GET /up/x HTTP/1.0\r\nHost: a\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	status, _, _ := strings.Cut(string(got), "\r\n")
	if !strings.HasPrefix(status, "HTTP/1.") || !strings.Contains(status, " 200 ") || strings.Contains(string(got), " 103 ") {
		t.Fatalf("HTTP/1.0 client got %q, want only the final 200", got)
	}
}

// An endpoint that trickles a body of known length is cut off at
// WriteTimeout, and so is a client that does not read one: neither holds the
// request (and its endpoint connection) forever.
func TestSlowBodiesAreCutOff(t *testing.T) {
	trickle := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
		for i := 0; i < 1000; i++ {
			if _, err := io.WriteString(c, "x"); err != nil {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	})
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(1<<30))
		buf := make([]byte, 1<<16)
		for i := 0; i < 1<<14; i++ {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	t.Cleanup(big.Close)
	for _, tc := range []struct {
		name, url string
		read      bool
	}{
		{"endpoint trickles", trickle.url(), true},
		{"client does not read", big.URL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := edgeTo(t, tc.url, Options{WriteTimeout: 300 * time.Millisecond})
			c := dialEdge(t, e)
			c.SetReadBuffer(4 << 10)
			io.WriteString(c, "GET /up/x HTTP/1.1\r\nHost: a\r\n\r\n")
			if tc.read {
				io.Copy(io.Discard, c)
			}
			waitFor(t, 8*time.Second, "the request to end", func() bool {
				cs := e.Counters()["up"]
				return cs.Requests == 1 && cs.InFlight == 0
			})
		})
	}
}

// A streaming answer may last, but not in silence: after StreamIdleTimeout
// without a byte the edge closes it. So does an idle upgraded connection.
func TestStreamsCloseWhenIdle(t *testing.T) {
	sse := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata:1\r\n")
		io.Copy(io.Discard, c) // silent until the edge hangs up
		return false
	})
	ws := startRaw(t, func(c net.Conn, req *http.Request, n int) bool {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nhi")
		io.Copy(io.Discard, c)
		return false
	})
	for _, tc := range []struct{ name, url, req string }{
		{"server-sent events", sse.url(), "GET /up/x HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"upgraded connection", ws.url(), "GET /up/x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := edgeTo(t, tc.url, Options{StreamIdleTimeout: 300 * time.Millisecond, WriteTimeout: 50 * time.Millisecond})
			c := dialEdge(t, e)
			io.WriteString(c, tc.req)
			got, _ := io.ReadAll(c) // returns when the edge closes
			if !strings.Contains(string(got), "data:1") && !strings.HasSuffix(string(got), "hi") {
				t.Fatalf("stream cut before its first bytes: %q", got)
			}
			waitFor(t, 5*time.Second, "the request to end", func() bool { return e.Counters()["up"].InFlight == 0 })
		})
	}
}
