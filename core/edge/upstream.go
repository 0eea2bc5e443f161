package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mycelium-mesh/mesh/core/config/defaults"
)

// Every request but an upgrade goes over the edge's own HTTP/1.1
// connection pool (pool.go): the handler goroutine writes the request head
// (reqhead.go) and reads the answer itself, with no hand-off to the
// per-connection goroutines of http.Transport. A request body is relayed by
// one more goroutine while the answer is read (reqbody.go), so an endpoint
// may answer before it has read the whole body. Upgrades take
// http.Transport, configured with the same timeouts and header limits.
//
// A request reuses a pooled connection as it is when the connection was
// used less than probeAfter ago and the request may be sent again: an
// endpoint that closed it meanwhile sends nothing back, and the request is
// retried on a fresh connection. Other reused connections, and those whose
// last answer had no body by rule (HEAD, 204, 304: where stray bytes are
// likeliest), are first probed without blocking (alive_unix.go) for a close
// or for bytes nobody asked for. Stray bytes that arrive with an answer are
// seen when it ends (putConn); only those an endpoint sends after a
// complete answer with a body, late, within probeAfter, would be read as
// the next answer — the price of not probing every reuse. Whatever the method, a request whose head could not be written at
// all is sent again on a fresh connection: the endpoint cannot have acted
// on it.

// upConn is one keep-alive connection to an endpoint.
type upConn struct {
	c        net.Conn
	lr       capReader // between c and br: bounds response headers
	br       *bufio.Reader
	bw       *bufio.Writer
	idleFrom time.Time
	poison   func()      // makes blocked reads and writes fail at once
	probe    *idleProbe  // tells whether the idle connection is still usable
	hdr      http.Header // header map of the last plain answer, reused
	// suspect: the last answer had no body by rule (HEAD, 204, 304), the
	// kind an endpoint most often follows with bytes it should not send,
	// sometimes a moment later; the next reuse probes first.
	suspect bool
}

// maxResponseHeaderBytes bounds what an endpoint may send before the body
// of its final answer, informational answers included.
const maxResponseHeaderBytes = 1 << 20

// ErrResponseHeaderTooLarge is the error for an endpoint whose response
// header exceeds the edge's limit; the client gets a 502.
var ErrResponseHeaderTooLarge = errors.New("edge: endpoint response header too large")

// capReader reads from c, at most n bytes while n is non-negative.
type capReader struct {
	c net.Conn
	n int64 // -1: no limit
}

func (r *capReader) Read(p []byte) (int, error) {
	if r.n < 0 {
		return r.c.Read(p)
	}
	if r.n == 0 {
		return 0, ErrResponseHeaderTooLarge
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.c.Read(p)
	r.n -= int64(n)
	return n, err
}

var (
	// errStale marks a reused connection that the endpoint had closed:
	// nothing came back, so an idempotent request may be sent again.
	errStale = errors.New("edge: pooled connection closed by the endpoint")
	// errNotSent marks a request whose head could not be written: any
	// request may be sent again.
	errNotSent = errors.New("edge: request not sent")
	// errPoolTimeout is a request that found every connection of the
	// endpoint busy for the whole upstream timeout.
	errPoolTimeout = timeoutError{"edge: every connection to the endpoint busy"}
)

// timeoutError is a net.Error that timed out.
type timeoutError struct{ s string }

func (e timeoutError) Error() string   { return e.s }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }

// aLongTimeAgo is a deadline that makes blocked reads return at once.
var aLongTimeAgo = time.Unix(1, 0)

const (
	// idleLimit is how long a pooled connection may sit unused; many
	// servers close idle connections after a few seconds.
	idleLimit = defaults.UpstreamIdle
	// reapInterval is how often idle connections past idleLimit are closed.
	reapInterval = idleLimit / 4
	// probeAfterDefault is Options.probeAfter's default.
	probeAfterDefault = time.Second
)

// getConn takes the newest idle connection to ep, or dials one when there
// is none or fresh is set, and arms the request's deadline on it. A pooled
// connection idle longer than the probe threshold (always, when probe is
// set) is checked first; one the endpoint closed, or on which it sent
// bytes nobody asked for, is dropped.
func (e *Edge) getConn(ctx context.Context, ep *endpoint, fresh, probe bool, now, deadline time.Time) (uc *upConn, reused bool, err error) {
	for {
		uc, ok, err := ep.pool.take(ctx, e.opts.UpstreamTimeout, fresh)
		if !ok {
			return nil, false, err
		}
		if uc == nil {
			break // a slot to dial with
		}
		idle := now.Sub(uc.idleFrom)
		if idle > idleLimit {
			e.discard(ep, uc)
			continue
		}
		// The deadline goes first: the probe fails on an expired one.
		uc.c.SetDeadline(deadline)
		if probe || uc.suspect || idle >= e.opts.probeAfter {
			e.probes.Add(1)
			if !uc.probe.usable() {
				e.discard(ep, uc)
				continue
			}
		}
		return uc, true, nil
	}
	c, err := e.dialer.DialContext(ctx, "tcp", ep.host)
	if err != nil {
		ep.pool.release()
		return nil, false, err
	}
	uc = &upConn{c: c, lr: capReader{c: c, n: -1}, bw: bufio.NewWriterSize(c, 8<<10)}
	uc.br = bufio.NewReaderSize(&uc.lr, 16<<10)
	uc.poison = func() { c.SetDeadline(aLongTimeAgo) }
	uc.probe = newIdleProbe(c)
	c.SetDeadline(deadline)
	return uc, false, nil
}

// discard closes a connection of ep and frees its slot.
func (e *Edge) discard(ep *endpoint, uc *upConn) {
	uc.c.Close()
	ep.pool.release()
}

// putConn pools uc, or closes it when the pool is full or the endpoint left.
func (e *Edge) putConn(ep *endpoint, uc *upConn) {
	// Bytes after the end of the answer were never asked for: the next
	// request would read them as its answer.
	if ep.removed.Load() || e.ctx.Err() != nil || uc.br.Buffered() > 0 {
		e.discard(ep, uc)
		return
	}
	uc.idleFrom = time.Now()
	if !ep.pool.put(uc) {
		e.discard(ep, uc)
	}
}

// closeIdle closes every pooled connection of ep.
func closeIdle(ep *endpoint) { ep.pool.closeAll() }

// exchange is one request on one connection. Its Body returns the
// connection to the pool when read to the end, and closes it otherwise.
type exchange struct {
	e    *Edge
	ep   *endpoint
	uc   *upConn
	ctx  context.Context // the client request's
	body io.ReadCloser
	stop func() bool // detaches the client-cancellation hook
	resp *http.Response
	sent *bodySender // relays the request body, or nil
	eof  bool
	// buffered: the whole body is in the connection's buffer, so no
	// more reads of the connection are needed.
	buffered bool
	resp0    http.Response // the answer, when parsed by plainAnswer
	lb       lengthBody    // its body
}

// exchanges recycles exchange values, a few hundred bytes each.
var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func newExchange() *exchange { return exchanges.Get().(*exchange) }

// recycle returns a closed exchange for reuse; x must not be used after.
func (x *exchange) recycle() {
	*x = exchange{}
	exchanges.Put(x)
}

// setReadDeadline bounds the reads of the rest of the body. A cancellation
// that raced with it keeps winning.
func (x *exchange) setReadDeadline(t time.Time) {
	if x.uc == nil {
		return
	}
	x.uc.c.SetReadDeadline(t)
	if x.ctx.Err() != nil {
		x.uc.c.SetDeadline(aLongTimeAgo)
	}
}

func (x *exchange) Read(p []byte) (int, error) {
	n, err := x.body.Read(p)
	if err == io.EOF {
		x.eof = true
	}
	return n, err
}

func (x *exchange) Close() error {
	if x.uc == nil {
		return nil
	}
	uc := x.uc
	x.uc = nil
	x.body.Close()
	// The hook may have poisoned the connection's deadline: reuse it only
	// if the hook never ran, the answer was read to its end and the whole
	// request body went out.
	if x.stop() && x.eof && !x.resp.Close && (x.sent == nil || x.sent.finished()) {
		uc.suspect = x.body == http.NoBody
		x.e.putConn(x.ep, uc)
		return nil
	}
	// Unblocks a body relay still writing.
	uc.poison()
	x.e.discard(x.ep, uc)
	return nil
}

// roundTrip sends o to ep over the edge's pool. A pooled connection that
// turns out closed by the endpoint (nothing came back) costs an idempotent
// request one more try on a freshly dialed connection, and a request that
// could not be written at all one more try whatever its method. Dial
// errors come back as *net.OpError with Op "dial", like http.Transport's.
func (e *Edge) roundTrip(ctx context.Context, o *outReq, ep *endpoint, w http.ResponseWriter, now time.Time) (*http.Response, error) {
	replayable := o.body == nil && idempotent(o.method)
	var deadline time.Time
	if o.body == nil {
		deadline = now.Add(e.opts.UpstreamTimeout)
	} else {
		// The body may take as long as the client is given to send it;
		// the endpoint has the upstream timeout on top to answer.
		deadline = now.Add(e.opts.RequestBodyTimeout + e.opts.UpstreamTimeout)
	}
	fresh := false
	for {
		// A first try without a body starts with a short deadline and no
		// cancellation hook; see exchange.
		lazy := o.body == nil && !fresh
		connDeadline := deadline
		if d := now.Add(hookDelay); lazy && d.Before(deadline) {
			connDeadline = d
		}
		uc, reused, err := e.getConn(ctx, ep, fresh, !replayable, now, connDeadline)
		if err != nil {
			return nil, err
		}
		resp, err := e.exchange(ctx, o, ep, uc, w, deadline, lazy)
		if err == nil {
			return resp, nil
		}
		uc.poison()
		e.discard(ep, uc)
		if !fresh && (errors.Is(err, errNotSent) && (o.body == nil || !o.body.read.Load()) ||
			errors.Is(err, errStale) && reused && replayable) {
			fresh = true
			continue
		}
		if errors.Is(err, errStale) || errors.Is(err, errNotSent) {
			err = fmt.Errorf("read response: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
}

// hookDelay is how long a request without a body waits for its answer
// before it hooks the client's cancellation (see exchange).
const hookDelay = 100 * time.Millisecond

// unhookedRest is the most of a known-length body left to read from the
// endpoint after its header for which the cancellation hook is not armed.
const unhookedRest = 64 << 10

// noHook stands for a cancellation hook never set up.
func noHook() bool { return true }

// failExchange ends a failed exchange: the client's cancellation wins over
// the error it caused.
func failExchange(ctx context.Context, stop func() bool, err error) (*http.Response, error) {
	stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if isTimeout(err) {
		return nil, fmt.Errorf("await response headers: %w", err)
	}
	return nil, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// exchange writes o on uc and reads the answer's header until deadline.
// Informational answers other than 100 Continue (102 Processing, 103 Early
// Hints) are relayed to w as they come; w may be nil.
//
// A client that goes away must not hold an endpoint connection, so the
// connection is poisoned when the client's request is cancelled. Hooking
// the cancellation costs more than the rest of a small exchange, so in lazy
// mode the connection's deadline (set by getConn) is a short one instead:
// an answer that comes within it, and whose body is already buffered,
// needs no hook at all; otherwise the hook and the real deadline are armed
// when the short one passes, and the wait resumes where it was.
func (e *Edge) exchange(ctx context.Context, o *outReq, ep *endpoint, uc *upConn, w http.ResponseWriter, deadline time.Time, lazy bool) (*http.Response, error) {
	stop := noHook
	hooked := !lazy
	if hooked {
		// The hook may run at once and must win over the deadline, which
		// getConn set before.
		stop = context.AfterFunc(ctx, uc.poison)
	}
	hook := func() {
		if !hooked {
			hooked = true
			uc.c.SetDeadline(deadline)
			stop = context.AfterFunc(ctx, uc.poison)
		}
	}
	o.writeHead(uc.bw, ep.host)
	var sent *bodySender
	if o.body == nil {
		if err := uc.bw.Flush(); err != nil {
			if isTimeout(err) && (!lazy || !time.Now().Before(deadline)) {
				return failExchange(ctx, stop, fmt.Errorf("write request: %w", err))
			}
			// A write that failed, or did not finish within the short
			// deadline, left the head incomplete: nothing to act on.
			return failExchange(ctx, stop, fmt.Errorf("%w: %w", errNotSent, err))
		}
	} else {
		sent = startBody(uc, o, e.opts.UpstreamTimeout)
	}
	uc.lr.n = maxResponseHeaderBytes
	req := methodRequest(o.method)
	var resp *http.Response
	var xp *exchange // set by the plain parser, which builds it with resp
	for first := true; ; {
		hdr, err := awaitHeader(uc.br)
		if err != nil && !hooked && isTimeout(err) && time.Now().Before(deadline) && ctx.Err() == nil {
			hook()
			continue
		}
		if err != nil {
			if sent != nil {
				sent.abandon()
				if ctx.Err() != nil {
					// A failed read of the client's body cancels the
					// request: let the relay record how it failed, which
					// decides the answer.
					sent.wait(time.Second)
				}
			}
			if !first || uc.br.Buffered() > 0 || errors.Is(err, ErrResponseHeaderTooLarge) || isTimeout(err) {
				return failExchange(ctx, stop, fmt.Errorf("read response: %w", err))
			}
			// Not a byte came back: the endpoint closed the connection.
			return failExchange(ctx, stop, errStale)
		}
		if x := e.plainAnswer(uc, hdr, o.method, req); x != nil {
			resp = &x.resp0
			xp = x
			break
		}
		if hdr == nil {
			hook() // a header larger than the buffer: parsing may block
		}
		conn := connectionNames(hdr)
		r, err := http.ReadResponse(uc.br, req)
		if err != nil {
			if sent != nil {
				sent.abandon()
			}
			return failExchange(ctx, stop, fmt.Errorf("read response: %w", err))
		}
		if conn != nil && r.Header["Connection"] == nil {
			r.Header["Connection"] = conn // see connheader.go
		}
		first = false
		if r.StatusCode >= 100 && r.StatusCode < 200 && r.StatusCode != http.StatusSwitchingProtocols {
			if r.StatusCode == http.StatusContinue {
				if sent != nil {
					sent.proceed()
				}
			} else if w != nil {
				relayInformational(w, r)
			}
			continue
		}
		resp = r
		break
	}
	uc.lr.n = -1
	if sent != nil {
		sent.headerRead()
		// A final answer before 100 Continue: the body is not sent, and
		// the connection cannot be reused.
		if !sent.answered() {
			resp.Close = true
		}
	}
	buffered := resp.Body == http.NoBody ||
		resp.ContentLength >= 0 && len(resp.TransferEncoding) == 0 && int64(uc.br.Buffered()) >= resp.ContentLength
	// More to read from the endpoint: the relay arms its deadlines. A
	// stream, or a long rest of a body, may keep the connection for long,
	// so the hook watches the client too; a short rest of a known length
	// is bounded by the relay's deadline.
	if !buffered && !hooked && (resp.ContentLength < 0 || len(resp.TransferEncoding) > 0 ||
		resp.ContentLength-int64(uc.br.Buffered()) > unhookedRest) {
		hooked = true
		stop = context.AfterFunc(ctx, uc.poison)
	}
	if xp == nil {
		xp = newExchange()
		xp.body = resp.Body
	}
	xp.e, xp.ep, xp.uc, xp.ctx, xp.stop, xp.resp, xp.sent, xp.buffered = e, ep, uc, ctx, stop, resp, sent, buffered
	resp.Body = xp
	return resp, nil
}

// plainAnswer parses the header block hdr at the head of uc's buffer when
// it has the plain shape (respparse.go) and consumes it. It returns the
// exchange holding the answer, or nil when http.ReadResponse must parse it.
func (e *Edge) plainAnswer(uc *upConn, hdr []byte, method string, req *http.Request) *exchange {
	if hdr == nil {
		return nil
	}
	// The connection's header map is reused: the relay copies the fields
	// out before the connection can serve another request.
	if uc.hdr == nil {
		uc.hdr = make(http.Header, 8)
	} else {
		clear(uc.hdr)
	}
	p, ok := parsePlain(hdr, method, uc.hdr)
	if !ok || uc.br.Buffered() < p.size {
		return nil
	}
	if b, _ := uc.br.Peek(p.size); b[p.size-2] != '\r' || b[p.size-1] != '\n' {
		return nil
	}
	uc.br.Discard(p.size)
	x := newExchange()
	r := &x.resp0
	r.Status = p.reason
	r.StatusCode, r.Proto, r.ProtoMajor, r.ProtoMinor = p.status, "HTTP/1.1", 1, 1
	r.Header, r.Request, r.ContentLength = p.header, req, p.length
	switch {
	case method == http.MethodHead:
		r.Body = http.NoBody
	case p.status == http.StatusNoContent || p.status == http.StatusNotModified:
		r.Body = http.NoBody
	default:
		x.lb = lengthBody{br: uc.br, n: p.length}
		r.Body = &x.lb
	}
	x.body = r.Body
	return x
}

// Requests handed to http.ReadResponse, which looks at the method only
// (a HEAD answer has no body); shared, never modified.
var (
	reqGET     = &http.Request{Method: http.MethodGet}
	reqHEAD    = &http.Request{Method: http.MethodHead}
	reqPOST    = &http.Request{Method: http.MethodPost}
	reqPUT     = &http.Request{Method: http.MethodPut}
	reqDELETE  = &http.Request{Method: http.MethodDelete}
	reqOPTIONS = &http.Request{Method: http.MethodOptions}
	reqPATCH   = &http.Request{Method: http.MethodPatch}
)

func methodRequest(m string) *http.Request {
	switch m {
	case http.MethodGet:
		return reqGET
	case http.MethodHead:
		return reqHEAD
	case http.MethodPost:
		return reqPOST
	case http.MethodPut:
		return reqPUT
	case http.MethodDelete:
		return reqDELETE
	case http.MethodOptions:
		return reqOPTIONS
	case http.MethodPatch:
		return reqPATCH
	}
	return &http.Request{Method: m}
}

// relayInformational sends a 1xx answer's status and headers to the client
// without disturbing the headers the final answer will carry.
func relayInformational(w http.ResponseWriter, r *http.Response) {
	h := w.Header()
	saved := h.Clone()
	for k := range h {
		delete(h, k)
	}
	for k, v := range r.Header {
		if !hopByHop(k) {
			h[k] = v
		}
	}
	w.WriteHeader(r.StatusCode)
	for k := range h {
		delete(h, k)
	}
	for k, v := range saved {
		h[k] = v
	}
}
