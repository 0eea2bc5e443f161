package edge

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// clientConn is one client connection on the edge's own loop. Everything a
// request needs (reader, request, header map, response writer) lives here
// and is reused from one request to the next.
type clientConn struct {
	f        *front
	conn     *cappedConn // closing it frees the connection's slot
	raw      net.Conn    // the TCP connection, read and written directly
	br       *bufio.Reader
	remote   string
	accepted time.Time
	state    atomic.Int32 // connNew, ...

	ctx      *clientCtx   // new for each connection: see recycle
	reqBase  http.Request // carries ctx; each request starts as a copy
	req      http.Request
	url      url.URL
	hdr      http.Header
	vals     []string // backing array of the header values
	keyBuf   []byte
	w        respWriter
	readErr  error // set by the context's watch when the client is gone
	lastPOST bool  // the last request was a POST
}

// readerSize is the reader's buffer, and the largest head the loop parses
// itself: net/http reads with the same size, so a head that fits is one
// net/http would not refuse as too large.
const readerSize = 4 << 10

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// clientConns recycles connection state, a few KiB each, so that a client
// that opens a connection per request costs little more than the socket.
var clientConns = sync.Pool{New: func() any {
	cc := &clientConn{hdr: make(http.Header, 8)}
	cc.w.c = cc
	return cc
}}

func newClientConn(f *front, c *cappedConn) *clientConn {
	cc := clientConns.Get().(*clientConn)
	cc.f, cc.conn, cc.raw, cc.accepted = f, c, c.Conn, time.Now()
	cc.ctx = &clientCtx{c: cc}
	cc.reqBase = *(&http.Request{}).WithContext(cc.ctx)
	cc.remote = ""
	if a := c.RemoteAddr(); a != nil {
		cc.remote = a.String()
	}
	return cc
}

// recycle returns a connection's state once its goroutine is done with it.
// The context is not reused: a context.AfterFunc of the last request may
// still be about to look at it.
func (c *clientConn) recycle() {
	c.ctx, c.reqBase = nil, http.Request{}
	c.state.Store(connNew)
	c.req, c.url = http.Request{}, url.URL{}
	clear(c.hdr)
	clear(c.vals)
	c.vals = c.vals[:0]
	c.readErr, c.lastPOST = nil, false
	c.f, c.conn, c.raw, c.br = nil, nil, nil, nil
	if !c.w.release() {
		return // an outsized buffer: let it go with the rest
	}
	clientConns.Put(c)
}

// serve reads and answers requests until the connection ends or is handed
// to net/http.
func (c *clientConn) serve() {
	e := c.f.e
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.raw)
	handed := false
	defer func() {
		c.f.forget(c)
		c.ctx.cancel()
		c.br.Reset(nil)
		readers.Put(c.br)
		if !handed {
			c.conn.Close()
		}
		c.recycle()
	}()
	hdrDeadline := c.accepted.Add(e.opts.ReadHeaderTimeout)
	c.raw.SetReadDeadline(hdrDeadline)
	for first := true; ; first = false {
		if !first {
			if !c.state.CompareAndSwap(connActive, connIdle) || c.f.shutting.Load() {
				return
			}
			// As net/http: the header timeout starts once the next
			// request begins to arrive.
			if c.br.Buffered() < 4 {
				c.raw.SetReadDeadline(time.Now().Add(e.opts.IdleTimeout))
				if _, err := c.br.Peek(4); err != nil {
					return
				}
			}
			if !c.state.CompareAndSwap(connIdle, connActive) {
				return // closed by Shutdown
			}
			if c.lastPOST {
				// Some clients end a POST body with a stray CRLF; net/http
				// skips up to four CR or LF bytes after one.
				b, _ := c.br.Peek(4)
				n := 0
				for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
					n++
				}
				c.br.Discard(n)
			}
			hdrDeadline = time.Time{} // armed below if the head is not all in
		}
		head, err := c.readHead(&hdrDeadline)
		if err != nil {
			return
		}
		if first && !c.state.CompareAndSwap(connNew, connActive) {
			return
		}
		if head == nil || !c.parseHead(head) {
			c.handOver(hdrDeadline)
			handed = true
			return
		}
		c.br.Discard(len(head))
		c.lastPOST = c.req.Method == http.MethodPost
		if !c.serveRequest() {
			return
		}
	}
}

// readHead waits for a whole request head in the reader and returns it
// unconsumed; nil (and no error) when net/http must read it: too large for
// the buffer, or cut short by an error after some of it came. A head not
// in the buffer yet gets the header timeout, armed here if it is not.
func (c *clientConn) readHead(deadline *time.Time) ([]byte, error) {
	for {
		b, _ := c.br.Peek(c.br.Buffered())
		if n := headEnd(b); n >= 0 {
			return b[:n], nil
		}
		if len(b) == readerSize {
			return nil, nil
		}
		if deadline.IsZero() {
			*deadline = time.Now().Add(c.f.e.opts.ReadHeaderTimeout)
			c.raw.SetReadDeadline(*deadline)
		}
		if _, err := c.br.Peek(len(b) + 1); err != nil {
			if len(b) > 0 || c.br.Buffered() > 0 {
				return nil, nil // net/http answers it (400) or closes as it would
			}
			return nil, err
		}
	}
}

// handOver gives the connection to net/http with the bytes not consumed.
func (c *clientConn) handOver(deadline time.Time) {
	n := c.br.Buffered()
	pre, _ := c.br.Peek(n)
	hc := &handedConn{Conn: c.conn, pre: append([]byte(nil), pre...), limit: deadline}
	c.f.handoff.give(hc)
}

// serveRequest runs the handler on the parsed request and finishes its
// answer. It reports whether the connection may carry another request.
func (c *clientConn) serveRequest() bool {
	e := c.f.e
	c.raw.SetWriteDeadline(time.Now().Add(e.opts.WriteTimeout))
	c.w.reset(&c.req)
	c.ctx.begin()
	ok := c.runHandler()
	c.ctx.end()
	if !ok || c.readErr != nil {
		return false
	}
	return c.w.finish()
}

// runHandler calls the edge's handler. A panic aborts the answer: what
// was committed is sent, then the connection is closed, as net/http does.
func (c *clientConn) runHandler() (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.f.e.log.Debug("panic serving", "remote", c.remote, "panic", p, "stack", string(buf))
			}
			c.w.abort()
			ok = false
		}
	}()
	c.f.e.ServeHTTP(&c.w, &c.req)
	return true
}
