package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The server-side differential test sends the same raw client bytes, valid
// and malformed, to two edges that differ only in who serves HTTP/1.1: the
// edge's own connection loop, and net/http's server (Options.netHTTPOnly,
// how the edge served before the loop). Each edge forwards to its own
// recording endpoint that gives the same answer. What the client reads
// (statuses, headers, framing, bodies, trailers, where the connection was
// closed) and what the endpoint received must be the same.

// srvAnswers are the endpoint answers a case picks from.
var srvAnswers = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 7\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\nContent-Type: text/plain\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("<html>", 500),
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited body",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close, X-Up-Hop\r\nX-Up-Hop: 1\r\n\r\nok",
	"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
	"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + strings.Repeat("x", 20000),
}

// recorder is an endpoint that answers every request with one answer and
// records what it got.
type recorder struct {
	ln     net.Listener
	answer string
	mu     sync.Mutex
	got    []string
	wg     sync.WaitGroup
	conns  map[net.Conn]struct{}
}

func startRecorder(t testing.TB, answer string) *recorder {
	r := &recorder{ln: listenLoopback(t), answer: answer, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = struct{}{}
			r.mu.Unlock()
			r.wg.Add(1)
			go r.serve(c)
		}
	}()
	t.Cleanup(func() {
		r.ln.Close()
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *recorder) serve(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		// The head as it came, so that nothing net/http's parser would
		// tidy hides a difference; the body by the framing it announced.
		head, err := readRawBlock(br)
		if err != nil {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			return
		}
		if req.Header.Get("Expect") == "100-continue" {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		var body, trailer []byte
		switch {
		case len(req.TransferEncoding) > 0:
			if body, err = io.ReadAll(httputil.NewChunkedReader(br)); err != nil {
				return
			}
			if trailer, err = readRawBlock(br); err != nil {
				return
			}
		case req.ContentLength > 0:
			body = make([]byte, req.ContentLength)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
		}
		rec := fmt.Sprintf("%s\nbody=%q trailer=%s", r.normalise(head), body, r.normaliseFields(trailer))
		r.mu.Lock()
		r.got = append(r.got, rec)
		r.mu.Unlock()
		answer := r.answer
		if req.Method == http.MethodHead {
			// The answer's head only: a HEAD answer has no body.
			if i := strings.LastIndex(answer, "\r\n\r\n"); i >= 0 {
				answer = answer[:i+4]
			}
		}
		if _, err := io.WriteString(c, answer); err != nil || strings.Contains(answer, "Connection: close") ||
			!strings.Contains(answer, "Content-Length") && !strings.Contains(answer, "chunked") &&
				!strings.Contains(answer, " 204 ") && !strings.Contains(answer, " 304 ") {
			return
		}
	}
}

// readRawBlock reads lines up to and including an empty one.
func readRawBlock(br *bufio.Reader) ([]byte, error) {
	var b []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		b = append(b, line...)
		if len(line) <= 2 {
			return b, nil
		}
	}
}

// normalise sorts the field lines of a raw head (the first line stays
// first) and masks what differs between the two edges by design: the
// stamp's value and the endpoint's own address.
func (r *recorder) normalise(head []byte) string {
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\r\n")
	if len(lines) == 0 {
		return ""
	}
	fields := lines[1:]
	for i, l := range fields {
		switch {
		case strings.HasPrefix(l, HeaderEdge+": "):
			fields[i] = HeaderEdge + ": (set)"
		case l == "Host: "+r.ln.Addr().String():
			fields[i] = "Host: (endpoint)"
		}
	}
	sort.Strings(fields)
	return lines[0] + "\n" + strings.Join(fields, "\n")
}

// normaliseFields is normalise for a block of fields alone (a trailer),
// whose order carries no meaning either: net/http writes a trailer's
// fields in map order.
func (r *recorder) normaliseFields(block []byte) string {
	b := strings.TrimRight(string(block), "\r\n")
	if b == "" {
		return ""
	}
	fields := strings.Split(b, "\r\n")
	sort.Strings(fields)
	return strings.Join(fields, "\n")
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.got = nil
	r.mu.Unlock()
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func sortedHeader(h http.Header) string {
	lines := make([]string, 0, len(h))
	for k, vv := range h {
		lines = append(lines, k+": "+strings.Join(vv, " | "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// srvDiffPair is the two edges under comparison, with their endpoints.
type srvDiffPair struct {
	fast, ref     *Edge
	fastUp, refUp *recorder
}

func startSrvDiffPair(t testing.TB, answer string) srvDiffPair {
	opts := Options{
		ReadHeaderTimeout:  2 * time.Second,
		IdleTimeout:        2 * time.Second, // an input that leaves the connection idle ends soon
		RequestBodyTimeout: time.Second,
		MaxHeaderBytes:     8 << 10,
	}
	var p srvDiffPair
	p.fastUp = startRecorder(t, answer)
	p.refUp = startRecorder(t, answer)
	p.fast = edgeTo(t, "http://"+p.fastUp.ln.Addr().String(), opts)
	opts.netHTTPOnly = true
	p.ref = edgeTo(t, "http://"+p.refUp.ln.Addr().String(), opts)
	return p
}

// srvSentinel ends every input: a last request that closes the
// connection, so that reading to the end of the connection ends.
const srvSentinel = "GET /up/sentinel HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"

// exchangeRaw sends raw to e and describes what came back: each answer
// parsed (for the request methods net/http reads in raw, in order), then
// whatever could not be parsed, then how the connection ended.
func exchangeRaw(t *testing.T, e *Edge, raw []byte) []string {
	c, err := net.Dial("tcp", e.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	go func() {
		c.Write(raw) // the edge may close before reading it all
	}()
	all, err := io.ReadAll(c)
	end := "closed"
	if err != nil {
		end = "read error"
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			end = "still open"
		}
	}
	methods := requestMethods(raw)
	var out []string
	br := bufio.NewReader(bytes.NewReader(all))
	for i := 0; ; {
		if _, err := br.Peek(1); err != nil {
			break
		}
		m := http.MethodGet
		if i < len(methods) {
			m = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			rest, _ := io.ReadAll(br)
			out = append(out, fmt.Sprintf("unparsed: %v %q", err, rest))
			break
		}
		body, berr := io.ReadAll(resp.Body)
		delete(resp.Header, "Date")
		if _, ok := resp.Header[HeaderEdge]; ok {
			resp.Header[HeaderEdge] = []string{"(set)"}
		}
		out = append(out, fmt.Sprintf("%s cl=%d te=%v close=%v body=%q err=%v trailer=%v\n%s",
			resp.Status, resp.ContentLength, resp.TransferEncoding, resp.Close, body, berr != nil,
			sortedHeader(resp.Trailer), sortedHeader(resp.Header)))
		if resp.StatusCode < 100 || resp.StatusCode > 199 {
			i++
		}
	}
	return append(out, end)
}

// requestMethods lists the methods of the requests net/http reads in raw.
func requestMethods(raw []byte) []string {
	var ms []string
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return ms
		}
		ms = append(ms, req.Method)
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return ms
		}
	}
}

func checkSrvDiff(t *testing.T, p srvDiffPair, raw []byte) {
	t.Helper()
	raw = append(raw[:len(raw):len(raw)], srvSentinel...)
	p.fastUp.reset()
	p.refUp.reset()
	var fast, ref []string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); fast = exchangeRaw(t, p.fast, raw) }()
	go func() { defer wg.Done(); ref = exchangeRaw(t, p.ref, raw) }()
	wg.Wait()
	if d := diffLists("client", fast, ref); d != "" {
		t.Errorf("input %q:\n%s", raw, d)
	}
	if d := diffLists("endpoint", p.fastUp.seen(), p.refUp.seen()); d != "" {
		t.Errorf("input %q:\n%s", raw, d)
	}
}

func diffLists(what string, got, want []string) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "%s item %d:\n  edge loop: %s\n  net/http:  %s\n", what, i, g, w)
		}
	}
	return b.String()
}

// srvSeeds are client inputs, valid and hostile.
var srvSeeds = []string{
	"GET /up/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/a HTTP/1.1\r\nHost: a\r\n\r\nGET /up/b?q=1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /up/c HTTP/1.1\r\nHost: a\r\n\r\n",
	"HEAD /up/x HTTP/1.1\r\nHost: a\r\n\r\nGET /up/y HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/x HTTP/1.1 extra\r\nHost: a\r\n\r\n",
	"GET up/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  /up/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/x HTTP/1.2\r\nHost: a\r\n\r\n",
	"GET /up/x HTTP/2.0\r\nHost: a\r\n\r\n",
	"get /up/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"FOO /up/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nDELETE /up/y HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /up/y HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n",
	"GET /up/x HTTP/1.1\r\n Host: a\r\n\r\n",
	"GET /up/x HTTP/1.1\nHost: a\n\n",
	"GET /up/x HTTP/1.1\r\nHost: a\nX-B: 1\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n\r\n",
	"GET /up/x HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\nGET /up/y HTTP/1.0\r\n\r\n",
	"GET /up/x HTTP/1.0\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /up/y HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n",
	"GET /up/x HTTP/1.1\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"POST /up/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n",
	"GET /up/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nhost: a\r\nuser-agent: lower\r\naccept-ENCODING: gzip\r\nx-custom-thing: 1\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET /up/a%2Fb/%7e/c?x=%41&y=a+b HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up//double/./../x? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/p|i{p}e'(x)*!?q=|#frag HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/\xc3\xa9t\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /unknown/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: 1\r\nTe: trailers, deflate\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nX-Real-Ip: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\nX-Mycelium-Edge: forged\r\n\r\n",
	"CONNECT /up/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://a/up/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x01b\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nX-Del: a\x7fb\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nBad : x\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9\r\nX-Tab: a\tb \t\r\nX-Empty:\r\n\r\n",
	"\r\nGET /up/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nX-Multi: 1\r\nX-Multi: 2\r\nx-multi: 3\r\n\r\n",
	"DELETE /up/x HTTP/1.1\r\nHost: a:8080\r\nUser-Agent: \r\n\r\nOPTIONS /up/y HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /up/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
}

func TestServerDifferential(t *testing.T) {
	for ai, answer := range srvAnswers {
		p := startSrvDiffPair(t, answer)
		for si, seed := range srvSeeds {
			t.Run(fmt.Sprintf("answer%d/seed%d", ai, si), func(t *testing.T) {
				if ai > 0 && strings.Contains(seed, "X-Big") {
					t.Skip("the large heads are compared with the first answer only")
				}
				checkSrvDiff(t, p, []byte(seed))
			})
		}
	}
}

// FuzzServerDifferential mutates the client bytes and the answer; the
// seeds are srvSeeds.
func FuzzServerDifferential(f *testing.F) {
	for i, s := range srvSeeds {
		f.Add([]byte(s), uint8(i%len(srvAnswers)))
	}
	pairs := make([]srvDiffPair, len(srvAnswers))
	for i, a := range srvAnswers {
		pairs[i] = startSrvDiffPair(f, a)
	}
	var mu sync.Mutex // the recorders hold one input's requests at a time
	f.Fuzz(func(t *testing.T, raw []byte, answer uint8) {
		mu.Lock()
		defer mu.Unlock()
		checkSrvDiff(t, pairs[int(answer)%len(pairs)], raw)
	})
}
