package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The edge serves HTTP/1.1 with a connection loop of its own (serveconn.go)
// for the requests that make up nearly all of its traffic, and with
// net/http's server for everything else, through one seam: when the loop
// meets a request head it does not parse itself (reqparse.go lists what it
// parses), it hands the connection, with the bytes it has read and not
// consumed, to net/http, which serves it from then on as if it had
// accepted it. Both call the same handler (Edge.ServeHTTP), under the same
// limits and timeouts, so a client sees one behaviour; a differential
// fuzz test holds the loop to net/http's framing.
//
// What the loop saves over net/http per request: the goroutine and buffers
// of a background read (the client's disconnect is watched only when
// something waits on the request's context, see connctx.go), the request
// and response objects and header maps (reused per connection), and
// writes: the answer's head and a small body go out in one write, a larger
// body with its head in one vectored write.

// Connection states, for Shutdown.
const (
	connNew    = iota // accepted, first request not read yet
	connActive        // a request is being read or served
	connIdle          // waiting for the next request
	connClosed        // closed by Shutdown
)

// newConnGrace is how long Shutdown lets a new connection deliver its
// first request, as net/http does.
const newConnGrace = 5 * time.Second

// front accepts the edge's client connections and serves them.
type front struct {
	e        *Edge
	ln       *capListener
	fallback *http.Server
	handoff  *handoffListener
	workers  *workers

	mu       sync.Mutex
	conns    map[*clientConn]struct{}
	shutting atomic.Bool
	wg       sync.WaitGroup // the accept loop
}

func newFront(e *Edge, ln *capListener, fallback *http.Server) *front {
	return &front{
		e:        e,
		ln:       ln,
		fallback: fallback,
		handoff:  newHandoffListener(ln.Addr()),
		workers:  newWorkers(),
		conns:    map[*clientConn]struct{}{},
	}
}

// serve accepts until the listener closes, and runs net/http's server on
// the connections handed to it.
func (f *front) serve() {
	go func() {
		if err := f.fallback.Serve(f.handoff); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.e.log.Error("http server stopped", "error", err)
		}
	}()
	f.wg.Add(1)
	defer f.wg.Done()
	defer f.workers.stop()
	var backoff time.Duration
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.shutting.Load() {
				return
			}
			// Out of descriptors and the like: wait, as net/http does.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				f.e.log.Debug("accept failed; retrying", "error", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			f.e.log.Error("listener stopped", "error", err)
			return
		}
		backoff = 0
		cc := newClientConn(f, c.(*cappedConn))
		f.mu.Lock()
		f.conns[cc] = struct{}{}
		f.mu.Unlock()
		f.workers.run(cc)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (f *front) forget(cc *clientConn) {
	f.mu.Lock()
	delete(f.conns, cc)
	f.mu.Unlock()
}

// shutdown stops accepting, closes idle connections, and waits for the
// active ones to finish their request, or for ctx to end; then it does the
// same for the connections net/http serves.
func (f *front) shutdown(ctx context.Context) error {
	f.shutting.Store(true)
	f.ln.Close()
	f.wg.Wait()
	tick := time.NewTimer(time.Millisecond)
	defer tick.Stop()
	for wait := time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		if f.closeIdle() {
			break
		}
		tick.Reset(wait)
		select {
		case <-ctx.Done():
			f.fallback.Shutdown(ctx)
			return ctx.Err()
		case <-tick.C:
		}
	}
	return f.fallback.Shutdown(ctx)
}

// closeIdle closes the connections that wait for a request and tells
// whether none is left.
func (f *front) closeIdle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for cc := range f.conns {
		st := cc.state.Load()
		if st == connNew && time.Since(cc.accepted) < newConnGrace {
			continue
		}
		if (st == connIdle || st == connNew) && cc.state.CompareAndSwap(st, connClosed) {
			cc.conn.Close()
		}
	}
	return len(f.conns) == 0
}

// handoffListener is the listener net/http's server accepts from: it
// yields the connections the loop hands over.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give passes c to net/http's server, or closes it once that has stopped.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// handedConn is a connection given to net/http: its reads return first
// the bytes the loop had read but not consumed. Its first read deadline
// (net/http arms the header timeout as it starts) is held to the one the
// loop had armed, so that the timeout counts from where it did.
type handedConn struct {
	net.Conn
	pre     []byte
	limit   time.Time // zero: none
	clamped bool
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *handedConn) SetReadDeadline(t time.Time) error {
	if !c.clamped {
		c.clamped = true
		if !c.limit.IsZero() && (t.IsZero() || t.After(c.limit)) {
			t = c.limit
		}
	}
	return c.Conn.SetReadDeadline(t)
}
