package edge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HeaderEdge is the header the edge adds to forwarded requests and to
// responses, holding the time the request arrived in RFC3339.
const HeaderEdge = "X-Mycelium-Edge"

// StatusClientClosed is recorded for requests whose client went away before
// the answer was complete (nginx's convention); it is never sent.
const StatusClientClosed = 499

// edgeErrorWriteTimeout bounds writing one of the edge's own short answers.
const edgeErrorWriteTimeout = 10 * time.Second

// maxReplays bounds how often one request that reached an endpoint is
// replayed on another, on top of the retry budget.
const maxReplays = 2

var (
	protoHTTP   = []string{"http"}
	protoHTTPS  = []string{"https"}
	emptyValue  = []string{""}
	upgradeConn = []string{"Upgrade"}
	copyBufs    = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

type stampCache struct {
	sec int64
	v   []string
}

var stamp atomic.Pointer[stampCache]

// edgeStamp returns the header value for now, formatted once per second.
// The slice is shared and must not be modified.
func edgeStamp(now time.Time) []string {
	s := now.Unix()
	if c := stamp.Load(); c != nil && c.sec == s {
		return c.v
	}
	c := &stampCache{sec: s, v: []string{now.UTC().Format(time.RFC3339)}}
	stamp.Store(c)
	return c.v
}

// ServeHTTP routes one request. It is the edge's handler and may also be
// mounted in another server.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := edgeStamp(start)
	if r.Method == http.MethodConnect {
		edgeError(w, st, http.StatusMethodNotAllowed, "CONNECT is not supported")
		return
	}
	if e.serveSite(w, r, st) { // static sites by Host, see sites.go
		return
	}
	rt, ok := parseRoute(requestPath(r))
	if !ok {
		edgeError(w, st, http.StatusBadRequest, "malformed path")
		return
	}
	a := (*e.routes.Load())[rt.app]
	if a == nil {
		name := rt.app
		if len(name) > 64 {
			name = name[:64] + "..."
		}
		if name == "" {
			edgeError(w, st, http.StatusNotFound, "no app in path: use /{app}/...")
			return
		}
		edgeError(w, st, http.StatusNotFound, fmt.Sprintf("unknown app %q", name))
		return
	}
	path := rt.cleaned
	if a.strip.Load() {
		path = rt.rest
	}
	a.inFlight.Add(1)
	a.prom.inFlight.Inc()
	status := http.StatusBadGateway // what a panic below is counted as
	defer func() {
		a.inFlight.Add(-1)
		a.prom.inFlight.Dec()
		a.requests.Add(1)
		a.wakeReports()
		switch {
		case status == StatusClientClosed:
			a.clientClosed.Add(1)
		case status >= 500:
			a.errors5xx.Add(1)
		}
		c := status / 100
		if c < 1 || c > 5 {
			c = 5
		}
		a.prom.byClass[c].Inc()
		a.prom.duration.Observe(time.Since(start).Seconds())
	}()
	status = e.forward(w, r, a, path, st, start, &status)
}

// bodyTracker passes the client's body to the transport, remembers whether
// anything was read (so a connect failure can be retried safely) and
// whether reading it failed (the client's fault, never the endpoint's), and
// keeps the transport from closing it between attempts.
type bodyTracker struct {
	rc     io.ReadCloser
	read   atomic.Bool
	eof    atomic.Bool  // read to its end
	failed atomic.Int32 // a clientBody* code once a read failed
}

// Ways reading a client's body can fail.
const (
	clientBodyOK        = iota
	clientBodyMalformed // bad framing (chunk sizes, ...) or over a limit: 400
	clientBodyTimeout   // not all there within RequestBodyTimeout: 408
	clientBodyGone      // the client closed the connection mid-body: 499
)

func (b *bodyTracker) Read(p []byte) (int, error) {
	b.read.Store(true)
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	} else if err != nil {
		b.failed.CompareAndSwap(clientBodyOK, int32(classifyBodyError(err)))
	}
	return n, err
}

func classifyBodyError(err error) int {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return clientBodyTimeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return clientBodyGone
	}
	return clientBodyMalformed
}

func (b *bodyTracker) Close() error { return nil }

// forward sends the request to the app's endpoints until one answers and
// relays the answer. It returns the status to record; *status is kept
// current for the case where relaying panics to abort the response.
func (e *Edge) forward(w http.ResponseWriter, r *http.Request, a *app, path string, st []string, start time.Time, status *int) int {
	p := a.picker.Load()
	if len(p.eps) == 0 {
		w.Header()["Retry-After"] = []string{"1"}
		edgeError(w, st, http.StatusServiceUnavailable, fmt.Sprintf("no healthy endpoint for app %q", a.name))
		return http.StatusServiceUnavailable
	}
	var body *bodyTracker
	if r.Body != nil && r.Body != http.NoBody {
		body = &bodyTracker{rc: r.Body}
		setReadDeadline(w, start.Add(e.opts.RequestBodyTimeout))
	}
	trusted := trustedPeer(e.opts.TrustedProxies, r.RemoteAddr)
	// Upgrades take http.Transport; everything else the edge's pool.
	var out *http.Request
	var base *url.URL
	var o outReq
	upgrade := upgradeType(r.Header) != ""
	if upgrade {
		out, base, _ = outRequest(r, path, st, trusted)
		if body != nil {
			out.Body = body
			out.ContentLength = r.ContentLength
		}
	} else {
		o = newOutReq(r, path, st, trusted, body)
	}
	// Informational answers are HTTP/1.1; an HTTP/1.0 client would take
	// one for the final answer.
	info := w
	if !r.ProtoAtLeast(1, 1) {
		info = nil
	}
	oo := &e.opts.Outlier
	var triedBuf [4]*endpoint
	tried := triedBuf[:0]
	replays := 0
	var lastErr error
	onlyConnect := true // every failure so far was a refused connection
	for attempt := 0; ; attempt++ {
		ep := p.pick(&a.rr, tried)
		if ep == nil {
			if onlyConnect {
				// Every endpoint refused: the app has no healthy endpoint.
				w.Header()["Retry-After"] = []string{"1"}
				edgeError(w, st, http.StatusServiceUnavailable, fmt.Sprintf("no reachable endpoint for app %q", a.name))
				return http.StatusServiceUnavailable
			}
			return e.upstreamError(w, st, a, lastErr)
		}
		ep.inFlight.Add(1)
		t0 := start
		if attempt > 0 {
			t0 = time.Now()
		}
		var resp *http.Response
		var err error
		if !upgrade {
			resp, err = e.roundTrip(r.Context(), &o, ep, info, t0)
		} else {
			req := out
			if attempt == 0 {
				base.Host = ep.host
			} else {
				u := *base
				u.Host = ep.host
				cp := *out
				cp.URL = &u
				req = &cp
			}
			resp, err = e.transport.RoundTrip(req)
		}
		if err != nil {
			ep.inFlight.Add(-1)
			if body != nil {
				if code := body.failed.Load(); code != clientBodyOK {
					return e.clientBodyError(w, st, a, int(code), err, status)
				}
			}
			if r.Context().Err() != nil {
				abortClientGone(status)
			}
			lastErr = err
			tried = append(tried, ep)
			if errors.Is(err, errPoolTimeout) {
				// Saturated, not broken, and nothing was sent: another
				// endpoint may take the request; none is held to blame.
				onlyConnect = false
				continue
			}
			ep.failures.Add(1)
			if isConnectError(err) && (body == nil || !body.read.Load()) {
				// Nothing reached the workload: any method may go elsewhere.
				if int(ep.consecConn.Add(1)) >= oo.ConsecutiveConnFailures {
					a.eject(p, ep)
				}
				continue
			}
			onlyConnect = false
			if int(ep.consec5xx.Add(1)) >= oo.Consecutive5xx {
				a.eject(p, ep)
			}
			if body == nil && idempotent(r.Method) && !e.opts.DisableIdempotentRetry &&
				replays < maxReplays && a.takeRetry() {
				replays++
				continue
			}
			return e.upstreamError(w, st, a, err)
		}
		return e.relay(w, r, a, p, ep, resp, st, start, t0, status)
	}
}

// relay copies the endpoint's answer to the client.
func (e *Edge) relay(w http.ResponseWriter, r *http.Request, a *app, p *picker, ep *endpoint, resp *http.Response, st []string, start, t0 time.Time, status *int) int {
	code := resp.StatusCode
	ep.latencyUS.Add(uint64(time.Since(t0).Microseconds()))
	ep.promRequests.Inc()
	if code >= 500 {
		ep.failures.Add(1)
		if int(ep.consec5xx.Add(1)) >= e.opts.Outlier.Consecutive5xx {
			a.eject(p, ep)
		}
	} else if ep.consec5xx.Load() != 0 {
		ep.consec5xx.Store(0)
	}
	if ep.consecConn.Load() != 0 {
		ep.consecConn.Store(0)
	}
	if code == http.StatusSwitchingProtocols {
		defer func() {
			ep.inFlight.Add(-1)
			ep.requests.Add(1)
		}()
		return e.upgrade(w, r, resp, st)
	}
	defer closeAnswer(resp)

	h := w.Header()
	copyResponseHeader(h, resp.Header)
	h[HeaderEdge] = st
	if _, ok := h["Content-Type"]; !ok {
		// A nil value keeps net/http from sniffing one: the client gets
		// the type the endpoint gave, or none.
		h["Content-Type"] = nil
	}
	// The body reader fills resp.Trailer with every trailer that arrives,
	// announced or not; remember which ones were announced.
	var declaredTrailers map[string]struct{}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		declaredTrailers = make(map[string]struct{}, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
			declaredTrailers[k] = struct{}{}
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	flush := streaming(resp)
	clock := e.startBodyClock(w, resp, flush, nil, start)
	defer clock.stop()
	w.WriteHeader(code)
	*status = code
	fl, _ := w.(http.Flusher)
	if flush && fl != nil {
		fl.Flush()
	} else {
		fl = nil
	}
	clientGone, err := copyBody(w, resp.Body, fl, &clock)
	ep.inFlight.Add(-1)
	ep.requests.Add(1)
	if err != nil {
		if clientGone || r.Context().Err() != nil {
			// The header is out: abort rather than end the body in a way
			// that reads as complete.
			abortClientGone(status)
		}
		// The endpoint broke off mid-body: the client must see a broken
		// response, not a short one that looks complete.
		ep.failures.Add(1)
		*status = http.StatusBadGateway
		e.log.Debug("upstream body aborted", "app", a.name, "endpoint", ep.url, "error", err)
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		if _, declared := declaredTrailers[k]; declared {
			h[k] = vv
		} else {
			// Not announced before the body: only the prefix form is sent.
			h[http.TrailerPrefix+k] = vv
		}
	}
	return code
}

// closeAnswer ends an answer relayed from the pool and recycles its
// exchange: nothing refers to it once relay returns.
func closeAnswer(resp *http.Response) {
	resp.Body.Close()
	if x, ok := resp.Body.(*exchange); ok {
		x.recycle()
	}
}

// copyBody copies src to w through a pooled buffer. A stream is written as
// it arrives, flushed after every write when fl is set, with the idle
// deadlines of its clock pushed forward before every read and write; other
// bodies are written a full buffer at a time. clientGone tells a failed
// write from a failed read.
func copyBody(w io.Writer, src io.Reader, fl http.Flusher, clock *bodyClock) (clientGone bool, err error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	idle := clock.idle > 0
	for {
		if idle {
			clock.beforeRead()
		}
		n, rerr := src.Read(buf)
		if !idle && fl == nil {
			// A body of known length is gathered up to the buffer's size
			// before it is written: fewer, larger writes to the client.
			for rerr == nil && n > 0 && n < len(buf) {
				var m int
				m, rerr = src.Read(buf[n:])
				n += m
				if m == 0 && rerr == nil {
					break
				}
			}
		}
		if n > 0 {
			if idle {
				clock.beforeWrite()
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return true, werr
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if rerr == io.EOF {
			return false, nil
		}
		if rerr != nil {
			return false, rerr
		}
	}
}

// streaming tells whether a response must be flushed as it arrives:
// server-sent events and bodies of unknown length.
func streaming(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	ct := resp.Header.Get("Content-Type")
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream")
}

// upstreamError answers for an endpoint that failed without answering.
func (e *Edge) upstreamError(w http.ResponseWriter, st []string, a *app, err error) int {
	code, msg := http.StatusBadGateway, fmt.Sprintf("app %q: endpoint failed", a.name)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		code, msg = http.StatusGatewayTimeout, fmt.Sprintf("app %q: endpoint timed out", a.name)
	}
	if err != nil {
		e.log.Debug("upstream failed", "app", a.name, "error", err)
	}
	edgeError(w, st, code, msg)
	return code
}

// edgeError writes a short plain-text answer of the edge's own.
func edgeError(w http.ResponseWriter, st []string, code int, msg string) {
	// However long the request took to get here, the answer gets its own
	// time to be written.
	setWriteDeadline(w, time.Now().Add(edgeErrorWriteTimeout))
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h[HeaderEdge] = st
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// hopByHop reports headers that describe one connection and are never
// forwarded (RFC 9110 section 7.6.1).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// connectionTokens calls fn with each header named in Connection, in its
// canonical form. Walking the list allocates nothing for the options
// clients send (close, keep-alive, upgrade), spelled in any case.
func connectionTokens(h http.Header, fn func(string)) {
	for _, v := range h["Connection"] {
		for v != "" {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if tok = strings.TrimSpace(tok); tok != "" {
				fn(canonicalToken(tok))
			}
		}
	}
}

// commonTokens are the canonical names of the connection options clients
// send, returned without building a new string.
var commonTokens = [...]string{"Close", "Keep-Alive", "Upgrade"}

// canonicalToken is textproto.CanonicalMIMEHeaderKey(tok).
func canonicalToken(tok string) string {
	for _, c := range commonTokens {
		if asciiEqualFold(tok, c) {
			return c
		}
	}
	return textproto.CanonicalMIMEHeaderKey(tok)
}

// asciiEqualFold reports whether a and b are equal ignoring ASCII case
// only, as header names are compared (strings.EqualFold also folds
// non-ASCII letters such as the Kelvin sign into ASCII ones).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func upgradeType(h http.Header) string {
	found := false
	connectionTokens(h, func(t string) {
		if t == "Upgrade" {
			found = true
		}
	})
	if !found {
		return ""
	}
	return h.Get("Upgrade")
}

// copyResponseHeader copies an endpoint's response header minus hop-by-hop
// fields. Value slices are shared, not copied.
func copyResponseHeader(dst, src http.Header) {
	for k, vv := range src {
		if !hopByHop(k) {
			dst[k] = vv
		}
	}
	if _, ok := src["Connection"]; ok {
		connectionTokens(src, func(t string) { delete(dst, t) })
	}
	if _, ok := src["Content-Type"]; !ok {
		// The endpoint named none: a nil entry keeps net/http from
		// sniffing one from the body (text/html on user content).
		dst["Content-Type"] = nil
	}
}

// requestPath is the escaped path of r as the client spelled it, so that
// the workload sees the same bytes; url.URL.EscapedPath would re-escape
// bytes such as '|' or '{'. Absolute-form targets, and targets holding a
// '#' that a workload could take for a fragment, fall back to the parsed
// URL.
func requestPath(r *http.Request) string {
	ru := r.RequestURI
	if ru == "" || ru[0] != '/' || strings.IndexByte(ru, '#') >= 0 {
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(ru, '?'); i >= 0 {
		ru = ru[:i]
	}
	return ru
}

// escapeLoose percent-encodes the bytes of an escaped path that are
// neither unreserved, sub-delims, ':', '@', '/' nor '%', leaving existing
// escapes alone.
func escapeLoose(p string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(p); i++ {
		c := p[i]
		keep := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~!$&'()*+,;=:@/%", c) >= 0
		switch {
		case !keep:
			if b == nil {
				b = append(make([]byte, 0, len(p)+8), p[:i]...)
			}
			b = append(b, '%', hex[c>>4], hex[c&15])
		case b != nil:
			b = append(b, c)
		}
	}
	if b == nil {
		return p
	}
	return string(b)
}

func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}
