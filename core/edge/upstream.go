package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/mycelium-mesh/mesh/core/config/defaults"
)

// The edge sends requests without a body (the bulk of traffic) over its own
// HTTP/1.1 connection pool: the handler goroutine writes the request and
// reads the answer itself, with no hand-off to the per-connection reader
// and writer goroutines of http.Transport. Requests with a body and
// upgrades take http.Transport, which handles 100-continue and full-duplex
// bodies.

// upConn is one keep-alive connection to an endpoint.
type upConn struct {
	c        net.Conn
	lr       capReader // between c and br: bounds response headers
	br       *bufio.Reader
	bw       *bufio.Writer
	idleFrom time.Time
	poison   func()     // makes blocked reads and writes fail at once
	probe    *idleProbe // tells whether the idle connection is still usable
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

// errStale marks a reused connection that the endpoint had closed: nothing
// came back, so the request may be sent again on a fresh connection.
var errStale = errors.New("edge: pooled connection closed by the endpoint")

// aLongTimeAgo is a deadline that makes blocked reads return at once.
var aLongTimeAgo = time.Unix(1, 0)

// idleLimit is how long a pooled connection may sit unused; many servers
// close idle connections after a few seconds.
const idleLimit = defaults.UpstreamIdle

// getConn takes an idle connection to ep, or dials one when there is none
// or fresh is set. Pooled connections that the endpoint closed, or on which
// it sent bytes nobody asked for, are dropped rather than used.
func (e *Edge) getConn(ctx context.Context, ep *endpoint, fresh bool) (uc *upConn, reused bool, err error) {
	for !fresh {
		var uc *upConn
		select {
		case uc = <-ep.idle:
		default:
		}
		if uc == nil {
			break
		}
		if time.Since(uc.idleFrom) > idleLimit || !uc.probe.usable() {
			uc.c.Close()
			continue
		}
		return uc, true, nil
	}
	c, err := e.dialer.DialContext(ctx, "tcp", ep.host)
	if err != nil {
		return nil, false, err
	}
	uc = &upConn{c: c, lr: capReader{c: c, n: -1}, bw: bufio.NewWriterSize(c, 8<<10)}
	uc.br = bufio.NewReaderSize(&uc.lr, 16<<10)
	uc.poison = func() { c.SetDeadline(aLongTimeAgo) }
	uc.probe = newIdleProbe(c)
	return uc, false, nil
}

// putConn pools uc, or closes it when the pool is full or the endpoint left.
func (e *Edge) putConn(ep *endpoint, uc *upConn) {
	// Bytes after the end of the answer were never asked for: the next
	// request would read them as its answer.
	if ep.removed.Load() || e.ctx.Err() != nil || uc.br.Buffered() > 0 {
		uc.c.Close()
		return
	}
	uc.idleFrom = time.Now()
	select {
	case ep.idle <- uc:
	default:
		uc.c.Close()
	}
}

// closeIdle closes every pooled connection of ep.
func closeIdle(ep *endpoint) {
	for {
		select {
		case uc := <-ep.idle:
			uc.c.Close()
		default:
			return
		}
	}
}

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
	eof  bool
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
	// if the hook never ran.
	if x.stop() && x.eof && !x.resp.Close && !x.resp.Request.Close {
		x.e.putConn(x.ep, uc)
		return nil
	}
	return uc.c.Close()
}

// roundTrip sends a request without a body to ep over the edge's pool. For
// idempotent methods, a pooled connection that turns out closed by the
// endpoint (nothing came back) costs one more try on a freshly dialed
// connection, transparently. Dial errors come back as *net.OpError with Op
// "dial", like http.Transport's.
func (e *Edge) roundTrip(req *http.Request, ep *endpoint, w http.ResponseWriter) (*http.Response, error) {
	ctx := req.Context()
	fresh := false
	for {
		uc, reused, err := e.getConn(ctx, ep, fresh)
		if err != nil {
			return nil, err
		}
		resp, err := e.exchange(ctx, req, ep, uc, w)
		if err == nil {
			return resp, nil
		}
		uc.c.Close()
		if errors.Is(err, errStale) && reused && idempotent(req.Method) {
			fresh = true
			continue
		}
		if errors.Is(err, errStale) {
			err = fmt.Errorf("read response: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
}

// failExchange ends a failed exchange: the client's cancellation wins over
// the error it caused.
func failExchange(ctx context.Context, stop func() bool, err error) (*http.Response, error) {
	stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, fmt.Errorf("await response headers: %w", err)
	}
	return nil, err
}

// exchange writes req on uc and reads the answer's header. Informational
// answers other than 100 Continue (102 Processing, 103 Early Hints) are
// relayed to w as they come; w may be nil.
func (e *Edge) exchange(ctx context.Context, req *http.Request, ep *endpoint, uc *upConn, w http.ResponseWriter) (*http.Response, error) {
	// The upstream timeout covers writing the request and waiting for the
	// answer's header. The deadline is set before the cancellation hook,
	// which may run at once and must win.
	uc.c.SetDeadline(time.Now().Add(e.opts.UpstreamTimeout))
	stop := context.AfterFunc(ctx, uc.poison)
	if err := req.Write(uc.bw); err != nil {
		return failExchange(ctx, stop, errStale)
	}
	if err := uc.bw.Flush(); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return failExchange(ctx, stop, fmt.Errorf("write request: %w", err))
		}
		return failExchange(ctx, stop, errStale)
	}
	uc.lr.n = maxResponseHeaderBytes
	var resp *http.Response
	for first := true; ; first = false {
		if _, err := uc.br.Peek(1); err != nil {
			var ne net.Error
			if !first || errors.Is(err, ErrResponseHeaderTooLarge) || (errors.As(err, &ne) && ne.Timeout()) {
				return failExchange(ctx, stop, fmt.Errorf("read response: %w", err))
			}
			// Not a byte came back: the endpoint closed the connection.
			return failExchange(ctx, stop, errStale)
		}
		conn := peekConnection(uc.br)
		r, err := http.ReadResponse(uc.br, req)
		if err != nil {
			return failExchange(ctx, stop, fmt.Errorf("read response: %w", err))
		}
		if conn != nil && r.Header["Connection"] == nil {
			r.Header["Connection"] = conn // see peekConnection
		}
		if r.StatusCode >= 100 && r.StatusCode < 200 && r.StatusCode != http.StatusSwitchingProtocols {
			if w != nil && r.StatusCode != http.StatusContinue {
				relayInformational(w, r)
			}
			continue
		}
		resp = r
		break
	}
	uc.lr.n = -1
	uc.c.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		// Cancelled while the deadline was being reset: poison it again.
		uc.c.SetDeadline(aLongTimeAgo)
	}
	resp.Body = &exchange{e: e, ep: ep, uc: uc, ctx: ctx, body: resp.Body, stop: stop, resp: resp}
	return resp, nil
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
