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
	br       *bufio.Reader
	bw       *bufio.Writer
	idleFrom time.Time
}

// errStale marks a reused connection that the endpoint had closed: nothing
// came back, so the request may be sent again on a fresh connection.
var errStale = errors.New("edge: pooled connection closed by the endpoint")

// aLongTimeAgo is a deadline that makes blocked reads return at once.
var aLongTimeAgo = time.Unix(1, 0)

// idleLimit is how long a pooled connection may sit unused; many servers
// close idle connections after a few seconds.
const idleLimit = 30 * time.Second

func (e *Edge) getConn(ctx context.Context, ep *endpoint) (uc *upConn, reused bool, err error) {
	for {
		select {
		case uc := <-ep.idle:
			if time.Since(uc.idleFrom) > idleLimit {
				uc.c.Close()
				continue
			}
			return uc, true, nil
		default:
		}
		break
	}
	c, err := e.dialer.DialContext(ctx, "tcp", ep.host)
	if err != nil {
		return nil, false, err
	}
	return &upConn{
		c:  c,
		br: bufio.NewReaderSize(c, 16<<10),
		bw: bufio.NewWriterSize(c, 8<<10),
	}, false, nil
}

// putConn pools uc, or closes it when the pool is full or the endpoint left.
func (e *Edge) putConn(ep *endpoint, uc *upConn) {
	if ep.removed.Load() || e.ctx.Err() != nil {
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
	body io.ReadCloser
	stop func() bool // detaches the client-cancellation hook
	resp *http.Response
	eof  bool
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
// endpoint (nothing came back) is replaced by a fresh one, transparently. Dial errors come back as *net.OpError with Op
// "dial", like http.Transport's.
func (e *Edge) roundTrip(req *http.Request, ep *endpoint) (*http.Response, error) {
	ctx := req.Context()
	for try := 0; ; try++ {
		uc, reused, err := e.getConn(ctx, ep)
		if err != nil {
			return nil, err
		}
		resp, err := e.exchange(ctx, req, ep, uc)
		if err == nil {
			return resp, nil
		}
		uc.c.Close()
		if errors.Is(err, errStale) && reused && try < 2 && idempotent(req.Method) {
			continue
		}
		if errors.Is(err, errStale) {
			err = fmt.Errorf("read response: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
}

func (e *Edge) exchange(ctx context.Context, req *http.Request, ep *endpoint, uc *upConn) (*http.Response, error) {
	if err := req.Write(uc.bw); err != nil {
		return nil, errStale
	}
	if err := uc.bw.Flush(); err != nil {
		return nil, errStale
	}
	// The deadline first: the hook may run at once and must win.
	uc.c.SetReadDeadline(time.Now().Add(e.opts.UpstreamTimeout))
	stop := context.AfterFunc(ctx, func() { uc.c.SetReadDeadline(aLongTimeAgo) })
	var resp *http.Response
	for {
		if _, err := uc.br.Peek(1); err != nil {
			stop()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("await response headers: %w", err)
			}
			return nil, errStale
		}
		r, err := http.ReadResponse(uc.br, req)
		if err != nil {
			stop()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("read response: %w", err)
		}
		if r.StatusCode >= 100 && r.StatusCode < 200 && r.StatusCode != http.StatusSwitchingProtocols {
			continue // informational answers are not relayed
		}
		resp = r
		break
	}
	uc.c.SetReadDeadline(time.Time{})
	if ctx.Err() != nil {
		// Cancelled while the deadline was being reset: poison it again.
		uc.c.SetReadDeadline(aLongTimeAgo)
	}
	resp.Body = &exchange{e: e, ep: ep, uc: uc, body: resp.Body, stop: stop, resp: resp}
	return resp, nil
}
