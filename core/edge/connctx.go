package edge

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A request's context on the edge's own connection loop ends when its
// client goes away, as net/http's does. net/http learns that by reading
// the client connection in the background during every request, one
// goroutine per request. Most requests through the edge are over before
// anything could wait on their context, so here the watch starts only
// when something asks for the context's Done channel (a dial, a request
// waiting for a pooled connection, an exchange that outlives its short
// first deadline, see upstream.go); Err stays nil until then.

// clientCtx is the context of the requests of one client connection. It
// lives as long as the connection: the serve loop arms it for each request
// (begin) and disarms it after (end).
type clientCtx struct {
	c *clientConn

	err atomic.Pointer[error] // set once, when the client is gone

	mu       sync.Mutex
	done     chan struct{} // made on first use, closed when err is set
	inReq    bool          // between begin and end
	watching bool          // a watch goroutine reads the connection
	stopping bool          // end asked the watch to stop
	watchEnd chan struct{} // closed when the watch returns
}

var _ context.Context = (*clientCtx)(nil)

func (x *clientCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (x *clientCtx) Value(any) any               { return nil }

func (x *clientCtx) Err() error {
	if p := x.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Done returns the channel closed when the client is gone, and starts
// watching the connection for that during a request.
func (x *clientCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.Err() != nil {
			close(x.done)
		}
	}
	if x.inReq && !x.watching && !x.stopping && x.Err() == nil {
		x.watching = true
		x.watchEnd = make(chan struct{})
		go x.watch()
	}
	return x.done
}

// errCanceled is the error of every ended client context, shared so that
// ending one allocates nothing.
var errCanceled = context.Canceled

// cancel records that the client is gone: Err is context.Canceled from now.
func (x *clientCtx) cancel() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err.Load() != nil {
		return
	}
	x.err.Store(&errCanceled)
	if x.done != nil {
		close(x.done)
	}
}

// begin arms the context for the request about to be handled.
func (x *clientCtx) begin() {
	x.mu.Lock()
	x.inReq, x.stopping = true, false
	x.mu.Unlock()
}

// end disarms it once the handler returned, and waits for a watch to stop
// reading, so that the serve loop owns the connection's reader again.
func (x *clientCtx) end() {
	x.mu.Lock()
	x.inReq = false
	if !x.watching {
		x.mu.Unlock()
		return
	}
	x.stopping = true
	ch := x.watchEnd
	x.c.raw.SetReadDeadline(aLongTimeAgo) // unblocks the watch's read
	x.mu.Unlock()
	<-ch
}

// watch waits for the client to close its side or to send more. Bytes that
// arrive are the next pipelined request: they stay in the reader, and the
// watch ends, as net/http's does, unable to tell a close behind them.
func (x *clientCtx) watch() {
	defer func() {
		x.mu.Lock()
		x.watching = false
		close(x.watchEnd)
		x.mu.Unlock()
	}()
	x.mu.Lock()
	if x.stopping {
		x.mu.Unlock()
		return
	}
	// The head's read deadline does not bound the handler.
	x.c.raw.SetReadDeadline(time.Time{})
	x.mu.Unlock()
	if x.c.br.Buffered() > 0 {
		return
	}
	_, err := x.c.br.Peek(1)
	if err == nil {
		return
	}
	x.mu.Lock()
	stopping := x.stopping
	x.mu.Unlock()
	if stopping && isTimeout(err) {
		return
	}
	x.c.readErr = err // the connection is not read again
	x.cancel()
}
