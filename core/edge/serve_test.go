package edge

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mycelium-mesh/mesh/core/fabric"
)

// parseHead takes a head only when it reads it as net/http does: for every
// head it takes, the request it builds matches http.ReadRequest's.
func TestParseHeadTakesOrHandsOver(t *testing.T) {
	cases := []struct {
		head string
		take bool
	}{
		{"GET /up/x HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"GET /up/x?q=1&r=%41 HTTP/1.1\r\nHost: a:80\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n", true},
		{"GET /up/x? HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"GET /up/x?? HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"GET /up/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n", true}, // through url.ParseRequestURI
		{"GET /up/p|e HTTP/1.1\r\nHost: a\r\n\r\n", true},
		{"HEAD /up/x HTTP/1.1\r\nhost: a\r\nx-lower-case: 1\r\nCONTENT-TYPE: t\r\n\r\n", true},
		{"DELETE /up/x HTTP/1.1\r\nHost: a\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\n", true},
		{"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\nX-M: 1\r\nX-M: 2\r\n\r\n", true},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nX-Sp:   padded \t \r\nX-Empty:\r\n\r\n", true},
		{"BREW /up/x HTTP/1.1\r\nHost: a\r\n\r\n", true},
		// Left to net/http.
		{"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n", false},
		{"POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n", false},
		{"GET /up/x HTTP/1.0\r\nHost: a\r\n\r\n", false},
		{"GET http://a/up/x HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"get /up/x HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\nHost: a b\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nX-F: a\r\n b\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\r\nHost: a\r\nX-C: a\x01\r\n\r\n", false},
		{"GET /up/x HTTP/1.1\nHost: a\n\n", false},
		{"\r\nGET /up/x HTTP/1.1\r\nHost: a\r\n\r\n", false},
	}
	for _, tc := range cases {
		t.Run(strings.SplitN(tc.head, "\r\n", 2)[0], func(t *testing.T) {
			c := &clientConn{hdr: http.Header{}, remote: "192.0.2.1:1234"}
			c.ctx = &clientCtx{c: c}
			c.reqBase = *(&http.Request{}).WithContext(c.ctx)
			b := []byte(tc.head)
			if n := headEnd(b); n != len(b) {
				t.Fatalf("headEnd = %d, want %d", n, len(b))
			}
			if got := c.parseHead(b); got != tc.take {
				t.Fatalf("parseHead = %v, want %v", got, tc.take)
			}
			if !tc.take {
				return
			}
			want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.head)))
			if err != nil {
				t.Fatalf("net/http refuses a head the loop takes: %v", err)
			}
			delete(want.Header, "Host") // as net/http's server does
			got := &c.req
			if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
				got.Close != want.Close || got.ContentLength != want.ContentLength || got.Proto != want.Proto {
				t.Errorf("request %s %s host=%s close=%v len=%d, want %s %s host=%s close=%v len=%d",
					got.Method, got.RequestURI, got.Host, got.Close, got.ContentLength,
					want.Method, want.RequestURI, want.Host, want.Close, want.ContentLength)
			}
			if !reflect.DeepEqual(*got.URL, *want.URL) {
				t.Errorf("URL %#v, want %#v", *got.URL, *want.URL)
			}
			if !reflect.DeepEqual(got.Header, want.Header) {
				t.Errorf("header %v, want %v", got.Header, want.Header)
			}
			if got.Context() != c.ctx || got.RemoteAddr != c.remote {
				t.Error("request lost its connection's context or address")
			}
		})
	}
}

// Shutdown closes a keep-alive connection waiting for its next request,
// lets the request in flight finish (its answer says the connection
// closes), and then returns.
func TestShutdownDrainsTheConnectionLoop(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "up", URL: up.URL, NodeID: "n1"})
	e, err := New(Options{Source: f, Balancers: roundRobin})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	waitEndpoints(t, e, "up", 1)

	idle := dialEdge(t, e)
	io.WriteString(idle, "GET /up/fast HTTP/1.1\r\nHost: a\r\n\r\n")
	ibr := bufio.NewReader(idle)
	resp, err := http.ReadResponse(ibr, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first answer: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)

	busy := dialEdge(t, e)
	io.WriteString(busy, "GET /up/slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-entered
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.Shutdown(ctx)
	}()
	// The idle connection is closed without an answer.
	if b, err := io.ReadAll(ibr); len(b) != 0 || err != nil && !isReset(err) {
		t.Fatalf("idle connection got %q, %v; want it closed", b, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	resp, err = http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("request in flight: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" || !resp.Close {
		t.Fatalf("request in flight got %d %q close=%v; want 200 ok and the connection closing", resp.StatusCode, b, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// appendFields writes header lines as http.Header.Write does.
func TestAppendFieldsAsHeaderWrite(t *testing.T) {
	for _, vv := range [][]string{
		nil,
		{"plain"},
		{"  padded\t ", "two"},
		{"a\r\nInjected: 1", "b\nc\rd"},
		{""},
	} {
		var want strings.Builder
		http.Header{"X-K": vv}.Write(&want)
		if got := string(appendFields(nil, "X-K", vv)); got != want.String() {
			t.Errorf("%q: got %q, want %q", vv, got, want.String())
		}
	}
}
