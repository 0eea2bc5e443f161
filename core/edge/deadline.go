package edge

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Deadlines on relaying an answer. A client that reads slowly and an
// endpoint that trickles its body each hold a goroutine and an endpoint
// connection, so neither may take forever. A non-streaming answer gets one
// deadline, WriteTimeout from its header, for the client's writes and the
// endpoint's reads alike. A streaming answer (server-sent events, unknown
// length) may last as long as it keeps moving: each read and each write
// must happen within StreamIdleTimeout.
//
// On the edge's own pool the endpoint deadline is the connection's read
// deadline; on http.Transport (requests with a body) a timer cancels the
// request instead.

// bodyClock enforces the deadlines on one answer's body.
type bodyClock struct {
	w      http.ResponseWriter
	x      *exchange          // the pooled exchange, or nil
	cancel context.CancelFunc // cancels a transport request, or nil
	timer  *time.Timer        // fires cancel; transport requests only
	idle   time.Duration      // streaming: the idle limit; 0 otherwise
}

// startBodyClock arms the deadlines for relaying resp to w, for a request
// that arrived at start. It returns a value, kept on the caller's stack.
//
// An answer whose body is already in the edge's buffer needs no endpoint
// deadline, and while the request is young its client write deadline is
// the one the server armed when the request arrived (WriteTimeout from
// then): at least half of it is left, plenty to write a buffered answer.
func (e *Edge) startBodyClock(w http.ResponseWriter, resp *http.Response, streaming bool, cancel context.CancelFunc, start time.Time) bodyClock {
	c := bodyClock{w: w, cancel: cancel}
	c.x, _ = resp.Body.(*exchange)
	if c.x != nil && c.x.buffered && !streaming && time.Since(start) < e.opts.WriteTimeout/2 {
		return c
	}
	d := e.opts.WriteTimeout
	if streaming {
		c.idle = e.opts.StreamIdleTimeout
		d = c.idle
	}
	dl := time.Now().Add(d)
	setWriteDeadline(w, dl)
	if c.x != nil {
		c.x.setReadDeadline(dl)
	} else if cancel != nil {
		c.timer = time.AfterFunc(d, cancel)
	}
	return c
}

// beforeRead gives the endpoint another idle period to send.
func (c *bodyClock) beforeRead() {
	if c.x != nil {
		c.x.setReadDeadline(time.Now().Add(c.idle))
	} else if c.timer != nil {
		c.timer.Reset(c.idle)
	}
}

// beforeWrite gives the client another idle period to read.
func (c *bodyClock) beforeWrite() {
	setWriteDeadline(c.w, time.Now().Add(c.idle))
}

func (c *bodyClock) stop() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// idleTunnel closes an upgraded connection pair once no byte has crossed it,
// either way, for idle. Activity is an atomic store per write; the timer
// checks it when it fires instead of being reset for every write.
type idleTunnel struct {
	idle  time.Duration
	last  atomic.Int64 // unix nanoseconds of the last write
	timer *time.Timer
	close func()
}

func newIdleTunnel(idle time.Duration, closeBoth func()) *idleTunnel {
	t := &idleTunnel{idle: idle, close: closeBoth}
	t.last.Store(time.Now().UnixNano())
	t.timer = time.AfterFunc(idle, t.check)
	return t
}

func (t *idleTunnel) check() {
	quiet := time.Since(time.Unix(0, t.last.Load()))
	if quiet >= t.idle {
		t.close()
		return
	}
	t.timer.Reset(t.idle - quiet)
}

func (t *idleTunnel) stop() { t.timer.Stop() }

// writer wraps w so that every write counts as activity.
func (t *idleTunnel) writer(w io.Writer) io.Writer { return tunnelWriter{w: w, t: t} }

type tunnelWriter struct {
	w io.Writer
	t *idleTunnel
}

func (w tunnelWriter) Write(p []byte) (int, error) {
	w.t.last.Store(time.Now().UnixNano())
	return w.w.Write(p)
}
