package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mycelium-mesh/mesh/core/fabric"
	"github.com/mycelium-mesh/mesh/sdk"
)

// echo is what the hello workload's catch-all handler answers.
type echo struct {
	Method   string            `json:"method"`
	Path     string            `json:"path"`
	RawPath  string            `json:"raw_path"`
	Query    string            `json:"query"`
	Instance string            `json:"instance"`
	Headers  map[string]string `json:"headers"`
}

func getEcho(t *testing.T, c *http.Client, u string) (echo, *http.Response) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var ec echo
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&ec); err != nil {
			t.Fatalf("GET %s: decode: %v", u, err)
		}
	}
	return ec, resp
}

func TestExactRoundRobin(t *testing.T) {
	f := newFabric(t)
	names := []string{"i1", "i2", "i3"}
	for i, n := range names {
		f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, n), NodeID: fmt.Sprintf("node-%d", i+1)})
	}
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "billing", 3)

	const rounds = 10
	var got []string
	counts := map[string]int{}
	for i := 0; i < rounds*len(names); i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		stamp := resp.Header.Get(HeaderEdge)
		if _, err := time.Parse(time.RFC3339, stamp); err != nil {
			t.Fatalf("%s = %q: %v", HeaderEdge, stamp, err)
		}
		inst := resp.Header.Get("X-Hello-Instance")
		got = append(got, inst)
		counts[inst]++
	}
	// The rotation may start anywhere, then follows endpoint order exactly.
	start := -1
	for i, n := range names {
		if n == got[0] {
			start = i
		}
	}
	if start < 0 {
		t.Fatalf("unknown instance %q", got[0])
	}
	for i, inst := range got {
		if want := names[(start+i)%len(names)]; inst != want {
			t.Fatalf("request %d went to %s, want %s (sequence %v)", i, inst, want, got)
		}
	}
	for _, n := range names {
		if counts[n] != rounds {
			t.Errorf("%s served %d, want %d", n, counts[n], rounds)
		}
	}

	// The forwarded request carries the edge and forwarding headers.
	ec, resp := getEcho(t, http.DefaultClient, edgeURL(e)+"/billing/x")
	if _, err := time.Parse(time.RFC3339, ec.Headers[HeaderEdge]); err != nil {
		t.Errorf("forwarded %s = %q: %v", HeaderEdge, ec.Headers[HeaderEdge], err)
	}
	if ec.Headers["X-Forwarded-For"] != "127.0.0.1" || ec.Headers["X-Forwarded-Proto"] != "http" ||
		ec.Headers["X-Forwarded-Host"] != e.Addr().String() {
		t.Errorf("forwarding headers: %v", ec.Headers)
	}
	if resp.Header.Get(HeaderEdge) == "" {
		t.Error("response lacks the edge header")
	}
}

func TestPathsAndQueries(t *testing.T) {
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "billing-1"), NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "other", URL: startHello(t, "other-1"), NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "keep", URL: startHello(t, "keep-1"), NodeID: "n1"})
	keep := false
	e := startEdge(t, Options{Source: f, Apps: map[string]AppOptions{"keep": {StripPrefix: &keep}}})
	for _, a := range []string{"billing", "other", "keep"} {
		waitEndpoints(t, e, a, 1)
	}
	long := strings.Repeat("q=abcdefgh&", 700) // about 7.7 KiB
	cases := []struct {
		name, target         string
		instance             string
		path, rawPath, query string
		status               int
	}{
		{"app root without slash", "/billing", "billing-1", "/", "", "", 200},
		{"app root with slash", "/billing/", "billing-1", "/", "", "", 200},
		{"query only", "/billing?x=1", "billing-1", "/", "", "x=1", 200},
		{"nested path and query", "/billing/a/b?x=1&y=%20z", "billing-1", "/a/b", "", "x=1&y=%20z", 200},
		{"encoded slash kept", "/billing/a%2Fb/c", "billing-1", "/a/b/c", "/a%2Fb/c", "", 200},
		{"dot segments inside the app", "/billing/x/./y/../z", "billing-1", "/x/z", "", "", 200},
		{"dot segments cannot leave to another app", "/billing/../other/x", "other-1", "/x", "", "", 200},
		{"encoded dots are dots", "/billing/%2e%2E/other/x", "other-1", "/x", "", "", 200},
		{"encoded dots cannot leave a kept prefix", "/keep/a/%2e%2e/%2E/b", "keep-1", "/keep/b", "", "", 200},
		{"encoded slash hiding dots", "/keep/a%2F..%2F..%2Fx", "", "", "", "", 400},
		{"encoded slash in app name", "/bil%2Fling/x", "", "", "", "", 400},
		{"trailing slash kept", "/billing/x/", "billing-1", "/x/", "", "", 200},
		{"long query", "/billing/q?" + long, "billing-1", "/q", "", long, 200},
		{"prefix kept when configured", "/keep/a?b=c", "keep-1", "/keep/a", "", "b=c", 200},
		{"root names no app", "/", "", "", "", "", 404},
		{"dots up to the root", "/billing/..", "", "", "", "", 404},
		{"unknown app", "/nope/x", "", "", "", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ec, resp := getEcho(t, http.DefaultClient, edgeURL(e)+tc.target)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if ec.Instance != tc.instance || ec.Path != tc.path || ec.RawPath != tc.rawPath || ec.Query != tc.query {
				t.Errorf("got instance=%s path=%q raw=%q query(len %d)=%.40q; want %s %q %q (len %d)",
					ec.Instance, ec.Path, ec.RawPath, len(ec.Query), ec.Query, tc.instance, tc.path, tc.rawPath, len(tc.query))
			}
		})
	}
}

// TestRequestTargetBytes checks the exact request target an endpoint sees.
func TestRequestTargetBytes(t *testing.T) {
	raw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RequestURI)
	}))
	t.Cleanup(raw.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "raw", URL: raw.URL, NodeID: "n1"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "raw", 1)
	for _, tc := range []struct{ target, want string }{
		{"/raw", "/"},
		{"/raw//x", "//x"},
		{"/raw//a%2Fb|c", "//a%2Fb%7Cc"},
		{"/raw/a%2Fb%20c?x=%2F&y", "/a%2Fb%20c?x=%2F&y"},
		{"/raw/%2e%2e/raw/x", "/x"},
		{"/raw/a|b{c}%7e", "/a|b{c}%7e"},
		{"/raw/%2e./raw/%2Fx", "/%2Fx"},
		{"/raw/a/./b/../c?", "/a/c?"},
		{"/other/../raw/q", "/q"},
	} {
		conn, err := net.Dial("tcp", e.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n", tc.target)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != 200 || string(b) != tc.want {
			t.Errorf("%s: endpoint saw %d %q, want %q", tc.target, resp.StatusCode, b, tc.want)
		}
	}
}

func TestUnknownAppAndNoEndpoints(t *testing.T) {
	f := newFabric(t)
	e := startEdge(t, Options{Source: f, Apps: map[string]AppOptions{"billing": {}}})

	resp, err := http.Get(edgeURL(e) + "/ghost/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"ghost"`) || len(body) > 200 {
		t.Errorf("unknown app: %d %q", resp.StatusCode, body)
	}

	check503 := func(when string) {
		t.Helper()
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: status %d, Retry-After %q; want 503 with Retry-After", when, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	check503("configured app before any endpoint")

	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "b1"), NodeID: "n1"})
	waitEndpoints(t, e, "billing", 1)
	if resp, err := http.Get(edgeURL(e) + "/billing/hello"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("with an endpoint: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	f.DeregisterEndpoint("billing", "n1")
	waitEndpoints(t, e, "billing", 0)
	check503("after the last endpoint left")
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: closedURL(t), NodeID: "n2"})
	waitEndpoints(t, e, "billing", 1)
	check503("with every endpoint refusing connections")
}

func TestRetryOnRefusedConnection(t *testing.T) {
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "a"), NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: closedURL(t), NodeID: "n2"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "c"), NodeID: "n3"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "billing", 3)

	failed := 0
	for i := 0; i < 150; i++ {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = http.Get(edgeURL(e) + "/billing/hello")
		} else {
			// Not idempotent, with a body: still safe to retry, nothing was sent.
			resp, err = http.Post(edgeURL(e)+"/billing/submit", "text/plain", strings.NewReader("payload"))
		}
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed++
		}
	}
	if failed != 0 {
		t.Errorf("%d requests failed with one endpoint refusing connections", failed)
	}
	if c := e.Counters()["billing"]; c.Ejected != 1 {
		t.Errorf("refusing endpoint not ejected: %+v", c)
	}
}

// TestEjectionCap: with two of three endpoints refusing connections only
// one may be ejected (50% cap), and clients still see no error.
func TestEjectionCap(t *testing.T) {
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: closedURL(t), NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: closedURL(t), NodeID: "n2"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "live"), NodeID: "n3"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "billing", 3)
	for i := 0; i < 60; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	if c := e.Counters()["billing"]; c.Ejected != 1 {
		t.Errorf("ejected %d endpoints, want 1 (50%% of 3, rounded down)", c.Ejected)
	}
}

// TestRetryBudget: replays of requests that reached a failing endpoint are
// bounded by the budget (20% of requests plus a small floor), not by demand.
func TestRetryBudget(t *testing.T) {
	var dropped atomic.Int64
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dropped.Add(1)
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(dropper.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: dropper.URL, NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "good"), NodeID: "n2"})
	// Passive health checking off, so that only the budget limits replays.
	e := startEdge(t, Options{Source: f, Outlier: OutlierOptions{Consecutive5xx: 1 << 20, ConsecutiveConnFailures: 1 << 20}})
	waitEndpoints(t, e, "billing", 2)
	const n = 100
	failed := 0
	for i := 0; i < n; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed++
		}
	}
	// Every request that met the dropper needed a replay; the budget grants
	// 0.2 per request plus 3 per second (a floor of one second's worth).
	replayed := int(dropped.Load()) - failed
	if failed == 0 || replayed < 15 || replayed > 27 {
		t.Errorf("%d requests met the dropper, %d were replayed, %d failed; want about 3+0.2*%d replays", dropped.Load(), replayed, failed, n)
	}
}

// TestReplayOnlyIdempotent: an endpoint that drops connections after reading
// the request gets GETs replayed elsewhere but not POSTs.
func TestReplayOnlyIdempotent(t *testing.T) {
	dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(dropper.Close)
	good := startHello(t, "good")
	for _, tc := range []struct {
		method string
		want   int
	}{{"GET", 200}, {"POST", 502}} {
		t.Run(tc.method, func(t *testing.T) {
			f := newFabric(t)
			f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: dropper.URL, NodeID: "n1"})
			f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: good, NodeID: "n2"})
			e := startEdge(t, Options{Source: f})
			waitEndpoints(t, e, "billing", 2)
			// The rotation starts at n1, the dropper.
			req, _ := http.NewRequest(tc.method, edgeURL(e)+"/billing/x", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestStalePooledConnection: an endpoint that silently closes each
// keep-alive connection after answering must not cost a failed request.
func TestStalePooledConnection(t *testing.T) {
	ln := listenLoopback(t)
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				req.Body.Close()
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(20 * time.Millisecond) // long enough for the edge to pool it
			}()
		}
	}()
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "closer", URL: "http://" + ln.Addr().String(), NodeID: "n1"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "closer", 1)
	for i := 0; i < 10; i++ {
		resp, err := http.Get(edgeURL(e) + "/closer/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		time.Sleep(40 * time.Millisecond) // the endpoint closes the pooled connection meanwhile
	}
	if conns.Load() < 10 {
		t.Errorf("endpoint saw %d connections; the test did not exercise stale connections", conns.Load())
	}
}

func TestCounts5xx(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken on purpose", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "broken", URL: broken.URL, NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "b"), NodeID: "n1"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "broken", 1)
	waitEndpoints(t, e, "billing", 1)
	for i := 0; i < 12; i++ {
		for _, app := range []string{"broken", "billing"} {
			resp, err := http.Get(edgeURL(e) + "/" + app + "/hello")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	c := e.Counters()
	if c["broken"].Requests != 12 || c["broken"].Errors5xx != 12 {
		t.Errorf("broken: %+v, want 12 requests, 12 5xx", c["broken"])
	}
	if c["billing"].Requests != 12 || c["billing"].Errors5xx != 0 {
		t.Errorf("billing: %+v, want 12 requests, 0 5xx", c["billing"])
	}
}

func TestCountersLogLine(t *testing.T) {
	var logs syncBuffer
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "b"), NodeID: "n1"})
	e := startEdge(t, Options{Source: f, Logger: bufLogger(&logs), LogInterval: 50 * time.Millisecond})
	waitEndpoints(t, e, "billing", 1)
	for i := 0; i < 7; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitFor(t, 5*time.Second, "counters log line", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "counters") && strings.Contains(l, "app=billing") &&
				strings.Contains(l, "requests=7 ") && strings.Contains(l, "5xx=0 ") {
				return true
			}
		}
		return false
	})
}

func TestMetricsEndpoint(t *testing.T) {
	f := newFabric(t)
	urls := []string{startHello(t, "m1"), startHello(t, "m2")}
	for i, u := range urls {
		f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: u, NodeID: fmt.Sprintf("n%d", i)})
	}
	e := startEdge(t, Options{Source: f, AdminAddr: "127.0.0.1:0"})
	waitEndpoints(t, e, "billing", 2)
	for i := 0; i < 10; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + e.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	find := func(name string) int {
		if mfs[name] == nil {
			t.Fatalf("no %s in /metrics", name)
		}
		return len(mfs[name].Metric)
	}
	find("mesh_edge_in_flight")
	find("mesh_edge_endpoint_requests_total")
	var ok2xx float64
	for _, m := range mfs["mesh_edge_requests_total"].Metric {
		if labelsOf(m.Label)["app"] == "billing" && labelsOf(m.Label)["code_class"] == "2xx" {
			ok2xx = m.GetCounter().GetValue()
		}
	}
	if ok2xx != 10 {
		t.Errorf("mesh_edge_requests_total{app=billing,code_class=2xx} = %v, want 10", ok2xx)
	}
	var hist uint64
	for _, m := range mfs["mesh_edge_request_duration_seconds"].Metric {
		if labelsOf(m.Label)["app"] == "billing" {
			hist = m.GetHistogram().GetSampleCount()
		}
	}
	if hist != 10 {
		t.Errorf("duration histogram count %d, want 10", hist)
	}
	perEndpoint := map[string]float64{}
	for _, m := range mfs["mesh_edge_endpoint_requests_total"].Metric {
		perEndpoint[labelsOf(m.Label)["endpoint"]] = m.GetCounter().GetValue()
	}
	for _, u := range urls {
		if perEndpoint[u] != 5 {
			t.Errorf("endpoint %s: %v requests, want 5 (%v)", u, perEndpoint[u], perEndpoint)
		}
	}
}

func TestSlowHeaderClientAndOversizedHeader(t *testing.T) {
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "b"), NodeID: "n1"})
	e := startEdge(t, Options{Source: f, ReadHeaderTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10})
	waitEndpoints(t, e, "billing", 1)

	slow, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "GET /billing/hello HTTP/1.1\r\nHost: edge\r\n") // and never the end
	start := time.Now()

	// Other clients are served meanwhile.
	for i := 0; i < 5; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d while a slow client stalls", resp.StatusCode)
		}
	}

	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf, err := io.ReadAll(slow)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("slow-header client still connected after %v", time.Since(start))
	}
	if len(buf) > 0 && !strings.HasPrefix(string(buf), "HTTP/1.1 408") {
		t.Errorf("slow client got %q", buf)
	}

	req, _ := http.NewRequest("GET", edgeURL(e)+"/billing/hello", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 16<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: status %d, want 431", resp.StatusCode)
	}
	resp, err = http.Get(edgeURL(e) + "/billing/hello")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the oversized header: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestServerSentEventsAreFlushed(t *testing.T) {
	next := make(chan struct{}, 3)
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: event-%d\n\n", i)
			fl.Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(sse.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "events", URL: sse.URL, NodeID: "n1"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "events", 1)

	resp, err := http.Get(edgeURL(e) + "/events/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		line := make(chan string, 1)
		go func() {
			l, _ := br.ReadString('\n')
			br.ReadString('\n') // the blank line ending the event
			line <- l
		}()
		select {
		case l := <-line:
			if want := fmt.Sprintf("data: event-%d\n", i); l != want {
				t.Fatalf("event %d: %q, want %q", i, l, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d not delivered before the next was produced", i)
		}
		next <- struct{}{}
	}
}

func TestUpgradePassthrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the client closes
	}))
	t.Cleanup(up.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "ws", URL: up.URL, NodeID: "n1"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "ws", 1)

	conn, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET /ws/socket HTTP/1.1\r\nHost: edge\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "echo") || resp.Header.Get(HeaderEdge) == "" {
		t.Fatalf("upgrade answer: %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"ping\n", "second message\n"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo: %q %v, want %q", got, err, msg)
		}
	}
}

func TestStreamingRequestBody(t *testing.T) {
	got := make(chan string, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		first, _ := br.ReadString('\n')
		got <- first // the first chunk arrives while the client still writes
		rest, _ := io.ReadAll(br)
		fmt.Fprintf(w, "%d", len(first)+len(rest))
	}))
	t.Cleanup(sink.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "sink", URL: sink.URL, NodeID: "n1"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "sink", 1)

	pr, pw := io.Pipe()
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(edgeURL(e)+"/sink/upload", "text/plain", pr)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	io.WriteString(pw, "first line\n")
	select {
	case l := <-got:
		if l != "first line\n" {
			t.Errorf("first chunk %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request body not streamed")
	}
	io.WriteString(pw, strings.Repeat("y", 100000))
	pw.Close()
	resp := <-done
	if resp == nil {
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "100011" {
		t.Errorf("endpoint received %s bytes, want 100011", b)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	entered := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(400 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	t.Cleanup(slow.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "slow", URL: slow.URL, NodeID: "n1"})
	e, err := New(Options{Source: f})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	waitEndpoints(t, e, "slow", 1)
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(edgeURL(e) + "/slow/x")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r := <-res
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if _, err := net.Dial("tcp", e.Addr().String()); err == nil {
		t.Error("edge still accepts connections after shutdown")
	}
}

func TestOutlierEjectionAndReturn(t *testing.T) {
	var healthy atomic.Bool
	var hits atomic.Int64
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			http.Error(w, "failing", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(flaky.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: flaky.URL, NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "b2"), NodeID: "n2"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "b3"), NodeID: "n3"})
	e := startEdge(t, Options{Source: f, Outlier: OutlierOptions{
		Consecutive5xx: 3, BaseEjection: time.Second, SlowStart: 200 * time.Millisecond,
	}})
	waitEndpoints(t, e, "billing", 3)

	get := func() int {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 60; i++ {
		get()
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("failing endpoint got %d requests, want 3 (ejected after 3 consecutive 5xx)", n)
	}
	if c := e.Counters()["billing"]; c.Ejected != 1 {
		t.Errorf("counters after ejection: %+v", c)
	}
	healthy.Store(true)
	waitFor(t, 5*time.Second, "ejection to end", func() bool { return e.Counters()["billing"].Ejected == 0 })
	before := hits.Load()
	waitFor(t, 5*time.Second, "traffic back on the returned endpoint", func() bool {
		if s := get(); s != 200 {
			t.Fatalf("status %d after return", s)
		}
		return hits.Load() > before+3
	})
}

func TestClientGoneCountsAs499(t *testing.T) {
	entered := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "hang", URL: hang.URL, NodeID: "n1"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "hang", 1)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", edgeURL(e)+"/hang/x", nil)
	go func() { <-entered; cancel() }()
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("request unexpectedly completed")
	}
	waitFor(t, 5*time.Second, "client-closed count", func() bool { return e.Counters()["hang"].ClientClosed == 1 })
	if c := e.Counters()["hang"]; c.Errors5xx != 0 || c.Requests != 1 {
		t.Errorf("counters: %+v, want 1 request, 0 5xx", c)
	}
}

func TestUpstreamTimeoutIs504(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the edge hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "hang", URL: hang.URL, NodeID: "n1"})
	e := startEdge(t, Options{Source: f, UpstreamTimeout: 200 * time.Millisecond})
	waitEndpoints(t, e, "hang", 1)
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, edgeURL(e)+"/hang/x", strings.NewReader("body"))
		if method == "GET" {
			req.Body, req.ContentLength = nil, 0
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("%s: status %d, want 504", method, resp.StatusCode)
		}
	}
	if c := e.Counters()["hang"]; c.Errors5xx != 2 {
		t.Errorf("counters %+v, want 2 5xx", c)
	}
}

func TestEndpointSwitchUnderLoad(t *testing.T) {
	f := newFabric(t)
	a, b, c := startHello(t, "a"), startHello(t, "b"), startHello(t, "c")
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: a, NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: b, NodeID: "n2"})
	e := startEdge(t, Options{Source: f})
	waitEndpoints(t, e, "billing", 2)

	var stop atomic.Bool
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := client.Get(edgeURL(e) + "/billing/hello")
				if err != nil {
					bad.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		// Node n1 swaps versions back and forth; n2 leaves and comes back.
		if i%2 == 0 {
			f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: c, NodeID: "n1"})
			f.DeregisterEndpoint("billing", "n2")
		} else {
			f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: a, NodeID: "n1"})
			f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: b, NodeID: "n2"})
		}
		time.Sleep(25 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 || ok.Load() == 0 {
		t.Errorf("%d ok, %d failed while endpoints switched", ok.Load(), bad.Load())
	}
}

func TestLeastLoadedP2C(t *testing.T) {
	f := newFabric(t)
	for i := 0; i < 3; i++ {
		f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, fmt.Sprintf("p%d", i)), NodeID: fmt.Sprintf("n%d", i)})
	}
	e := startEdge(t, Options{Source: f, Balancers: leastLoaded, ReportInterval: 20 * time.Millisecond})
	waitEndpoints(t, e, "billing", 3)
	waitFor(t, 5*time.Second, "p2c policy", func() bool {
		return (*e.routes.Load())["billing"].picker.Load().mode == sdk.ModeP2C
	})
	seen := map[string]int{}
	for i := 0; i < 90; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		seen[resp.Header.Get("X-Hello-Instance")]++
	}
	if len(seen) != 3 {
		t.Errorf("p2c used %d endpoints: %v", len(seen), seen)
	}
}

// weightedBalancer answers once with fixed weights, then fails: the edge
// must keep using the answer it had.
type weightedBalancer struct {
	calls   atomic.Int64
	weights map[string]uint32
}

func (b *weightedBalancer) Balance(_ context.Context, s sdk.AppState) (sdk.Policy, error) {
	if b.calls.Add(1) > 1 {
		return sdk.Policy{}, errors.New("balancer down")
	}
	return sdk.Policy{App: s.App, Mode: sdk.ModeRoundRobin, Weights: b.weights}, nil
}

func TestPolicyWeightsAndBalancerFailure(t *testing.T) {
	f := newFabric(t)
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "w1"), NodeID: "n1"})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "billing", URL: startHello(t, "w2"), NodeID: "n2"})
	bal := &weightedBalancer{weights: map[string]uint32{"n1": 1, "n2": 0}}
	e := startEdge(t, Options{Source: f, Balancers: func(string) Balancer { return bal }, ReportInterval: 20 * time.Millisecond})
	waitEndpoints(t, e, "billing", 1) // n2 has weight 0
	// Load reports follow traffic (an idle app sends none).
	waitFor(t, 5*time.Second, "balancer failures", func() bool {
		if resp, err := http.Get(edgeURL(e) + "/billing/hello"); err == nil {
			resp.Body.Close()
		}
		return bal.calls.Load() > 3
	})
	for i := 0; i < 10; i++ {
		resp, err := http.Get(edgeURL(e) + "/billing/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if inst := resp.Header.Get("X-Hello-Instance"); inst != "w1" {
			t.Fatalf("request went to %s; the last good policy gives all traffic to w1", inst)
		}
	}
}

// labelsOf turns a metric's label pairs into a map.
func labelsOf[L interface {
	GetName() string
	GetValue() string
}](ls []L) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.GetName()] = l.GetValue()
	}
	return m
}

// SetApps applies a reload: a strip-prefix change takes effect for the next
// request, and an app that is no longer configured and has no endpoints
// answers 404 like any unknown app, while a configured one answers 503.
func TestSetApps(t *testing.T) {
	f := newFabric(t)
	e := startEdge(t, Options{Source: f, Apps: map[string]AppOptions{"billing": {}, "echo": {}}})
	f.RegisterEndpoint(fabric.Endpoint{AppName: "echo", NodeID: "n1", URL: startHello(t, "e1")})
	waitEndpoints(t, e, "echo", 1)

	path := func() string {
		resp, err := http.Get(edgeURL(e) + "/echo/x?q=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct{ Path string }
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got.Path
	}
	if p := path(); p != "/x" {
		t.Fatalf("stripped path %q, want /x", p)
	}
	keep := false
	e.SetApps(map[string]AppOptions{"billing": {}, "echo": {StripPrefix: &keep}})
	if p := path(); p != "/echo/x" {
		t.Fatalf("after SetApps path %q, want /echo/x", p)
	}

	// echo withdrawn from the configuration and drained: 404; billing,
	// still configured and without endpoints: 503.
	e.SetApps(map[string]AppOptions{"billing": {}})
	f.DeregisterEndpoint("echo", "n1")
	status := func(app string) int {
		resp, err := http.Get(edgeURL(e) + "/" + app + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, 5*time.Second, "withdrawn app to answer 404", func() bool { return status("echo") == 404 })
	if s := status("billing"); s != 503 {
		t.Fatalf("configured app without endpoints: %d, want 503", s)
	}
}
