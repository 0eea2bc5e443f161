package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The differential test sends the same request, answered by the same bytes
// from an endpoint, once through the edge and once through
// httputil.ReverseProxy over http.Transport, and compares what the client
// and the endpoint see. The standard library is the reference for framing
// (Content-Length, chunked, close-delimited, HEAD, 204/304, 1xx, trailers);
// the differences that are the edge's on purpose are normalised away in one
// place (normalise*), each with its reason.

// diffCase is one request and the endpoint's answer to it, decoded from the
// fuzzer's scalars so that every input is a well-formed scenario.
type diffCase struct {
	method  string
	reqBody []byte
	reqBits uint8 // see the reqX constants
	status  int
	framing uint8 // see the frameX constants
	hdrBits uint8 // see the hdrX constants
	body    []byte
	info    uint8 // see the infoX constants
	// Field values from bytes a case does not otherwise use: the request
	// body of a method without one, the answer body of a bodiless answer.
	xreq, xresp string
}

// fieldValue returns b as a field value when a client may send it (no
// control bytes but tab), and "" otherwise.
func fieldValue(b []byte) string {
	if len(b) > 1024 {
		b = b[:1024]
	}
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return ""
		}
	}
	return string(b)
}

const (
	reqHop      = 1 << iota // Connection: X-Req-Hop, with X-Req-Hop set
	reqTe                   // Te: trailers
	reqExpect               // Expect: 100-continue (bodied methods)
	reqKeepHdrs             // Keep-Alive and Proxy-Connection headers
	reqMulti                // a header with two values
	reqQuery                // a query string
	reqChunked              // the body of unknown length: sent chunked
	reqClose                // Connection: close from the client
)

const (
	frameLength      = iota // Content-Length
	frameChunked            // Transfer-Encoding: chunked
	frameTrailer            // chunked with an announced and an unannounced trailer
	frameClose              // no length: the body ends when the endpoint closes
	frameHTTP10             // an HTTP/1.0 answer, close-delimited
	frameLengthClose        // Content-Length and Connection: close
	frameCount
)

const (
	hdrHop       = 1 << iota // Connection names X-Hop
	hdrKeepAlive             // Keep-Alive and Proxy-Connection
	hdrCookies               // two Set-Cookie fields
	hdrSSE                   // Content-Type: text/event-stream
	hdrUpgrade               // a stray Upgrade field
)

const (
	infoEarly      = 1 << iota // 103 Early Hints before the answer
	infoProcessing             // 102 Processing before the answer
)

var (
	diffMethods  = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}
	diffStatuses = []int{200, 201, 204, 206, 301, 304, 400, 404, 500, 503}
)

func newDiffCase(method, status, framing, reqBits, hdrBits, info uint8, reqBody, body []byte) diffCase {
	c := diffCase{
		method:  diffMethods[int(method)%len(diffMethods)],
		status:  diffStatuses[int(status)%len(diffStatuses)],
		framing: framing % frameCount,
		reqBits: reqBits,
		hdrBits: hdrBits,
		info:    info,
		body:    body,
	}
	if len(c.body) > 64<<10 {
		c.body = c.body[:64<<10]
	}
	switch c.method {
	case "POST", "PUT", "PATCH":
		c.reqBody = reqBody
		if len(c.reqBody) > 64<<10 {
			c.reqBody = c.reqBody[:64<<10]
		}
	default:
		c.xreq = fieldValue(reqBody)
	}
	if c.bodiless() {
		c.xresp = fieldValue(body)
	}
	return c
}

// bodiless tells whether the answer can carry no body.
func (c diffCase) bodiless() bool {
	return c.method == "HEAD" || c.status == 204 || c.status == 304
}

// closes tells whether the endpoint closes the connection after answering.
func (c diffCase) closes() bool {
	switch c.framing {
	case frameClose, frameHTTP10, frameLengthClose:
		return true
	}
	return false
}

// answer is the bytes the endpoint writes for c.
func (c diffCase) answer() []byte {
	var b bytes.Buffer
	if c.info&infoProcessing != 0 {
		b.WriteString("HTTP/1.1 102 Processing\r\n\r\n")
	}
	if c.info&infoEarly != 0 {
		b.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
	}
	proto := "HTTP/1.1"
	if c.framing == frameHTTP10 {
		proto = "HTTP/1.0"
	}
	fmt.Fprintf(&b, "%s %d %s\r\n", proto, c.status, http.StatusText(c.status))
	b.WriteString("X-Answer: yes\r\n")
	var conn []string
	if c.framing == frameClose || c.framing == frameLengthClose {
		conn = append(conn, "close")
	}
	if c.hdrBits&hdrHop != 0 {
		conn = append(conn, "X-Hop")
		b.WriteString("X-Hop: secret\r\n")
	}
	if len(conn) > 0 {
		fmt.Fprintf(&b, "Connection: %s\r\n", strings.Join(conn, ", "))
	}
	if c.hdrBits&hdrKeepAlive != 0 {
		b.WriteString("Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n")
	}
	if c.hdrBits&hdrCookies != 0 {
		b.WriteString("Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n")
	}
	if c.hdrBits&hdrSSE != 0 {
		b.WriteString("Content-Type: text/event-stream\r\n")
	}
	if c.hdrBits&hdrUpgrade != 0 {
		b.WriteString("Upgrade: nonsense\r\n")
	}
	if c.xresp != "" {
		b.WriteString("X-Fuzz-Answer: " + c.xresp + "\r\n")
	}
	switch c.framing {
	case frameLength, frameLengthClose:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(c.body))
	case frameChunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case frameTrailer:
		b.WriteString("Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n")
	}
	b.WriteString("\r\n")
	if c.bodiless() {
		return b.Bytes()
	}
	switch c.framing {
	case frameChunked, frameTrailer:
		for rest := c.body; len(rest) > 0; {
			n := min(len(rest), 1000)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		b.WriteString("0\r\n")
		if c.framing == frameTrailer {
			b.WriteString("X-Sum: abc\r\nX-Late: z\r\n")
		}
		b.WriteString("\r\n")
	default:
		b.Write(c.body)
	}
	return b.Bytes()
}

// seen is what one side observed of one exchange.
type seen struct {
	// At the endpoint.
	method, target string
	reqHeader      http.Header
	reqBody        string
	reqChunked     bool
	reqLength      int64
	// At the client.
	status     int
	header     http.Header
	body       string
	bodyErr    bool
	trailer    http.Header
	length     int64
	chunked    bool
	informated []int
}

// diffUpstream answers every request with the answer of the current case
// and reports what it received.
type diffUpstream struct {
	ln   net.Listener
	mu   sync.Mutex
	c    diffCase
	got  chan seen
	wg   sync.WaitGroup
	open map[net.Conn]struct{}
}

func startDiffUpstream(t testing.TB) *diffUpstream {
	u := &diffUpstream{ln: listenLoopback(t), got: make(chan seen, 16), open: map[net.Conn]struct{}{}}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := u.ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.open[c] = struct{}{}
			u.mu.Unlock()
			u.wg.Add(1)
			go u.serve(c)
		}
	}()
	t.Cleanup(func() {
		u.ln.Close()
		u.mu.Lock()
		for c := range u.open {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *diffUpstream) serve(c net.Conn) {
	defer u.wg.Done()
	defer func() {
		c.Close()
		u.mu.Lock()
		delete(u.open, c)
		u.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		u.mu.Lock()
		dc := u.c
		u.mu.Unlock()
		if req.Header.Get("Expect") == "100-continue" {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		s := seen{method: req.Method, target: req.RequestURI, reqHeader: req.Header, reqBody: string(b),
			reqChunked: len(req.TransferEncoding) > 0, reqLength: req.ContentLength}
		select {
		case u.got <- s:
		default:
		}
		if _, err := c.Write(dc.answer()); err != nil || dc.closes() || req.Close {
			return
		}
	}
}

// diffFronts are the two proxies under comparison, each behind a net/http
// server, and a client for each.
type diffFronts struct {
	up            *diffUpstream
	edge, ref     string
	edgeC, refC   *http.Client
	edgeTr, refTr *http.Transport
}

func startDiffFronts(t testing.TB) *diffFronts {
	up := startDiffUpstream(t)
	e := edgeTo(t, "http://"+up.ln.Addr().String(), Options{})
	target, _ := url.Parse("http://" + up.ln.Addr().String())
	upTr := &http.Transport{DisableCompression: true, ExpectContinueTimeout: time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes}
	t.Cleanup(upTr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = ""
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/up")
			pr.Out.URL.RawPath = strings.TrimPrefix(pr.In.URL.RawPath, "/up")
		},
		Transport: upTr,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	ln := listenLoopback(t)
	srv := &http.Server{Handler: rp, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f := &diffFronts{up: up, edge: edgeURL(e), ref: "http://" + ln.Addr().String()}
	f.edgeTr = &http.Transport{DisableCompression: true}
	f.refTr = &http.Transport{DisableCompression: true}
	t.Cleanup(f.edgeTr.CloseIdleConnections)
	t.Cleanup(f.refTr.CloseIdleConnections)
	f.edgeC = &http.Client{Transport: f.edgeTr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.refC = &http.Client{Transport: f.refTr, Timeout: 10 * time.Second, CheckRedirect: f.edgeC.CheckRedirect}
	return f
}

// do sends c through the proxy at base and returns what both ends saw.
func (f *diffFronts) do(t *testing.T, cl *http.Client, base string, c diffCase) seen {
	t.Helper()
	f.up.mu.Lock()
	f.up.c = c
	f.up.mu.Unlock()
	for len(f.up.got) > 0 {
		<-f.up.got
	}
	target := base + "/up/a/b%2Fc"
	if c.reqBits&reqQuery != 0 {
		target += "?q=%41&x=a+b"
	}
	var body io.Reader
	if c.reqBody != nil {
		body = bytes.NewReader(c.reqBody)
		if c.reqBits&reqChunked != 0 {
			body = io.MultiReader(body) // hides the length: sent chunked
		}
	}
	req, err := http.NewRequest(c.method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.reqBits&reqHop != 0 {
		req.Header["Connection"] = []string{"X-Req-Hop"}
		req.Header.Set("X-Req-Hop", "1")
	}
	if c.reqBits&reqTe != 0 {
		req.Header.Set("Te", "trailers")
	}
	if c.reqBits&reqExpect != 0 && c.reqBody != nil {
		req.Header.Set("Expect", "100-continue")
	}
	if c.reqBits&reqKeepHdrs != 0 {
		req.Header.Set("Keep-Alive", "300")
		req.Header.Set("Proxy-Connection", "keep-alive")
	}
	if c.xreq != "" {
		req.Header.Set("X-Fuzz", c.xreq)
	}
	if c.reqBits&reqMulti != 0 {
		req.Header.Add("X-Multi", "one")
		req.Header.Add("X-Multi", "two")
	}
	req.Close = c.reqBits&reqClose != 0
	var s seen
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		s.informated = append(s.informated, code)
		return nil
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", base, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.status, s.header, s.body, s.bodyErr = resp.StatusCode, resp.Header, string(b), err != nil
	s.trailer, s.length, s.chunked = resp.Trailer, resp.ContentLength, len(resp.TransferEncoding) > 0
	select {
	case u := <-f.up.got:
		s.method, s.target, s.reqHeader, s.reqBody = u.method, u.target, u.reqHeader, u.reqBody
		s.reqChunked, s.reqLength = u.reqChunked, u.reqLength
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the endpoint saw no request", base)
	}
	return s
}

// normaliseEdge removes what the edge adds on purpose.
func normaliseEdge(s *seen) {
	delete(s.header, HeaderEdge)
	delete(s.reqHeader, HeaderEdge)
	// The edge sets X-Forwarded-Host and -Proto; ReverseProxy only appends
	// to X-Forwarded-For. Their rules are tested in TestForwardingHeadersTrust.
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		delete(s.reqHeader, k)
	}
}

// normaliseRef removes what ReverseProxy gets wrong: the headers an answer
// named in "Connection: close, X-Hop" reach its client because
// http.ReadResponse deletes the whole field (see connheader.go).
func normaliseRef(s *seen, c diffCase) {
	delete(s.reqHeader, "X-Forwarded-For")
	// net/http sniffs a Content-Type for an answer without one, unless the
	// first body bytes are flushed with the header; the edge never adds one.
	if c.hdrBits&hdrSSE == 0 {
		delete(s.header, "Content-Type")
	}
	if c.hdrBits&hdrHop != 0 {
		delete(s.header, "X-Hop")
	}
}

func headerString(h http.Header, skip ...string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if k == "Date" {
			continue // the two servers answer at different instants
		}
		fmt.Fprintf(&b, "%s: %q\n", k, h[k])
	}
	return b.String()
}

// checkDiff sends c through both proxies and fails on any difference.
func checkDiff(t *testing.T, f *diffFronts, c diffCase) {
	t.Helper()
	got := f.do(t, f.edgeC, f.edge, c)
	want := f.do(t, f.refC, f.ref, c)
	// Invariants of the edge alone, before normalising.
	for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade", "Connection"} {
		if v, ok := got.header[k]; ok {
			t.Errorf("hop-by-hop %s = %q reached the client", k, v)
		}
	}
	for _, k := range []string{"X-Req-Hop", "Keep-Alive", "Proxy-Connection", "Expect"} {
		if v, ok := got.reqHeader[k]; ok && k != "Expect" {
			t.Errorf("hop-by-hop request header %s = %q reached the endpoint", k, v)
		}
	}
	if _, ok := got.header["Content-Type"]; ok && c.hdrBits&hdrSSE == 0 {
		t.Errorf("Content-Type %q the endpoint never sent reached the client", got.header["Content-Type"])
	}
	if got.header.Get(HeaderEdge) == "" || got.reqHeader.Get(HeaderEdge) == "" {
		t.Errorf("%s missing: answer %q, request %q", HeaderEdge, got.header.Get(HeaderEdge), got.reqHeader.Get(HeaderEdge))
	}
	normaliseEdge(&got)
	// The reference is asked again when it differs: under load,
	// http.Transport now and then fails a close-delimited answer that it
	// reads whole the next time. A difference that stays is the edge's.
	var diffs []string
	for try := 0; try < 3; try++ {
		if try > 0 {
			want = f.do(t, f.refC, f.ref, c)
		}
		normaliseRef(&want, c)
		if diffs = compareSeen(got, want); len(diffs) == 0 {
			break
		}
	}
	for _, d := range diffs {
		t.Error(d)
	}
	// net/http's server sends its own 100 Continue when the handler reads
	// the body; ReverseProxy may relay the endpoint's too, depending on
	// timing. The client must see one at most.
	if n := countCode(got.informated, 100); n > 1 {
		t.Errorf("the client got %d 100 Continue answers", n)
	}
}

// compareSeen lists the differences between what the edge and the
// reference let both ends see.
func compareSeen(got, want seen) []string {
	var diffs []string
	cmp := func(what string, g, w any) {
		if fmt.Sprint(g) != fmt.Sprint(w) {
			diffs = append(diffs, fmt.Sprintf("%s: edge %v, ReverseProxy %v", what, g, w))
		}
	}
	cmp("endpoint method", got.method, want.method)
	cmp("endpoint target", got.target, want.target)
	cmp("endpoint header", "\n"+headerString(got.reqHeader), "\n"+headerString(want.reqHeader))
	cmp("endpoint body", got.reqBody, want.reqBody)
	cmp("endpoint body chunked", got.reqChunked, want.reqChunked)
	cmp("endpoint body length", got.reqLength, want.reqLength)
	cmp("status", got.status, want.status)
	cmp("header", "\n"+headerString(got.header), "\n"+headerString(want.header))
	cmp("body", got.body, want.body)
	cmp("body error", got.bodyErr, want.bodyErr)
	cmp("trailer", headerString(got.trailer), headerString(want.trailer))
	cmp("content length", got.length, want.length)
	cmp("chunked", got.chunked, want.chunked)
	cmp("informational", dropCode(got.informated, 100), dropCode(want.informated, 100))
	return diffs
}

func countCode(codes []int, c int) int {
	n := 0
	for _, v := range codes {
		if v == c {
			n++
		}
	}
	return n
}

func dropCode(codes []int, c int) []int {
	var out []int
	for _, v := range codes {
		if v != c {
			out = append(out, v)
		}
	}
	return out
}

// FuzzDifferential compares the edge with httputil.ReverseProxy over
// http.Transport. The seed corpus runs in every `go test`; explore further
// with
//
//	go test -run '^$' -fuzz FuzzDifferential -fuzztime 60s ./core/edge
func FuzzDifferential(f *testing.F) {
	small, big := []byte("hello"), bytes.Repeat([]byte("0123456789abcdef"), 2048)
	for method := range diffMethods {
		for framing := uint8(0); framing < frameCount; framing++ {
			f.Add(uint8(method), uint8(0), framing, uint8(0), uint8(0), uint8(0), small, small)
		}
	}
	for status := range diffStatuses {
		f.Add(uint8(0), uint8(status), uint8(frameLength), uint8(0), uint8(0), uint8(0), []byte(nil), small)
		f.Add(uint8(1), uint8(status), uint8(frameChunked), uint8(0), uint8(0), uint8(0), []byte(nil), small)
	}
	for bit := uint8(1); bit != 0; bit <<= 1 {
		f.Add(uint8(2), uint8(0), uint8(frameLength), bit, uint8(0), uint8(0), small, small)
		f.Add(uint8(3), uint8(1), uint8(frameChunked), bit, uint8(0), uint8(0), big, small)
	}
	for bit := uint8(1); bit < 1<<5; bit <<= 1 {
		f.Add(uint8(0), uint8(0), uint8(frameClose), uint8(0), bit, uint8(0), []byte(nil), small)
		f.Add(uint8(2), uint8(0), uint8(frameLength), uint8(0), bit, uint8(0), small, small)
	}
	f.Add(uint8(0), uint8(0), uint8(frameLength), uint8(0), uint8(0), uint8(infoEarly), []byte(nil), small)
	f.Add(uint8(2), uint8(0), uint8(frameLength), uint8(reqExpect), uint8(0), uint8(infoEarly|infoProcessing), small, small)
	f.Add(uint8(0), uint8(0), uint8(frameTrailer), uint8(reqTe), uint8(0), uint8(0), []byte(nil), big)
	f.Add(uint8(0), uint8(0), uint8(frameLength), uint8(0), uint8(0), uint8(0), []byte(nil), big)
	f.Add(uint8(0), uint8(0), uint8(frameClose), uint8(0), uint8(0), uint8(0), []byte(nil), big)
	f.Add(uint8(3), uint8(0), uint8(frameLengthClose), uint8(reqChunked|reqExpect), uint8(hdrHop), uint8(0), big, big)
	f.Add(uint8(4), uint8(2), uint8(frameLength), uint8(reqClose|reqHop), uint8(hdrHop|hdrKeepAlive), uint8(0), []byte(nil), []byte(nil))
	f.Add(uint8(0), uint8(2), uint8(frameLength), uint8(0), uint8(0), uint8(0), []byte(" \tcaf\xc3\xa9 \t x "), []byte("\t v\xff "))
	f.Add(uint8(1), uint8(0), uint8(frameLength), uint8(0), uint8(0), uint8(0), []byte("a,b;c=\"d\""), []byte(" "))
	fronts := startDiffFronts(f)
	f.Fuzz(func(t *testing.T, method, status, framing, reqBits, hdrBits, info uint8, reqBody, body []byte) {
		c := newDiffCase(method, status, framing, reqBits, hdrBits, info, reqBody, body)
		checkDiff(t, fronts, c)
	})
}
